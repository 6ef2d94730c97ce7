"""Customers, installments, balances, Pix and payments through the API, as an ERP uses them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.brazil.pix import decode
from shared.domains.identity import schemas as identity_schemas
from shared.domains.identity import service as identity
from shared.domains.identity.service import CLI_ACTOR
from shared.domains.money.pixcodes import id_for_txid, txid_for
from shared.models import AuditEvent, CorrectionIndexRate, OutboxJob
from shared.tenancy import SYSTEM, use_scope
from tests.support.identity import Identities, Party, bearer

MARIA = {
    "name": "Maria da Silva",
    "document": "123.456.789-09",
    "phones": ["(11) 98765-4321", "+55 11 3265-4321"],
    "email": "Maria@Example.com",
    "state": "SP",
    "city": "São Paulo",
    "tags": ["crediario", "loja-centro"],
}


class Erp:
    """The retailer's system: an API client with its token."""

    def __init__(self, api: httpx.AsyncClient, party: Party, token: str) -> None:
        self.api, self.party, self.headers = api, party, bearer(token)

    async def put(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.api.put(path, json=body, headers=self.headers)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.api.get(path, params=params, headers=self.headers)

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.api.post(path, json=body, headers=self.headers)

    async def installment(self, ext: str, principal: str, due: str, **extra: Any) -> dict[str, Any]:
        r = await self.put(
            f"/v1/installments/{ext}",
            {"customer_external_id": "C-1", "principal": principal, "due_date": due, **extra},
        )
        assert r.status_code in (200, 201), r.text
        return dict(r.json())


@pytest.fixture
async def erp(api: httpx.AsyncClient, ids: Identities) -> Erp:
    party = await ids.party("Loja Exemplo")
    client = Erp(api, party, await ids.token(party, role=None))
    r = await client.put("/v1/customers/C-1", MARIA)
    assert r.status_code == 201, r.text
    return client


async def _audit(session: AsyncSession, action: str) -> list[AuditEvent]:
    await use_scope(session, SYSTEM)
    return list(
        await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


# --- customers ----------------------------------------------------------------------------------


async def test_a_customer_upsert_normalizes_and_repeating_it_changes_nothing(
    erp: Erp, session: AsyncSession
) -> None:
    first = (await erp.get("/v1/customers/C-1")).json()
    assert first["document"] == "12345678909"
    assert first["document_kind"] == "cpf"
    assert first["phones"] == ["+5511987654321", "+551132654321"]
    assert first["email"] == "maria@example.com"
    assert first["time_zone"] == "America/Sao_Paulo"

    again = await erp.put("/v1/customers/C-1", MARIA)
    assert again.status_code == 200
    assert again.json()["updated_at"] == first["updated_at"]
    assert len(await _audit(session, "customer.updated")) == 0

    by_id = await erp.get(f"/v1/customers/{first['id']}")
    assert by_id.json()["external_id"] == "C-1"


async def test_a_dropped_phone_is_kept_with_what_we_learned_about_it(erp: Erp) -> None:
    r = await erp.api.patch(
        "/v1/customers/C-1/phones/+5511987654321",
        json={"status": "wrong_person"},
        headers=erp.headers,
    )
    assert r.status_code == 200, r.text
    await erp.put("/v1/customers/C-1", {**MARIA, "phones": ["+551132654321"]})
    back = await erp.put("/v1/customers/C-1", MARIA)
    details = {p["number"]: p for p in back.json()["phone_details"]}
    assert details["+5511987654321"]["status"] == "wrong_person"
    assert back.json()["phones"] == ["+5511987654321", "+551132654321"]


async def test_bad_customer_fields_are_reported_one_by_one(erp: Erp) -> None:
    r = await erp.put(
        "/v1/customers/C-2",
        {**MARIA, "document": "123.456.789-00", "phones": ["12345"], "state": "XX"},
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"document", "phones[0]", "state"}
    assert "123.456.789-00" not in r.text and "12345678900" not in r.text
    assert (await erp.get("/v1/customers/C-2")).status_code == 404


async def test_an_alphanumeric_cnpj_is_a_valid_customer_document(erp: Erp) -> None:
    r = await erp.put("/v1/customers/PJ-1", {"name": "Empresa", "document": "12.abc.345/01de-35"})
    assert r.status_code == 201, r.text
    assert r.json()["document"] == "12ABC34501DE35"
    assert r.json()["document_kind"] == "cnpj"


# --- balances: brazil-rules.md §1.6, to the centavo ---------------------------------------


@pytest.mark.parametrize(
    ("due", "paid", "fine", "interest", "total", "days"),
    [
        ("2025-03-10", "2025-04-24", "5.00", "3.75", "258.75", 45),  # A
        ("2025-03-10", "2025-03-11", "5.00", "0.08", "255.08", 1),  # B
        ("2025-03-10", "2025-04-09", "5.00", "2.50", "257.50", 30),  # C
        ("2025-03-08", "2025-03-10", "0.00", "0.00", "250.00", 0),  # D: Saturday, paid Monday
        ("2025-03-08", "2025-03-11", "5.00", "0.25", "255.25", 3),  # E: from the original date
    ],
)
async def test_worked_examples_come_out_to_the_centavo(
    erp: Erp, due: str, paid: str, fine: str, interest: str, total: str, days: int
) -> None:
    inst = await erp.installment("P-1", "250.00", due, contract="K-9", number=3, count=10)
    assert inst["label"] == "3 de 10"
    r = await erp.get(f"/v1/installments/{inst['id']}/balance", as_of=paid)
    assert r.status_code == 200, r.text
    b = r.json()
    got = (b["principal"], b["fine"], b["interest"], b["total"])
    assert got == ("250.00", fine, interest, total)
    assert b["days_overdue"] == days
    assert b["fee_rule_version"] == 1
    parts = Decimal(b["principal"]) + Decimal(b["correction"]) + Decimal(b["fine"])
    assert parts + Decimal(b["interest"]) - Decimal(b["discount"]) == Decimal(b["total"])


async def test_a_new_fee_rule_charges_only_installments_due_from_its_date(
    erp: Erp, ids: Identities
) -> None:
    owner = bearer(await ids.token(erp.party))
    too_high = await erp.api.post(
        "/v1/settings/fee-rules",
        json={"effective_from": "2099-01-01", "fine_percent": "2.5"},
        headers=owner,
    )
    assert too_high.status_code == 422
    assert too_high.json()["errors"][0]["field"] == "fine_percent"
    past = await erp.api.post(
        "/v1/settings/fee-rules", json={"effective_from": "2020-01-01"}, headers=owner
    )
    assert past.status_code == 422
    new = await erp.api.post(
        "/v1/settings/fee-rules",
        json={
            "effective_from": "2099-01-01",
            "fine_percent": "1",
            "monthly_interest_percent": "0.5",
        },
        headers=owner,
    )
    assert new.status_code == 201, new.text
    assert new.json()["version"] == 2

    old = await erp.installment("OLD", "250.00", "2025-03-10")
    future = await erp.installment("NEW", "250.00", "2099-03-10")
    a = (await erp.get(f"/v1/installments/{old['id']}/balance", as_of="2025-04-24")).json()
    b = (await erp.get(f"/v1/installments/{future['id']}/balance", as_of="2099-04-24")).json()
    assert (a["fee_rule_version"], a["total"]) == (1, "258.75")
    assert (b["fee_rule_version"], b["fine"], b["interest"]) == (2, "2.50", "1.88")
    versions = (await erp.api.get("/v1/settings/fee-rules", headers=owner)).json()
    assert [v["version"] for v in versions] == [1, 2]


# --- installments -------------------------------------------------------------------------------


async def test_an_installment_upsert_is_idempotent_and_amount_changes_are_audited(
    erp: Erp, session: AsyncSession
) -> None:
    first = await erp.installment("P-1", "250.00", "2025-03-10")
    assert first["status"] == "open" and first["collectable"] is True
    again = await erp.installment("P-1", "250", "2025-03-10")
    assert again["updated_at"] == first["updated_at"]
    await erp.installment("P-1", "275.50", "2025-03-10")
    changes = await _audit(session, "installment.amount_changed")
    assert [(e.data["before"]["principal"], e.data["after"]["principal"]) for e in changes] == [
        ("250.00", "275.50")
    ]


@pytest.mark.parametrize(
    ("principal", "message"),
    [("NaN", "decimal"), ("-1", "greater than zero"), ("1.001", "two decimal"), ("0", "greater")],
)
async def test_a_bad_principal_is_refused(erp: Erp, principal: str, message: str) -> None:
    r = await erp.put(
        "/v1/installments/X",
        {"customer_external_id": "C-1", "principal": principal, "due_date": "2025-03-10"},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "principal"
    assert message in r.json()["errors"][0]["message"]


async def test_an_installment_of_an_unknown_customer_is_refused(erp: Erp) -> None:
    r = await erp.put(
        "/v1/installments/X",
        {"customer_external_id": "nobody", "principal": "10.00", "due_date": "2025-03-10"},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "customer_external_id"


async def test_a_boleto_line_is_validated_and_decoded(erp: Erp) -> None:
    line = "00190.50095 40144.816069 06809.350314 3 37370000000100"
    inst = await erp.installment("B-1", "1.00", "2032-08-21", boleto_line=line)
    assert inst["boleto"]["barcode"] == "00193373700000001000500940144816060680935031"
    assert inst["boleto"]["amount"] == "1.00"
    bad = await erp.put(
        "/v1/installments/B-2",
        {
            "customer_external_id": "C-1",
            "principal": "1.00",
            "due_date": "2032-08-21",
            "boleto_line": line.replace("3 3737", "4 3737"),
        },
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "boleto_line"


async def test_lists_filter_and_page_with_a_cursor(erp: Erp) -> None:
    for n in range(1, 8):
        await erp.installment(f"L-{n}", "100.00", f"2025-0{n}-10")
    await erp.put("/v1/customers/C-2", {"name": "Outra Pessoa", "tags": ["vip"]})
    await erp.put(
        "/v1/installments/V-1",
        {"customer_external_id": "C-2", "principal": "50.00", "due_date": "2025-01-01"},
    )
    await erp.installment("L-7", "100.00", "2025-07-10", status="cancelled")

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, "status": ["open"], "customer": "C-1"}
        if cursor:
            params["cursor"] = cursor
        page = (await erp.get("/v1/installments/", **params)).json()
        seen += [i["external_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"L-{n}" for n in range(1, 7)]

    ranged = (await erp.get("/v1/installments/", due_from="2025-02-01", due_to="2025-03-31")).json()
    assert [i["external_id"] for i in ranged["items"]] == ["L-2", "L-3"]
    vip = (await erp.get("/v1/installments/", tag="vip")).json()
    assert [i["external_id"] for i in vip["items"]] == ["V-1"]
    customers = (await erp.get("/v1/customers/", tag="vip")).json()
    assert [c["external_id"] for c in customers["items"]] == ["C-2"]
    bad = await erp.get("/v1/installments/", cursor="not-a-cursor")
    assert bad.status_code == 422


async def test_a_cancelled_installment_stays_cancelled(erp: Erp) -> None:
    await erp.installment("P-1", "100.00", "2025-03-10", status="cancelled")
    r = await erp.put(
        "/v1/installments/P-1",
        {
            "customer_external_id": "C-1",
            "principal": "100.00",
            "due_date": "2025-03-10",
            "status": "open",
        },
    )
    assert r.status_code == 409
    assert r.json()["code"] == "status_conflict"


# --- Pix ----------------------------------------------------------------------------------------


async def _pix_settings(erp: Erp, ids: Identities) -> None:
    owner = bearer(await ids.token(erp.party))
    bad = await erp.api.put(
        "/v1/settings/pix",
        json={"key": "123.456.789-00", "merchant_name": "Loja", "city": "Recife"},
        headers=owner,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "key"
    ok = await erp.api.put(
        "/v1/settings/pix",
        json={
            "key": "11222333000181",
            "merchant_name": "Loja Exemplo São João",
            "city": "São Paulo",
        },
        headers=owner,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["key_type"] == "cnpj"
    assert ok.json()["city"] == "Sao Paulo"


async def test_the_pix_code_carries_the_balance_and_names_the_installment(
    erp: Erp, ids: Identities
) -> None:
    inst = await erp.installment("P-1", "250.00", "2025-03-10")
    none_yet = await erp.get(f"/v1/installments/{inst['id']}/pix", as_of="2025-04-24")
    assert none_yet.status_code == 409 and none_yet.json()["code"] == "pix_not_configured"
    await _pix_settings(erp, ids)

    r = await erp.get(f"/v1/installments/{inst['id']}/pix", as_of="2025-04-24")
    assert r.status_code == 200, r.text
    pix = r.json()
    code = decode(pix["payload"])
    assert code.amount == Decimal("258.75") and pix["amount"] == "258.75"
    assert code.key == "11222333000181"
    assert code.txid == pix["txid"] == txid_for(__import__("uuid").UUID(inst["id"]))
    assert str(id_for_txid(code.txid)) == inst["id"]
    assert code.merchant_name == "Loja Exemplo Sao Joao"

    svg = await erp.get(f"/v1/installments/{inst['id']}/pix/qr.svg", as_of="2025-04-24")
    png = await erp.get(f"/v1/installments/{inst['id']}/pix/qr.png", as_of="2025-04-24")
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"


# --- payments -----------------------------------------------------------------------------------


async def test_payments_settle_an_installment_once_and_overpayment_is_kept(
    erp: Erp, session: AsyncSession
) -> None:
    inst = await erp.installment("P-1", "250.00", "2025-03-10")
    pay = {
        "external_id": "PG-1",
        "installment_external_id": "P-1",
        "amount": "100.00",
        "paid_at": "2025-04-24T15:00:00-03:00",
        "method": "pix",
    }
    first = await erp.post("/v1/payments/", pay)
    assert first.status_code == 201, first.text
    assert first.json()["balance_before"] == "258.75"
    assert first.json()["installment_status"] == "partially_paid"
    replay = await erp.post("/v1/payments/", pay)
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    clash = await erp.post("/v1/payments/", {**pay, "amount": "99.00"})
    assert clash.status_code == 409

    left = (await erp.get(f"/v1/installments/{inst['id']}/balance", as_of="2025-04-24")).json()
    assert left["total"] == "158.75" and left["paid"] == "100.00"

    rest = await erp.post("/v1/payments/", {**pay, "external_id": "PG-2", "amount": "200.00"})
    assert rest.status_code == 201, rest.text
    assert (rest.json()["applied"], rest.json()["overpaid"]) == ("158.75", "41.25")
    assert rest.json()["installment_status"] == "paid"
    got = (await erp.get("/v1/installments/P-1")).json()
    assert got["status"] == "paid" and got["collectable"] is False and got["settled_at"]

    # a lagging ERP sending "open" does not undo money received
    again = await erp.installment("P-1", "250.00", "2025-03-10", status="open")
    assert again["status"] == "paid"
    await use_scope(session, SYSTEM)
    settled = await session.scalar(
        select(func.count()).where(OutboxJob.actor == "portfolio.installment_settled")
    )
    assert settled == 1
    assert len(await _audit(session, "payment.recorded")) == 2
    listed = (await erp.get(f"/v1/installments/{inst['id']}/payments")).json()
    assert [p["external_id"] for p in listed] == ["PG-1", "PG-2"]


async def test_a_payment_with_bad_fields_is_refused_field_by_field(erp: Erp) -> None:
    r = await erp.post(
        "/v1/payments/",
        {
            "external_id": "X",
            "amount": "-5",
            "paid_at": "2999-01-01T00:00:00Z",
            "method": "pix",
        },
    )
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"amount", "paid_at", "installment_id"}


# --- who sees what ------------------------------------------------------------------------------


async def test_an_agency_reads_only_the_mandated_segment_and_writes_nothing(
    erp: Erp, ids: Identities, session: AsyncSession
) -> None:
    await erp.put("/v1/customers/C-2", {"name": "Outra Pessoa", "tags": ["vip"]})
    agency = await ids.party("Agência", "agency")
    await use_scope(session, SYSTEM)
    await identity.create_mandate(
        session,
        erp.party.tenant,
        identity_schemas.MandateCreate(agency_id=agency.id, actions=["read"], tags=["vip"]),
        CLI_ACTOR,
    )
    await session.flush()
    them = bearer(await ids.token(agency))
    listed = (await erp.api.get("/v1/customers/", headers=them)).json()
    assert [c["external_id"] for c in listed["items"]] == ["C-2"]
    assert (await erp.api.get("/v1/customers/C-1", headers=them)).status_code == 404
    write = await erp.api.put("/v1/customers/C-9", json={"name": "X"}, headers=them)
    assert write.status_code == 403


async def test_today_is_the_default_date_of_a_balance(erp: Erp) -> None:
    inst = await erp.installment("P-1", "250.00", "2099-03-10")
    b = (await erp.get(f"/v1/installments/{inst['id']}/balance")).json()
    assert b["total"] == "250.00" and b["days_overdue"] == 0
    assert date.fromisoformat(b["as_of"]) <= date(2099, 3, 10)


async def test_ipca_correction_reproduces_the_handbook_illustration(
    erp: Erp, ids: Identities, session: AsyncSession
) -> None:
    """brazil-rules.md §1.6: 0,50 % and 0,40 % → P' 252,26, multa 5,05, juros 3,78, 261,09."""
    await use_scope(session, SYSTEM)
    session.add_all(
        [
            CorrectionIndexRate(index="ipca", month=date(2031, 3, 1), percent=Decimal("0.50")),
            CorrectionIndexRate(index="ipca", month=date(2031, 4, 1), percent=Decimal("0.40")),
        ]
    )
    await session.flush()
    owner = bearer(await ids.token(erp.party))
    rule = await erp.api.post(
        "/v1/settings/fee-rules",
        json={"effective_from": "2031-01-01", "correction_index": "ipca"},
        headers=owner,
    )
    assert rule.status_code == 201, rule.text
    inst = await erp.installment("IPCA", "250.00", "2031-03-10")
    b = (await erp.get(f"/v1/installments/{inst['id']}/balance", as_of="2031-04-24")).json()
    assert (b["correction"], b["fine"], b["interest"], b["total"]) == (
        "2.26",
        "5.05",
        "3.78",
        "261.09",
    )


async def test_an_installments_history_is_in_the_audit_trail(erp: Erp, ids: Identities) -> None:
    inst = await erp.installment("H-1", "100.00", "2025-03-10")
    await erp.installment("H-1", "120.00", "2025-03-10")
    await erp.post(
        "/v1/payments/",
        {
            "external_id": "PG-H",
            "installment_id": inst["id"],
            "amount": "50.00",
            "paid_at": "2025-03-10T12:00:00Z",
            "method": "cash",
        },
    )
    owner = bearer(await ids.token(erp.party))
    events = (
        await erp.api.get(
            "/v1/audit-events",
            params={"subject_type": "installment", "subject_id": inst["id"]},
            headers=owner,
        )
    ).json()
    assert [e["action"] for e in reversed(events)] == [
        "installment.created",
        "installment.amount_changed",
        "payment.recorded",
        "installment.status_changed",
    ]
    assert events[0]["data"]["to"] == "partially_paid"
