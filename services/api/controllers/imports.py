"""Bulk imports: upload a CSV or JSON Lines file of customers and installments (streamed, any
size), follow its progress, read its per-row error report.  Parse, call the service, shape the
answer."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.guards import principal_of, requires
from shared.domains.audit.service import Actor
from shared.domains.portfolio.imports import schemas, service
from shared.domains.portfolio.scoping import writer_tenant
from shared.models import DataImport, Role
from shared.tenancy import Scopes
from shared.tenancy.query import get_or_404, owned

MANAGERS = (Role.OWNER, Role.ADMIN)

# The import route reads its body as a stream and never holds it whole, so it accepts far more
# than the app-wide ``api_max_body_bytes`` (10 MiB by default): up to 2 GiB per file.
MAX_IMPORT_BYTES = 2 * 1024**3

_UPLOAD = """
Send the file itself as the request body (not multipart), streamed if you like:

* `Content-Type: text/csv` — UTF-8 with or without a BOM, `;` or `,` delimited, CRLF or LF,
  quoted fields, pt-BR numbers (`1.234,56`) and dates (`dd/mm/aaaa`), headers in English or
  Portuguese (`nome`, `cpf`, `telefone`, `parcela`, `valor`, `vencimento`, ...);
* `Content-Type: application/x-ndjson` (or `application/jsonl`) — one JSON object per line with
  the same field names;
* any other type: detected from the first line.

Declare another character set with `charset=` (`text/csv; charset=windows-1252`, what Brazilian
Excel exports use) or `?encoding=`.  Name the file with `?filename=` or `Content-Disposition`.
Bodies up to 2 GiB are accepted on this route.

Each row is a customer and, when the file has installment columns, one of its installments.
Fields with a column in the file are written (an empty cell clears an optional field); fields
without one keep their stored value.  In JSON Lines, a key present in any object of the file
counts as a column.  Rows with errors are left out whole and reported (line, field, reason); the
others are imported.  Importing the same file again changes nothing.

A file that cannot be read at all (binary data, bytes invalid in its charset, no header, a line
over 1 MiB) answers 422 with the reason and the id of the failed import, and leaves nothing
behind.  Otherwise the answer is 202 with the import, whose merge runs in the background:
follow it at `Location`.
"""

_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)


def _filename(request: Request[Any, Any, Any], given: str | None) -> str | None:
    if given and given.strip():
        return given.strip()
    disposition = request.headers.get("content-disposition") or ""
    match = _FILENAME.search(disposition)
    return match.group(1).strip() if match else None


class ImportsController(Controller):
    path = "/v1/imports"
    tags = ["imports"]

    @post(
        "/",
        summary="Import customers and installments from a CSV or JSON Lines file",
        description=_UPLOAD,
        status_code=202,
        guards=[requires(Scopes.PORTFOLIO_WRITE, roles=MANAGERS)],
        request_max_body_size=MAX_IMPORT_BYTES,
    )
    async def create_import(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        file_format: Annotated[
            str | None, QueryParameter(name="format", description="csv or jsonl")
        ] = None,
        encoding: FromQuery[str | None] = None,
        filename: FromQuery[str | None] = None,
    ) -> Response[schemas.ImportOut]:
        principal = principal_of(request)
        tenant_id = writer_tenant(principal)  # agencies never import into a retailer
        media_type, params = request.content_type
        fmt = service.format_for_media_type(media_type, file_format)
        if encoding:
            codec = service.parse_encoding(encoding, "encoding")
        else:
            codec = service.parse_encoding(params.get("charset"), "charset")
        received = await service.receive(
            db,
            tenant_id=tenant_id,
            actor=Actor.of(principal),
            chunks=request.stream(),
            fmt=fmt,
            encoding=codec,
            filename=_filename(request, filename),
            edge=db,
        )
        imp = await service.reload(db, received.import_id)
        assert imp is not None
        return Response(
            await service.import_out(db, imp),
            status_code=202,
            headers={"Location": f"/v1/imports/{imp.id}"},
        )

    @get(
        "/",
        summary="This tenant's imports, newest first",
        guards=[requires(Scopes.PORTFOLIO_READ)],
    )
    async def list_imports(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> schemas.ImportPage:
        stmt = owned(DataImport, principal_of(request))
        return await service.list_imports(db, stmt, cursor=cursor, limit=limit)

    @get(
        "/{import_id:uuid}",
        summary="One import: progress, counts and the first 100 errors",
        guards=[requires(Scopes.PORTFOLIO_READ)],
    )
    async def get_import(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        import_id: FromPath[uuid.UUID],
    ) -> schemas.ImportOut:
        imp = await get_or_404(db, owned(DataImport, principal_of(request)), import_id, "Import")
        return await service.import_out(db, imp)

    @get(
        "/{import_id:uuid}/errors",
        summary="An import's row errors, in line order",
        guards=[requires(Scopes.PORTFOLIO_READ)],
    )
    async def list_errors(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        import_id: FromPath[uuid.UUID],
        after_line: Annotated[int, QueryParameter(ge=0)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> schemas.ImportErrorPage:
        imp = await get_or_404(db, owned(DataImport, principal_of(request)), import_id, "Import")
        return await service.error_page(db, imp.id, after_line=after_line, limit=limit)


IMPORT_CONTROLLERS = [ImportsController]
