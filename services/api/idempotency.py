"""``Idempotency-Key`` on every POST of the API (DESIGN.md §5).

A client that lost an answer — a timeout, a dropped connection, a crash on its side — sends the
same POST with the same key and gets the first answer, marked ``Idempotent-Replayed: true``,
with nothing done twice.  The key belongs to the caller (the tenant and the person or system
client of its token); it is kept a day after a success and freed by a failure.  The same key
with another request — path or body — is refused (422), and while the first is still running a
second gets 409 with ``Retry-After``.

The body is fingerprinted as the handler reads it, so an import's file still streams; a replay
reads the retry's body only to compare it.  Handlers with their own rule (``opt={"idempotency":
"own"}``: the agreement, the inbox reply, the webhook endpoint) are left to it.
"""

from __future__ import annotations

import hashlib
import re

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.openapi.spec import OpenAPIType, Parameter, Schema
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from services.common.http import resources
from shared.db import SessionMaker
from shared.domains.system import idempotency as keys
from shared.errors import AppError, BadRequest
from shared.tenancy import Principal

HEADER = b"idempotency-key"
REPLAYED = b"idempotent-replayed"
_VALID = re.compile(r"[\x21-\x7e]{1,120}")
_KEPT_HEADERS = frozenset({b"content-type", b"location"})


class KeyInUse(AppError):
    code = "idempotency_key_in_use"
    status = 409
    title = "Conflict"


class KeyReused(AppError):
    code = "idempotency_key_reused"
    status = 422
    title = "Invalid input"


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_of(scope)
        principal = scope.get("user")
        if key is None or not isinstance(principal, Principal) or _own_rule(scope):
            await self.app(scope, receive, send)
            return
        if not _VALID.fullmatch(key):
            raise BadRequest("Idempotency-Key must be 1 to 120 visible ASCII characters.")
        maker = resources(scope["app"].state).sessionmaker
        owner = keys.owner_of(principal)
        request = f"POST {scope['path']}?{scope.get('query_string', b'').decode('latin-1')}"
        claim = await keys.claim(maker, owner, key, request)
        if isinstance(claim, keys.Busy):
            raise KeyInUse(
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                headers={"Retry-After": "1"},
            )
        if isinstance(claim, keys.Done):
            await _replay(claim, request, receive, send)
            return
        await _run_once(self.app, scope, receive, send, maker, owner, key)


async def _run_once(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    maker: SessionMaker,
    owner: str,
    key: str,
) -> None:
    """Run the request holding the key; keep its answer if it succeeded, else free the key."""
    body = hashlib.sha256()
    read_all = False
    status = 0
    headers: list[tuple[bytes, bytes]] = []
    answer = bytearray()

    async def reading() -> ReceiveMessage:
        nonlocal read_all
        message = await receive()
        if message["type"] == "http.request":
            body.update(message.get("body", b""))
            read_all = read_all or not message.get("more_body", False)
        return message

    async def answering(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() in _KEPT_HEADERS]
        elif message["type"] == "http.response.body" and 200 <= status < 300:
            answer.extend(message.get("body", b""))
        await send(message)

    try:
        await app(scope, reading, answering)
    except BaseException:
        await keys.free(maker, owner, key)
        raise
    if 200 <= status < 300:
        # a handler that never read its body ignored it: only the request line is compared
        fingerprint = body.digest() if read_all else None
        await keys.keep(maker, owner, key, keys.Answer(status, headers, bytes(answer)), fingerprint)
    else:
        await keys.free(maker, owner, key)


async def _replay(done: keys.Done, request: str, receive: Receive, send: Send) -> None:
    if done.request != request:
        raise KeyReused(f"This Idempotency-Key was used for another request ({done.request}).")
    if done.fingerprint is not None and await _digest(receive) != done.fingerprint:
        raise KeyReused("This Idempotency-Key was used with another request body.")
    answer = done.answer
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [
                *answer.headers,
                (b"content-length", str(len(answer.body)).encode()),
                (REPLAYED, b"true"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})


async def _digest(receive: Receive) -> bytes:
    body = hashlib.sha256()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        body.update(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return body.digest()


def _key_of(scope: Scope) -> str | None:
    if scope["type"] != ScopeType.HTTP or scope["method"] != "POST":
        return None
    for name, value in scope["headers"]:
        if name.lower() == HEADER:
            return value.decode("latin-1").strip()
    return None


def _own_rule(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    return handler is not None and handler.opt.get("idempotency") == "own"


_DOCUMENTED = Parameter(
    name="Idempotency-Key",
    param_in="header",
    required=False,
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=120),
    description="A retry with the same key, path and body gets the first success again "
    "(`Idempotent-Replayed: true`) and does nothing twice; another path or body is 422 "
    "`idempotency_key_reused`; 409 `idempotency_key_in_use` while the first runs. Kept 24 h.",
)


def document(app: Litestar, public: tuple[str, ...]) -> None:
    """Name the header on every authenticated POST of the schema (run at startup, once every
    route is registered; handlers that declare it themselves keep their own words)."""
    if app.openapi_config is None:
        return
    for path, item in (app.openapi_schema.paths or {}).items():
        operation = item.post
        if operation is None or path.startswith(public):
            continue
        declared = list(operation.parameters or [])
        if not any(getattr(p, "name", "").lower() == "idempotency-key" for p in declared):
            operation.parameters = [*declared, _DOCUMENTED]
