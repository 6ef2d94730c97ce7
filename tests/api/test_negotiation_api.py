"""Negotiation through the API, as a retailer and its collection agency use it: the policy and
its versions, an agency's limits under its mandate, the menu of offers and an operator's own
terms, refused naming the limit they exceed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.models import AuditEvent, Role
from shared.tenancy import SYSTEM, use_scope
from tests.support.identity import Identities, Party, bearer

POLICY = {
    "max_discount_fees_percent": "80",
    "max_discount_principal_percent": "20",
    "min_down_payment_percent": "10",
    "max_installments": 10,
    "min_installment_amount": "25.00",
    "monthly_interest_percent": "1.5",
    "offer_validity_hours": 48,
    "max_broken_agreements": 1,
}


class Caller:
    def __init__(self, api: httpx.AsyncClient, token: str) -> None:
        self.api, self.headers = api, bearer(token)

    async def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return await self.api.request(method, path, json=body, headers=self.headers)


@pytest.fixture
async def shop(api: httpx.AsyncClient, ids: Identities) -> tuple[Party, Caller]:
    """A retailer whose customer owes two overdue installments and one not yet due."""
    party = await ids.party("Loja Negociadora")
    owner = Caller(api, await ids.token(party))
    r = await owner.call(
        "PUT",
        "/v1/customers/C-1",
        {"name": "Cliente Teste", "phones": ["+5511987650001"], "state": "SP", "tags": ["ext"]},
    )
    assert r.status_code == 201, r.text
    for ext, principal, due in (
        ("P-1", "400.00", "2026-01-10"),
        ("P-2", "400.00", "2026-02-10"),
        ("P-3", "400.00", "2099-02-10"),
    ):
        body = {"customer_external_id": "C-1", "principal": principal, "due_date": due}
        r = await owner.call("PUT", f"/v1/installments/{ext}", body)
        assert r.status_code == 201, r.text
    return party, owner


async def _agency(
    api: httpx.AsyncClient, ids: Identities, owner: Caller, actions: list[str]
) -> tuple[str, Caller]:
    agency = await ids.party("Agência Parceira", "agency")
    r = await owner.call(
        "POST", "/v1/mandates", {"agency_id": str(agency.id), "actions": actions, "tags": ["ext"]}
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], Caller(api, await ids.token(agency, role=Role.OPERATOR))


def _adds_up(option: dict[str, Any]) -> bool:
    down = Decimal(option["down_payment"]["amount"]) if option["down_payment"] else Decimal(0)
    paid = down + sum((Decimal(i["amount"]) for i in option["installments"]), Decimal(0))
    return paid == Decimal(option["negotiated_total"]) + Decimal(option["interest"])


# --- the policy --------------------------------------------------------------------------------


async def test_a_retailer_starts_with_the_default_policy_as_version_1(
    shop: tuple[Party, Caller],
) -> None:
    _, owner = shop

    r = await owner.call("GET", "/v1/settings/negotiation")

    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    assert Decimal(r.json()["max_discount_principal_percent"]) == 0
    assert r.json()["max_installments"] == 6


async def test_saving_the_policy_makes_a_new_version_and_old_offers_keep_theirs(
    shop: tuple[Party, Caller], session: AsyncSession
) -> None:
    _, owner = shop
    before = await owner.call("POST", "/v1/customers/C-1/offers")

    saved = await owner.call("PUT", "/v1/settings/negotiation", POLICY)
    after = await owner.call("POST", "/v1/customers/C-1/offers")
    again = await owner.call("GET", f"/v1/offers/{before.json()['id']}")

    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 2
    assert (await owner.call("GET", "/v1/settings/negotiation")).json()["version"] == 2
    assert before.json()["policy_version"] == 1
    assert after.json()["policy_version"] == 2
    assert again.json()["policy_version"] == 1
    assert again.json()["options"] == before.json()["options"]
    old_today = before.json()["options"][0]
    new_today = after.json()["options"][0]
    assert Decimal(old_today["discount_principal"]) == 0
    assert Decimal(new_today["discount_principal"]) == Decimal("160.00")  # 20 % of 800
    await use_scope(session, SYSTEM)
    audited = await session.scalar(
        select(AuditEvent).where(AuditEvent.action == "negotiation_policy.created")
    )
    assert audited is not None and audited.subject_id == "2"


async def test_a_policy_out_of_range_is_refused_naming_each_field(
    shop: tuple[Party, Caller],
) -> None:
    _, owner = shop
    bad = {**POLICY, "max_discount_fees_percent": "150", "offer_validity_hours": 0}

    r = await owner.call("PUT", "/v1/settings/negotiation", bad)

    assert r.status_code == 422, r.text
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"max_discount_fees_percent", "offer_validity_hours"}


# --- offers ------------------------------------------------------------------------------------


async def test_the_menu_covers_the_overdue_installments_and_every_option_adds_up(
    shop: tuple[Party, Caller],
) -> None:
    _, owner = shop

    r = await owner.call("POST", "/v1/customers/C-1/offers")

    assert r.status_code == 201, r.text
    offer = r.json()
    assert len(offer["installment_ids"]) == 2  # the one due in 2099 is not negotiated
    assert offer["options"][0]["id"] == "pay_today"
    assert offer["options"][-1]["id"] == "new_date"
    assert all(_adds_up(o) for o in offer["options"])
    assert all(o["explain"] for o in offer["options"])
    assert offer["expired"] is False
    owed = sum((Decimal(b["total"]) for b in offer["basis"]), Decimal(0))
    assert all(Decimal(o["original_total"]) == owed for o in offer["options"])


async def test_the_same_debt_on_the_same_day_gets_the_same_menu(
    shop: tuple[Party, Caller],
) -> None:
    _, owner = shop

    first = await owner.call("POST", "/v1/customers/C-1/offers")
    second = await owner.call("POST", "/v1/customers/C-1/offers", {"installment_ids": None})

    assert first.json()["id"] != second.json()["id"]
    assert first.json()["options"] == second.json()["options"]


async def test_a_chosen_installment_alone_and_a_not_overdue_one_refused(
    shop: tuple[Party, Caller],
) -> None:
    _, owner = shop
    menu = (await owner.call("POST", "/v1/customers/C-1/offers")).json()
    first = menu["installment_ids"][0]
    future = (await owner.call("GET", "/v1/installments/P-3")).json()["id"]

    one = await owner.call("POST", "/v1/customers/C-1/offers", {"installment_ids": [first]})
    refused = await owner.call("POST", "/v1/customers/C-1/offers", {"installment_ids": [future]})

    assert one.status_code == 201 and one.json()["installment_ids"] == [first]
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "installment_ids"


async def test_an_operators_terms_inside_the_policy_are_stored_and_add_up(
    shop: tuple[Party, Caller],
) -> None:
    _, owner = shop
    await owner.call("PUT", "/v1/settings/negotiation", POLICY)
    terms = {"discount_principal": "100.00", "installments": 4, "down_payment": "150.00"}

    r = await owner.call("POST", "/v1/customers/C-1/offers/custom", terms)

    assert r.status_code == 201, r.text
    [option] = r.json()["options"]
    assert r.json()["kind"] == "custom" and option["id"] == "custom"
    assert Decimal(option["discount_principal"]) == Decimal("100.00")
    assert len(option["installments"]) == 4
    assert Decimal(option["interest"]) > 0  # 1.5 % a month, Price table
    assert _adds_up(option)


async def test_nonsense_amounts_get_field_errors_not_a_500(shop: tuple[Party, Caller]) -> None:
    _, owner = shop

    r = await owner.call(
        "POST",
        "/v1/customers/C-1/offers/custom",
        {"discount_fees": "NaN", "discount_principal": "1e30", "down_payment": "-1"},
    )

    assert r.status_code == 422, r.text
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"discount_fees", "discount_principal", "down_payment"}


async def test_a_customer_with_nothing_overdue_gets_a_clear_422(
    shop: tuple[Party, Caller],
) -> None:
    _, owner = shop
    await owner.call("PUT", "/v1/customers/C-2", {"name": "Em Dia", "phones": ["+5511987650002"]})

    r = await owner.call("POST", "/v1/customers/C-2/offers")

    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "installment_ids"


# --- agencies ----------------------------------------------------------------------------------


async def test_an_agency_cannot_give_a_discount_its_mandate_does_not_allow(
    api: httpx.AsyncClient, ids: Identities, shop: tuple[Party, Caller], session: AsyncSession
) -> None:
    _, owner = shop
    await owner.call("PUT", "/v1/settings/negotiation", POLICY)
    mandate_id, agency = await _agency(api, ids, owner, ["read", "negotiate"])
    limits = await owner.call(
        "PUT",
        f"/v1/mandates/{mandate_id}/negotiation-limits",
        {"max_discount_principal_percent": "10"},
    )
    assert limits.status_code == 200, limits.text

    too_much = await agency.call(
        "POST", "/v1/customers/C-1/offers/custom", {"discount_principal": "100.00"}
    )
    allowed = await agency.call(
        "POST", "/v1/customers/C-1/offers/custom", {"discount_principal": "80.00"}
    )
    menu = await agency.call("POST", "/v1/customers/C-1/offers")

    assert too_much.status_code == 422, too_much.text
    [error] = too_much.json()["errors"]
    assert error["field"] == "discount_principal"
    assert error["message"] == "at most 10% (R$\u00a080,00) under your mandate"
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["mandate_id"] == mandate_id
    assert menu.status_code == 201
    assert Decimal(menu.json()["options"][0]["discount_principal"]) == Decimal("80.00")
    assert menu.json()["limits"]["sources"]["max_discount_principal_percent"] == "mandate"
    seen = await agency.call("GET", f"/v1/offers/{menu.json()['id']}")
    assert seen.status_code == 200
    await use_scope(session, SYSTEM)
    actions = set(
        await session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.subject_id.in_([mandate_id, seen.json()["id"]])
            )
        )
    )
    assert {"mandate.negotiation_limits_set", "offer.created"} <= actions


async def test_a_mandate_limit_looser_than_the_policy_is_refused_naming_the_field(
    api: httpx.AsyncClient, ids: Identities, shop: tuple[Party, Caller]
) -> None:
    _, owner = shop
    await owner.call("PUT", "/v1/settings/negotiation", POLICY)
    mandate_id, _ = await _agency(api, ids, owner, ["read", "negotiate"])

    r = await owner.call(
        "PUT",
        f"/v1/mandates/{mandate_id}/negotiation-limits",
        {"max_discount_principal_percent": "30", "max_installments": 4},
    )

    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "max_discount_principal_percent"
    assert error["code"] == "looser_than_policy"
    assert "at most 20" in error["message"]


async def test_the_agency_reads_its_limits_but_only_the_retailer_sets_them(
    api: httpx.AsyncClient, ids: Identities, shop: tuple[Party, Caller]
) -> None:
    _, owner = shop
    mandate_id, agency = await _agency(api, ids, owner, ["read", "negotiate"])
    path = f"/v1/mandates/{mandate_id}/negotiation-limits"
    await owner.call("PUT", path, {"max_installments": 3})

    read = await agency.call("GET", path)
    write = await agency.call("PUT", path, {"max_installments": 6})

    assert read.status_code == 200, read.text
    assert read.json()["max_installments"] == 3
    assert read.json()["effective"]["max_installments"] == 3
    assert write.status_code in (403, 404)
    assert (await agency.call("PUT", "/v1/settings/negotiation", POLICY)).status_code == 403


async def test_an_agency_without_the_negotiate_action_gets_no_offers(
    api: httpx.AsyncClient, ids: Identities, shop: tuple[Party, Caller]
) -> None:
    _, owner = shop
    _, agency = await _agency(api, ids, owner, ["read", "message"])

    r = await agency.call("POST", "/v1/customers/C-1/offers")

    assert r.status_code == 404


async def test_another_retailer_cannot_see_an_offer(
    ids: Identities, api: httpx.AsyncClient, shop: tuple[Party, Caller]
) -> None:
    _, owner = shop
    offer = (await owner.call("POST", "/v1/customers/C-1/offers")).json()
    other = Caller(api, await ids.token(await ids.party("Outra Loja")))

    assert (await other.call("GET", f"/v1/offers/{offer['id']}")).status_code == 404
    assert (await other.call("POST", "/v1/customers/C-1/offers")).status_code == 404


# --- sending an offer ---------------------------------------------------------------------------


async def test_an_accepted_or_foreign_offer_is_not_sent(
    ids: Identities, api: httpx.AsyncClient, shop: tuple[Party, Caller]
) -> None:
    _, owner = shop
    offer = (await owner.call("POST", "/v1/customers/C-1/offers")).json()
    other = Caller(api, await ids.token(await ids.party("Outra Loja Envio")))
    assert (await other.call("POST", f"/v1/offers/{offer['id']}/send")).status_code == 404

    r = await owner.call("POST", f"/v1/offers/{offer['id']}/accept", {"option_id": "pay_today"})
    assert r.status_code in (200, 201), r.text
    refused = await owner.call("POST", f"/v1/offers/{offer['id']}/send")
    assert refused.status_code == 409 and refused.json()["code"] == "offer_already_accepted"
