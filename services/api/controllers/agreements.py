"""Agreements (acordos): accept an offer's option (an operator recording what the debtor agreed
by phone), list and read agreements, cancel one, and the Pix of an agreement installment.
Parse, call the service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.guards import principal_of, requires
from shared.domains.audit.service import Actor
from shared.domains.negotiation import agreement_pay, agreements, lifecycle
from shared.domains.negotiation import agreement_schemas as schemas
from shared.models import Role
from shared.tenancy import Principal, Scopes

OPERATORS = (Role.OWNER, Role.ADMIN, Role.OPERATOR)
NEGOTIATE = requires(Scopes.NEGOTIATION_WRITE, roles=OPERATORS)
READ = requires(Scopes.COLLECTIONS_READ)
Limit = Annotated[int, QueryParameter(ge=1, le=200, description="Items per page (1-200)")]
Status = Literal["active", "void", "broken", "completed", "cancelled"]


def _me(request: Request[Any, Any, Any]) -> Principal:
    return principal_of(request)


class AgreementController(Controller):
    path = "/v1"
    tags = ["negotiation"]

    @post(
        "/offers/{offer_id:uuid}/accept",
        summary="Accept an offer's option: the agreement, with the option's amounts and dates",
        description="The option's down payment (installment 0) and installments are copied "
        "exactly. The offer's installments become `renegotiated` and their pending messages "
        "are cancelled. 409 `offer_expired` after the offer's expires_at; 409 `offer_stale` "
        "when an installment was paid, renegotiated or changed since the offer; 409 "
        "`offer_already_accepted` for a second acceptance (a retry with the same "
        "Idempotency-Key answers the agreement made, 200). An agency accepts only offers made "
        "under its mandate, while that allows negotiating. Emits `agreement.created`. Audited.",
        guards=[NEGOTIATE],
        opt={"idempotency": "own"},  # its own rule: see the description
        status_code=201,
    )
    async def accept(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        offer_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.AcceptIn],
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", required=False, max_length=120)
        ] = None,
    ) -> Response[schemas.AgreementOut]:
        principal = _me(request)
        row, created = await agreements.accept(
            db,
            principal,
            offer_id,
            data.option_id,
            Actor.of(principal),
            idempotency_key=idempotency_key,
        )
        out = await agreements.detail_out(db, row)
        return Response(out, status_code=201 if created else 200)

    @get("/agreements", summary="Agreements, newest first", guards=[READ])
    async def list_agreements(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        status: Annotated[Status | None, QueryParameter()] = None,
        customer_id: Annotated[uuid.UUID | None, QueryParameter()] = None,
        cursor: Annotated[str | None, QueryParameter()] = None,
        limit: Limit = 50,
    ) -> schemas.AgreementPage:
        return await agreements.list_agreements(
            db, _me(request), status=status, customer_id=customer_id, cursor=cursor, limit=limit
        )

    @get(
        "/agreements/{agreement_id:uuid}",
        summary="One agreement with its installments and the originals it renegotiated",
        guards=[READ],
    )
    async def get_agreement(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        agreement_id: FromPath[uuid.UUID],
    ) -> schemas.AgreementOut:
        row = await agreements.get_agreement(db, _me(request), agreement_id)
        return await agreements.detail_out(db, row)

    @post(
        "/agreements/{agreement_id:uuid}/cancel",
        summary="Cancel an active agreement: its originals go back to collection as they were",
        description="409 `agreement_not_active` unless active. Audited.",
        guards=[NEGOTIATE],
        status_code=200,
    )
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        agreement_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.CancelIn],
    ) -> schemas.AgreementOut:
        principal = _me(request)
        row = await lifecycle.cancel(db, principal, agreement_id, data.reason, Actor.of(principal))
        return await agreements.detail_out(db, row)

    @get(
        "/agreements/{agreement_id:uuid}/installments/{installment_number:int}/pix",
        summary="The Pix BR Code (copia e cola) for what an agreement installment still owes",
        description="Installment 0 is the down payment. 409 `nothing_to_pay` when it is paid, "
        "`agreement_not_active` when the agreement ended, `pix_not_configured` without a key.",
        guards=[READ],
    )
    async def pix(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        agreement_id: FromPath[uuid.UUID],
        installment_number: FromPath[int],
    ) -> schemas.AgreementPixOut:
        row = await agreements.get_agreement(db, _me(request), agreement_id)
        return await agreement_pay.pix_for(db, row, installment_number)


AGREEMENT_CONTROLLERS = [AgreementController]
