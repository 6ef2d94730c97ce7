"""The planner, with the clock frozen: each step once per installment, one message per customer
per day, older steps recorded instead of sent late, and every governance rule recorded as the
reason when it holds a message back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.phones import whatsapp_key
from shared.domains.audit.service import Actor
from shared.domains.channels import schemas
from shared.domains.channels import service as channels
from shared.domains.collections.planner import NothingToRemind, plan_tenant, reach_limit, remind
from shared.models import (
    Cadence,
    CadenceStep,
    Channel,
    CollectionHold,
    ContactAttempt,
    ContactAttemptItem,
    Customer,
    CustomerPhone,
    Installment,
    OutboxJob,
)
from shared.tenancy import SYSTEM, use_scope
from tests.support.identity import Identities

SP = ZoneInfo("America/Sao_Paulo")
MONDAY_9AM = datetime(2026, 11, 23, 9, 0, tzinfo=SP)  # 2026-11-23 is a Monday
TODAY = MONDAY_9AM.date()
ACTOR = Actor("cli", None)


class Shop:
    """A retailer with its default régua and a WhatsApp and an SMS sender."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session, self.tenant_id = session, tenant_id
        self.count = 0

    async def customer(
        self,
        *,
        phone: str | None = "+5511987650001",
        state: str = "SP",
        city: str = "São Paulo",
        **fields: Any,
    ) -> Customer:
        self.count += 1
        row = Customer(
            tenant_id=self.tenant_id,
            external_id=f"C-{self.count}",
            name="Maria Exemplo",
            state=state,
            city=city,
            **fields,
        )
        self.session.add(row)
        await self.session.flush()
        if phone:
            self.session.add(
                CustomerPhone(
                    tenant_id=self.tenant_id,
                    customer_id=row.id,
                    number=phone,
                    position=0,
                    wa_key=whatsapp_key(phone),
                )
            )
            await self.session.flush()
        return row

    async def installment(self, customer: Customer, due: date, amount: str = "250.00") -> uuid.UUID:
        self.count += 1
        row = Installment(
            tenant_id=self.tenant_id,
            customer_id=customer.id,
            external_id=f"P-{self.count}",
            principal=Decimal(amount),
            due_date=due,
        )
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def plan(self, now: datetime = MONDAY_9AM) -> Any:
        return await plan_tenant(self.session, self.tenant_id, now)

    async def attempts(self, customer: Customer | None = None) -> list[ContactAttempt]:
        query = select(ContactAttempt).where(ContactAttempt.tenant_id == self.tenant_id)
        if customer is not None:
            query = query.where(ContactAttempt.customer_id == customer.id)
        return list(await self.session.scalars(query.order_by(ContactAttempt.offset_days)))

    async def items_of(self, attempt: ContactAttempt) -> set[uuid.UUID]:
        rows = await self.session.scalars(
            select(ContactAttemptItem.installment_id).where(
                ContactAttemptItem.attempt_id == attempt.id
            )
        )
        return set(rows)


@pytest.fixture
async def shop(session: AsyncSession, ids: Identities) -> Shop:
    party = await ids.party("Loja Régua")
    await use_scope(session, SYSTEM)
    for data in (
        schemas.WhatsAppIn(
            name="WhatsApp",
            phone_number_id=str(uuid.uuid4().int)[:15],
            waba_id="1",
            display_number="+55 11 4000-0000",
            access_token="t",
            app_secret="s",
            verify_token="v",
        ),
        schemas.SmsIn(name="SMS", account_sid="AC1", auth_token="t", from_number="+5511940000000"),
    ):
        await channels.create(session, party.tenant.id, data, ACTOR)
    return Shop(session, party.tenant.id)


def planned(attempts: Sequence[ContactAttempt]) -> list[ContactAttempt]:
    return [a for a in attempts if a.state == "queued"]


async def test_a_step_fires_once_however_often_the_planner_runs(shop: Shop) -> None:
    maria = await shop.customer()
    await shop.installment(maria, TODAY + timedelta(days=3))

    first = await shop.plan()
    again = await shop.plan()
    later = await shop.plan(MONDAY_9AM + timedelta(hours=5))

    assert first.planned == 1 and again.planned == 0 and later.planned == 0
    (attempt,) = await shop.attempts()
    assert attempt.state == "queued" and attempt.offset_days == -3
    assert attempt.template_name == "quita_lembrete_d3_v1"
    assert (attempt.channel, attempt.recipient) == ("whatsapp", "+5511987650001")
    assert attempt.planned_for == MONDAY_9AM  # inside the window: now
    assert attempt.contact_day == TODAY
    jobs = list(
        await shop.session.scalars(select(OutboxJob).where(OutboxJob.actor == "collections.send"))
    )
    assert [(j.args, j.not_before, j.tenant_id) for j in jobs] == [
        ({"attempt_ids": [str(attempt.id)]}, MONDAY_9AM, shop.tenant_id)
    ]


async def test_everything_due_the_same_day_goes_in_one_message_with_the_latest_step(
    shop: Shop,
) -> None:
    maria = await shop.customer()
    due_today = await shop.installment(maria, TODAY)
    overdue = await shop.installment(maria, TODAY - timedelta(days=1))
    await shop.installment(maria, TODAY + timedelta(days=10))  # nothing due for this one yet

    result = await shop.plan()

    assert result.planned == 1
    (message,) = planned(await shop.attempts())
    assert message.offset_days == 1 and message.template_name == "quita_atraso_d1_v1"
    assert await shop.items_of(message) == {due_today, overdue}


async def test_steps_missed_during_downtime_are_recorded_not_sent_late(shop: Shop) -> None:
    maria = await shop.customer()
    await shop.installment(maria, TODAY - timedelta(days=10))  # -3, 0, +1, +5 passed long ago
    joana = await shop.customer(phone="+5511987650002")
    await shop.installment(joana, TODAY - timedelta(days=1))  # +1 today; -3 and 0 behind it

    result = await shop.plan()

    assert planned(await shop.attempts(maria)) == []
    reasons = {a.reason for a in await shop.attempts(maria)}
    assert reasons == {"missed"}
    (message,) = planned(await shop.attempts(joana))
    assert message.offset_days == 1
    assert result.skipped["missed"] == 4 and result.skipped["superseded"] == 2
    assert (await shop.plan()).planned == 0


async def test_outside_the_window_the_message_waits_for_the_debtors_morning(shop: Shop) -> None:
    saturday_afternoon = datetime(2026, 11, 28, 15, 0, tzinfo=SP)
    maria = await shop.customer()
    await shop.installment(maria, saturday_afternoon.date() + timedelta(days=3))

    await shop.plan(saturday_afternoon)

    (attempt,) = await shop.attempts()
    assert attempt.planned_for == datetime(2026, 11, 30, 8, 0, tzinfo=SP)  # Monday 08:00
    assert attempt.decisions[-1]["rule"] == "contact_window"
    assert attempt.decisions[-1]["held"] is True


async def test_the_window_is_the_debtors_own_time(shop: Shop) -> None:
    evening_in_sp = datetime(2026, 11, 23, 20, 30, tzinfo=SP)  # 18:30 in Rio Branco
    acre = await shop.customer(phone="+5568999870003", state="AC", city="Rio Branco")
    paulista = await shop.customer(phone="+5511987650009")
    for who in (acre, paulista):
        await shop.installment(who, TODAY + timedelta(days=3))

    await shop.plan(evening_in_sp)

    (in_acre,) = await shop.attempts(acre)
    (in_sp,) = await shop.attempts(paulista)
    assert in_acre.planned_for == evening_in_sp
    assert in_sp.planned_for == datetime(2026, 11, 24, 8, 0, tzinfo=SP)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"do_not_contact": True}, "do_not_contact"),
        ({"opted_out": ["whatsapp", "sms"]}, "opted_out"),
    ],
)
async def test_a_customer_who_must_not_be_contacted_is_held_with_the_reason(
    shop: Shop, change: dict[str, Any], reason: str
) -> None:
    maria = await shop.customer(**change)
    await shop.installment(maria, TODAY + timedelta(days=3))

    result = await shop.plan()

    (attempt,) = await shop.attempts()
    assert (attempt.state, attempt.reason) == ("skipped", reason)
    assert result.planned == 0 and result.skipped[reason] == 1


async def test_an_opt_out_of_whatsapp_falls_back_to_sms(shop: Shop) -> None:
    maria = await shop.customer(opted_out=["whatsapp"])
    await shop.installment(maria, TODAY + timedelta(days=3))

    await shop.plan()

    (attempt,) = await shop.attempts()
    assert (attempt.state, attempt.channel, attempt.fallback_channel) == ("queued", "sms", None)
    assert {"rule": "opted_out", "channel": "whatsapp", "held": True} in attempt.decisions


@pytest.mark.parametrize(
    ("phone_change", "reason"),
    [
        ({"status": "wrong_person"}, "phone_wrong_person"),
        ({"status": "unreachable"}, "phone_unreachable"),
        ({"no_call_list_since": TODAY - timedelta(days=31)}, "no_call_list"),
    ],
)
async def test_a_phone_that_may_not_be_used_holds_the_message(
    shop: Shop, session: AsyncSession, phone_change: dict[str, Any], reason: str
) -> None:
    maria = await shop.customer()
    await shop.installment(maria, TODAY + timedelta(days=3))
    await session.execute(
        update(CustomerPhone).where(CustomerPhone.customer_id == maria.id).values(**phone_change)
    )

    await shop.plan()

    (attempt,) = await shop.attempts()
    assert (attempt.state, attempt.reason) == ("skipped", reason)


async def test_a_do_not_call_enrolment_counts_only_from_its_30th_day(
    shop: Shop, session: AsyncSession
) -> None:
    maria = await shop.customer()
    await shop.installment(maria, TODAY + timedelta(days=3))
    await session.execute(
        update(CustomerPhone)
        .where(CustomerPhone.customer_id == maria.id)
        .values(no_call_list_since=TODAY - timedelta(days=29))
    )

    await shop.plan()

    assert [a.state for a in await shop.attempts()] == ["queued"]


async def test_a_paid_claim_hold_stops_the_customer_and_an_item_hold_only_that_item(
    shop: Shop, session: AsyncSession
) -> None:
    maria = await shop.customer()
    await shop.installment(maria, TODAY + timedelta(days=3))
    joana = await shop.customer(phone="+5511987650002")
    held = await shop.installment(joana, TODAY)
    free = await shop.installment(joana, TODAY - timedelta(days=1))
    until = datetime(2026, 11, 26, tzinfo=UTC)
    session.add_all(
        [
            CollectionHold(
                tenant_id=shop.tenant_id, customer_id=maria.id, kind="paid_claim", until=until
            ),
            CollectionHold(
                tenant_id=shop.tenant_id,
                customer_id=joana.id,
                installment_id=held,
                kind="promise",
                until=until,
            ),
        ]
    )
    await session.flush()

    await shop.plan()

    (maria_attempt,) = await shop.attempts(maria)
    assert maria_attempt.reason == "hold_paid_claim"
    joana_attempts = await shop.attempts(joana)
    (message,) = planned(joana_attempts)
    assert await shop.items_of(message) == {free}
    apart = next(a for a in joana_attempts if a.reason == "hold_installment")
    assert await shop.items_of(apart) == {held}


async def test_the_frequency_caps_count_every_message_of_the_customer(
    shop: Shop, session: AsyncSession
) -> None:
    maria = await shop.customer()
    await shop.installment(maria, TODAY + timedelta(days=3))
    joana = await shop.customer(phone="+5511987650002")
    await shop.installment(joana, TODAY + timedelta(days=3))
    earlier = [(maria, TODAY)] + [(joana, TODAY - timedelta(days=d)) for d in (2, 4, 6)]
    for who, day in earlier:  # a manual reminder today; three messages this week
        session.add(
            ContactAttempt(
                tenant_id=shop.tenant_id,
                customer_id=who.id,
                kind="manual",
                channel="sms",
                state="delivered",
                contact_day=day,
                planned_for=datetime.combine(day, datetime.min.time(), SP),
            )
        )
    await session.flush()

    await shop.plan()

    assert [a.reason for a in await shop.attempts(maria) if a.kind == "regua"] == ["daily_cap"]
    assert [a.reason for a in await shop.attempts(joana) if a.kind == "regua"] == ["weekly_cap"]


async def test_a_segment_regua_serves_the_customers_with_its_tag(
    shop: Shop, session: AsyncSession
) -> None:
    vip = Cadence(tenant_id=shop.tenant_id, name="VIP", tags_any=["vip"], priority=10)
    session.add(vip)
    await session.flush()
    session.add(
        CadenceStep(
            tenant_id=shop.tenant_id,
            cadence_id=vip.id,
            offset_days=-7,
            channel="whatsapp",
            fallback_channel=None,
            variants=[{"template": "quita_lembrete_d3_v1", "weight": 1}],
        )
    )
    await session.flush()
    gold = await shop.customer(tags=["vip"])
    plain = await shop.customer(phone="+5511987650002")
    for who in (gold, plain):
        await shop.installment(who, TODAY + timedelta(days=7))

    await shop.plan()

    assert [a.offset_days for a in await shop.attempts(gold)] == [-7]
    assert await shop.attempts(plain) == []  # the default régua starts at -3


async def test_send_now_covers_what_is_due_and_counts_against_the_daily_cap(shop: Shop) -> None:
    maria = await shop.customer()
    overdue = await shop.installment(maria, TODAY - timedelta(days=6))
    await shop.installment(maria, TODAY + timedelta(days=20))  # not yet: left out

    now_message = await remind(shop.session, shop.tenant_id, maria.id, MONDAY_9AM)
    second = await remind(shop.session, shop.tenant_id, maria.id, MONDAY_9AM)
    await shop.plan()

    assert (now_message.kind, now_message.state) == ("manual", "queued")
    assert now_message.template_name == "quita_atraso_d5_v1"  # the step +6 days has reached
    assert await shop.items_of(now_message) == {overdue}
    assert (second.state, second.reason) == ("skipped", "daily_cap")
    regua = [a for a in await shop.attempts(maria) if a.kind == "regua"]
    assert {a.reason for a in regua} >= {"daily_cap"}  # the régua's own step waits its turn


async def test_send_now_with_nothing_due_is_refused(shop: Shop) -> None:
    maria = await shop.customer()
    await shop.installment(maria, TODAY + timedelta(days=20))

    with pytest.raises(NothingToRemind):
        await remind(shop.session, shop.tenant_id, maria.id, MONDAY_9AM)


async def test_the_scheduler_queues_one_planning_job_per_retailer(
    shop: Shop, sessionmaker: Any
) -> None:
    from shared.queue import scheduler

    await scheduler.tick(sessionmaker)

    jobs = await shop.session.scalars(
        select(OutboxJob.tenant_id).where(OutboxJob.actor == "collections.plan")
    )
    assert shop.tenant_id in set(jobs)  # the tick sees every tenant (it is the platform's)


@pytest.mark.parametrize(
    ("tier", "limit"),
    [("TIER_250", 250), ("TIER_2K", 2000), ("10k", 10000), ("100000", 100000),
     ("TIER_UNLIMITED", None), (None, None)],
)  # fmt: skip
def test_messaging_tiers_read_as_daily_reach(tier: str | None, limit: int | None) -> None:
    assert reach_limit(tier) == limit


async def test_beyond_the_whatsapp_messaging_limit_the_message_goes_by_sms(
    shop: Shop, session: AsyncSession
) -> None:
    await session.execute(
        update(Channel)
        .where(Channel.tenant_id == shop.tenant_id, Channel.kind == "whatsapp")
        .values(config=Channel.config.op("||")(text("""'{"messaging_tier": "2"}'::jsonb""")))
    )
    people = [await shop.customer(phone=f"+551198765000{i}") for i in range(3)]
    for who in people:
        await shop.installment(who, TODAY + timedelta(days=3))

    result = await shop.plan()

    channels_used = sorted(a.channel for a in await shop.attempts())
    assert channels_used == ["sms", "whatsapp", "whatsapp"]
    assert result.skipped["messaging_limit"] == 1
    rerouted = next(a for a in await shop.attempts() if a.channel == "sms")
    assert any(d["rule"] == "messaging_limit" for d in rerouted.decisions)


async def test_a_paused_channel_makes_its_messages_wait_without_using_up_the_step(
    shop: Shop, session: AsyncSession
) -> None:
    maria = await shop.customer()
    await shop.installment(maria, TODAY + timedelta(days=3))
    whatsapp = Channel.tenant_id == shop.tenant_id, Channel.kind == "whatsapp"
    await session.execute(update(Channel).where(*whatsapp).values(status="paused"))

    held = await shop.plan()
    await session.execute(update(Channel).where(*whatsapp).values(status="active"))
    resumed = await shop.plan(MONDAY_9AM + timedelta(hours=1))

    assert held.planned == 0 and held.skipped["channel_paused"] == 1
    assert resumed.planned == 1
    (attempt,) = await shop.attempts()
    assert attempt.channel == "whatsapp"  # it waited; it did not go by SMS


async def _sixty_planned_send_jobs(shop: Shop) -> list[OutboxJob]:
    """Sixty debtors with a step due now, planned: the send jobs, in the order they fall due."""
    for n in range(60):
        debtor = await shop.customer(phone=f"+55119876{n:05d}")
        await shop.installment(debtor, TODAY + timedelta(days=3))
    assert (await shop.plan()).planned == 60
    return list(
        await shop.session.scalars(
            select(OutboxJob)
            .where(OutboxJob.actor == "collections.send")
            .order_by(OutboxJob.not_before)
        )
    )


async def test_a_big_plans_send_jobs_fall_due_at_the_pace_of_the_retailers_number(
    shop: Shop,
) -> None:
    before = datetime.now(UTC)
    jobs = await _sixty_planned_send_jobs(shop)

    assert [len(j.args["attempt_ids"]) for j in jobs] == [25, 25, 10]
    # the first at once; each next one when the number has sent the one before (25 messages
    # at 75 % of 80 msg/s), from the real instant since the plan's own is past
    each = timedelta(seconds=25 / 60)
    assert jobs[0].not_before == MONDAY_9AM
    assert before + each <= jobs[1].not_before <= datetime.now(UTC) + each
    assert jobs[2].not_before - jobs[1].not_before == each


async def test_sms_send_jobs_fall_due_at_the_pace_of_the_sms_account(shop: Shop) -> None:
    await shop.session.execute(
        update(CadenceStep)
        .where(CadenceStep.tenant_id == shop.tenant_id)
        .values(channel="sms", fallback_channel=None)
    )
    jobs = await _sixty_planned_send_jobs(shop)

    assert [len(j.args["attempt_ids"]) for j in jobs] == [25, 25, 10]
    # 25 messages at 75 % of the account's 10 msg/s, not at the WhatsApp number's pace
    assert jobs[2].not_before - jobs[1].not_before == timedelta(seconds=25 / 7.5)
