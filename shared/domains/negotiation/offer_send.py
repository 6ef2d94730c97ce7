"""Sending an offer an operator made (``POST /v1/offers/{id}/send``).

Inside the debtor's 24-hour WhatsApp window the offer goes as the chat's list — one row per
option, a tap makes the agreement (``chat.take_choice``).  Outside it, only a template may go:
the retailer's ``oferta`` template, under the régua's governance (contact hours, caps, opt-outs:
``queued`` for the next allowed instant or ``skipped`` with the reason), whose link opens the
payment page with the offer's options, each with a button to choose it.  Either way once per
offer: sending it again answers the message already on its way.  Nothing is sent for an offer
accepted or expired, nor to a number marked as someone else's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.domains.audit.service import Actor, record
from shared.domains.channels.defaults import OFFER
from shared.domains.collections import planner
from shared.domains.inbound import inbox, replies
from shared.domains.negotiation import agreements, chat, service
from shared.errors import Conflict
from shared.models import (
    Agreement,
    ContactAttempt,
    Conversation,
    ConversationMessage,
    Customer,
    Offer,
)
from shared.tenancy import Principal


class NothingToSend(Conflict):
    code = "offer_stale"


@dataclass(frozen=True, slots=True)
class OfferSent:
    """How the offer went: ``list`` (a chat message) or ``template`` (a contact attempt)."""

    offer: Offer
    via: str
    message: ConversationMessage | None = None
    attempt: ContactAttempt | None = None


async def send(
    session: AsyncSession, principal: Principal, offer_id: uuid.UUID, now: datetime
) -> OfferSent:
    offer = await service.get_offer(session, principal, offer_id)
    agreements.check_negotiator(principal, offer.mandate_id, f"Offer {offer.id}")
    if await session.scalar(select(Agreement.id).where(Agreement.offer_id == offer.id)):
        raise agreements.OfferAccepted("The offer was accepted already; there is nothing to send.")
    if now >= offer.expires_at:
        raise agreements.OfferExpired(
            f"The offer expired at {offer.expires_at.isoformat()}; make a new one."
        )
    customer = await session.get_one(Customer, offer.customer_id)
    earlier = await session.scalar(
        select(ContactAttempt)
        .where(ContactAttempt.offer_id == offer.id, ContactAttempt.state != "skipped")
        .limit(1)
    )
    if earlier is not None:
        return OfferSent(offer, "template", attempt=earlier)
    chat_with = await _open_chat(session, customer, now)
    actor = Actor.of(principal)
    if chat_with is not None:
        message = await chat.send_list(
            session, chat_with, customer, offer, now=now, dedupe_key=f"offer:{offer.id}"
        )
        if message.sent_by is None and (user := inbox.user_id(principal)) is not None:
            message.sent_by = user
        sent = OfferSent(offer, "list", message=message)
    else:
        try:
            attempt = await planner.remind(
                session,
                offer.tenant_id,
                customer.id,
                now,
                template_key=OFFER.key,
                installment_ids=offer.installment_ids,
                offer_id=offer.id,
            )
        except planner.NothingToRemind as exc:
            raise NothingToSend(
                "The offer's installments are no longer owed; make a new offer."
            ) from exc
        sent = OfferSent(offer, "template", attempt=attempt)
    await record(
        session,
        "offer.sent",
        tenant_id=offer.tenant_id,
        actor_type=actor.type,
        actor_id=actor.id,
        subject_type="offer",
        subject_id=str(offer.id),
        data={
            "via": sent.via,
            "message_id": str(sent.message.id) if sent.message else None,
            "attempt_id": str(sent.attempt.id) if sent.attempt else None,
            "state": str(sent.attempt.state) if sent.attempt else None,
        },
    )
    await session.flush()
    return sent


async def _open_chat(
    session: AsyncSession, customer: Customer, now: datetime
) -> Conversation | None:
    """The debtor's WhatsApp conversation whose window is open, if its number is theirs."""
    found = await session.scalar(
        select(Conversation)
        .where(
            Conversation.tenant_id == customer.tenant_id,
            Conversation.customer_id == customer.id,
            Conversation.window_expires_at > now,
        )
        .order_by(Conversation.window_expires_at.desc())
        .limit(1)
    )
    if found is None or not replies.window_open(found, now):
        return None
    return None if await inbox.wrong_number(session, found) else found
