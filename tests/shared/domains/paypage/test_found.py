"""Whose day the payment page prices: the debtor's, placed as the message that carried the
link was placed when it left."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from shared.domains.paypage import links
from shared.domains.paypage.service import Found
from shared.models import ContactAttempt, Customer, Tenant

# 03:30 UTC: 00:30 on Tuesday in São Paulo, still 22:30 on Monday in Rio Branco (UTC-5)
LATE = datetime(2026, 11, 24, 3, 30, tzinfo=UTC)


def _found(state: str | None, recipient: str | None) -> Found:
    customer = Customer(name="Cliente", state=state, city=None)
    attempt = None if recipient is None else ContactAttempt(recipient=recipient)
    kind = links.ATTEMPT if attempt is not None else links.OFFER
    link = links.Link(kind, uuid.uuid4(), LATE + timedelta(days=7))
    return Found(link, Tenant(name="Loja"), customer, attempt=attempt)


def test_without_an_address_the_page_takes_the_day_where_the_messages_number_is() -> None:
    assert _found(None, "+5568999990000").today(LATE) == date(2026, 11, 23)  # Acre, DDD 68
    assert _found(None, "+5511999990000").today(LATE) == date(2026, 11, 24)  # São Paulo


def test_the_address_comes_before_the_number() -> None:
    assert _found("AC", "+5511999990000").today(LATE) == date(2026, 11, 23)
    assert _found("SP", "+5568999990000").today(LATE) == date(2026, 11, 24)


def test_an_offers_page_without_address_or_message_takes_brasilias_day() -> None:
    assert _found(None, None).today(LATE) == date(2026, 11, 24)
