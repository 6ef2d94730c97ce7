"""The operator inbox: conversations with debtors, filtered and in pages; one conversation with
its debtor's whole story; replies, notes, assignment, resolve and reopen.  Parse, call the
inbox, shape the answer.

Anyone who reads conversations lists them (agencies: those of the customers their mandate
covers); owners, admins and operators work them (agencies: where the mandate grants
``message``).  Owners and admins set how many conversations each operator takes.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.response import Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth.guards import principal_of, requires
from services.api.controllers.channels import own_tenant
from shared import clock
from shared.domains.collections import reports
from shared.domains.collections.schemas import AttemptDetail
from shared.domains.inbound import inbox, schemas
from shared.domains.inbound.inbox import InboxFilter
from shared.models import Role
from shared.tenancy import Principal, Scopes

READ = requires(Scopes.CONVERSATIONS_READ)
WORK = requires(Scopes.CONVERSATIONS_WRITE, roles=inbox.INBOX_ROLES)
MANAGE = requires(Scopes.CONVERSATIONS_WRITE, roles=(Role.OWNER, Role.ADMIN))
Limit = Annotated[int, QueryParameter(ge=1, le=200, description="Items per page (1-200)")]


def _me(request: Request[Any, Any, Any]) -> Principal:
    return principal_of(request)


class ConversationController(Controller):
    path = "/v1/conversations"
    tags = ["inbox"]

    @get(
        "/",
        summary="The inbox: conversations, highest priority first, then the latest message",
        description="overdue_total: principal minus paid of the customer's open installments "
        "due before the retailer's today (fees are in the timeline's balances).",
        guards=[READ],
    )
    async def list_conversations(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        wanted_state: Annotated[
            str | None, QueryParameter(name="state", description="open, pending or resolved")
        ] = None,
        intent: FromQuery[str | None] = None,
        assignee: Annotated[
            str | None, QueryParameter(description="me, none, or a user id")
        ] = None,
        min_overdue: Annotated[
            str | None, QueryParameter(description="At least this overdue, e.g. 100.00")
        ] = None,
        cursor: FromQuery[str | None] = None,
        limit: Limit = 50,
    ) -> schemas.ConversationPage:
        filters = InboxFilter(
            state=wanted_state, intent=intent, assignee=assignee, min_overdue=min_overdue
        )
        return await inbox.list_conversations(
            db, _me(request), filters, clock.now(), cursor=cursor, limit=limit
        )

    @post(
        "/assign-next",
        summary="Take the next unassigned open conversation (highest priority first)",
        description="For a person. 409 at_capacity when it already has its capacity of "
        "conversations not resolved (20 unless set), 409 operator_unavailable when marked "
        "away; 204 when nothing is waiting. Audited.",
        guards=[WORK],
        status_code=200,
    )
    async def assign_next(
        self, request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
    ) -> Response[schemas.ConversationOut | None]:
        principal, now = _me(request), clock.now()
        taken = await inbox.take_next(db, principal, now)
        if taken is None:
            return Response(None, status_code=204)
        found = await inbox.find_conversation(db, principal, taken, now)
        return Response(await inbox.found_out(db, found, now))

    @get(
        "/{conversation_id:uuid}",
        summary="One conversation with its debtor's timeline and what may be sent now",
        description="timeline: installments (today's balance with fees), contact attempts "
        "with their statuses, messages either way and internal notes, in time order. "
        "can_reply.free_text: the 24-hour window is open and the number is not a wrong "
        "person's; otherwise only a template reaches them (can_reply.template).",
        guards=[READ],
    )
    async def get_conversation(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        conversation_id: FromPath[uuid.UUID],
    ) -> schemas.ConversationDetail:
        principal, now = _me(request), clock.now()
        found = await inbox.find_conversation(db, principal, conversation_id, now)
        return await inbox.conversation_detail(db, principal, found, now)

    @post(
        "/{conversation_id:uuid}/messages",
        summary="Reply with free text inside the 24-hour window",
        description="202: recorded and queued; it leaves once. 409 window_closed outside the "
        "window (only a template may be sent then: POST .../remind), 409 wrong_number when "
        "the number is marked as someone else's. The same Idempotency-Key sends once. Audited.",
        guards=[WORK],
        opt={"idempotency": "own"},  # its own rule: see the description
        status_code=202,
    )
    async def reply(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        conversation_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.ReplyIn],
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", required=False, max_length=120)
        ] = None,
    ) -> schemas.MessageOut:
        principal, now = _me(request), clock.now()
        found = await inbox.find_conversation(db, principal, conversation_id, now, work=True)
        m = await inbox.reply(db, principal, found, data.text, now, idempotency_key=idempotency_key)
        return schemas.MessageOut(
            id=m.id,
            conversation_id=m.conversation_id,
            direction=m.direction,
            text=m.text,
            status=m.status,
            sent_by=m.sent_by,
            occurred_at=m.occurred_at,
        )

    @post(
        "/{conversation_id:uuid}/remind",
        summary="Send the template reminder (what reaches the person outside the window)",
        description="The reminder the régua would send now about everything overdue or due "
        "within 3 days, with today's amounts and Pix code and the same governance: the answer "
        "is the attempt, queued (planned_for: the next instant inside the debtor's contact "
        "window) or skipped with the reason (daily_cap, opted_out, hold_paid_claim ...). "
        "The retailer's own people only (403 for an agency); 409 not_a_customer for an unknown "
        "sender, 409 wrong_number, 409 nothing_to_remind when nothing is due. Audited.",
        guards=[WORK],
        status_code=202,
    )
    async def remind(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        conversation_id: FromPath[uuid.UUID],
    ) -> AttemptDetail:
        principal, now = _me(request), clock.now()
        found = await inbox.find_conversation(db, principal, conversation_id, now, work=True)
        attempt = await inbox.remind(db, principal, found, now)
        assert found.customer is not None  # inbox.remind refuses unknown senders
        return await reports.attempt_detail(db, attempt, found.customer.external_id)

    @post(
        "/{conversation_id:uuid}/notes",
        summary="Add an internal note (never sent to the debtor)",
        guards=[WORK],
        status_code=201,
    )
    async def add_note(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        conversation_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.NoteIn],
    ) -> schemas.NoteOut:
        principal, now = _me(request), clock.now()
        found = await inbox.find_conversation(db, principal, conversation_id, now, work=True)
        note = await inbox.add_note(db, principal, found, data.text)
        return schemas.NoteOut(
            id=note.id,
            conversation_id=note.conversation_id,
            author_id=note.author_id,
            text=note.text,
            created_at=note.created_at,
        )

    @post(
        "/{conversation_id:uuid}/assign",
        summary="Assign to one of your owners, admins or operators (null: unassign)",
        description="409 at_capacity / operator_unavailable as for assign-next. Audited.",
        guards=[WORK],
        status_code=200,
    )
    async def assign(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        conversation_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.AssignIn],
    ) -> schemas.ConversationOut:
        principal, now = _me(request), clock.now()
        found = await inbox.find_conversation(db, principal, conversation_id, now, work=True)
        await inbox.assign(db, principal, found, data.assignee)
        return await inbox.found_out(db, found, now)

    @post(
        "/{conversation_id:uuid}/resolve",
        summary="Resolve (priority back to 0; a new message from the debtor reopens it)",
        guards=[WORK],
        status_code=200,
    )
    async def resolve(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        conversation_id: FromPath[uuid.UUID],
    ) -> schemas.ConversationOut:
        principal, now = _me(request), clock.now()
        found = await inbox.find_conversation(db, principal, conversation_id, now, work=True)
        await inbox.resolve(db, principal, found)
        return await inbox.found_out(db, found, now)

    @post(
        "/{conversation_id:uuid}/reopen",
        summary="Reopen for an operator",
        guards=[WORK],
        status_code=200,
    )
    async def reopen(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        conversation_id: FromPath[uuid.UUID],
    ) -> schemas.ConversationOut:
        principal, now = _me(request), clock.now()
        found = await inbox.find_conversation(db, principal, conversation_id, now, work=True)
        await inbox.reopen(db, principal, found)
        return await inbox.found_out(db, found, now)


class InboxOperatorController(Controller):
    path = "/v1/inbox/operators"
    tags = ["inbox"]

    @get("/", summary="Your people who work the inbox: capacity and current load", guards=[READ])
    async def list_operators(
        self, request: Request[Any, Any, Any], db: NamedDependency[AsyncSession]
    ) -> list[schemas.OperatorOut]:
        return await inbox.operators(db, own_tenant(_me(request)))

    @put(
        "/{user_id:uuid}",
        summary="Set how many conversations one of your people takes, and whether now",
        description="capacity 0-500 (default 20): conversations assigned and not resolved. "
        "Audited.",
        guards=[MANAGE],
    )
    async def set_operator(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.OperatorIn],
    ) -> schemas.OperatorOut:
        principal = _me(request)
        return await inbox.set_operator(db, principal, own_tenant(principal), user_id, data)


INBOX_CONTROLLERS = [ConversationController, InboxOperatorController]
