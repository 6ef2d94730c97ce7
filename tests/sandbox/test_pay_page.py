"""The payment page a message links to, opened as a debtor would: a check before anything
about the debt shows, today's amounts with a Pix that pays the message's installments, an
offer's options to choose from, and links that are forged, expired or guessed at refused."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import unescape

import httpx
from sqlalchemy import select

from shared.brazil.pix import decode
from shared.config import Settings
from shared.domains.paypage import links
from shared.models import Agreement
from shared.tenancy import SYSTEM, use_scope
from tests.support.jobs import drain
from tests.support.pix_world import CNPJ_KEY, Shop, World, message_about, pix_shop

CPF = "52998224725"  # a well-known test CPF, nobody's


async def _debtor_shop(world: World, settings: Settings, name: str) -> Shop:
    shop = await pix_shop(world, settings, name, CNPJ_KEY)
    r = await shop.call(
        "PUT",
        "/v1/customers/C-1",
        json={"name": "Cliente Teste", "state": "PE", "document": CPF},
    )
    assert r.status_code == 200, r.text
    return shop


def _path(kind: str, ident: uuid.UUID, days: float = 7) -> str:
    token = links.token(kind, ident, datetime.now(UTC) + timedelta(days=days))
    return f"/pagar/{token}"


def _copia_e_cola(page: str) -> str:
    found = re.search(r"<textarea[^>]*>([^<]+)</textarea>", page)
    assert found is not None, page
    return unescape(found.group(1))


async def _pass(client: httpx.AsyncClient, path: str) -> None:
    r = await client.post(path, data={"documento": CPF[:3]})
    assert r.status_code == 303 and r.headers["location"].endswith(path), r.text


async def test_the_page_asks_who_it_is_then_shows_todays_amounts_and_a_pix_that_pays_them(
    world: World, settings: Settings
) -> None:
    shop = await _debtor_shop(world, settings, "Loja Página")
    first = await shop.installment("P-1", "100.00")
    second = await shop.installment("P-2", "150.00")
    await shop.connect_psp(CNPJ_KEY)
    path = _path(links.ATTEMPT, await message_about(world, shop, first, second))
    debtor = world.api  # a phone's browser: keeps the page's cookie

    asked = await debtor.get(path)
    assert asked.status_code == 200
    assert "3 primeiros dígitos do seu CPF" in asked.text
    assert "250,00" not in asked.text and "Cliente" not in asked.text and "Loja" not in asked.text
    assert asked.headers["cache-control"] == "no-store"
    assert asked.headers["referrer-policy"] == "no-referrer"

    wrong = await debtor.post(path, data={"documento": "111"})
    assert wrong.status_code == 401 and "Restam 9 tentativas" in wrong.text
    await _pass(debtor, path)

    page = await debtor.get(path)
    assert page.status_code == 200, page.text
    assert "Olá, Cliente!" in page.text and "Parcela P-1" in page.text
    assert "Total a pagar hoje: R$\xa0250,00" in page.text and "<svg" in page.text
    assert "Credor: Loja Página" in page.text  # who collects, identified
    code = _copia_e_cola(page.text)
    assert decode(code).amount == Decimal("250.00")

    paid = await world.sandbox.post("/_sandbox/pix/pay", json={"copia_e_cola": code})
    assert paid.status_code == 201, paid.text
    await drain(world.maker)
    for inst in (first, second):
        got = (await shop.call("GET", f"/v1/installments/{inst['id']}")).json()
        assert got["status"] == "paid", got
    after = await debtor.get(path)
    assert "Não há nada a pagar nesta cobrança" in after.text


async def test_forged_expired_and_guessed_links_show_nothing(
    world: World, settings: Settings
) -> None:
    shop = await _debtor_shop(world, settings, "Loja Links")
    inst = await shop.installment("P-1", "100.00")
    message = await message_about(world, shop, inst)
    path = _path(links.ATTEMPT, message)
    forged = path[:-2] + ("AA" if not path.endswith("AA") else "BB")

    assert (await world.api.get(forged)).status_code == 404
    assert (await world.api.get(_path(links.ATTEMPT, uuid.uuid4()))).status_code == 404
    expired = await world.api.get(_path(links.ATTEMPT, message, days=-1))
    assert expired.status_code == 410 and "expirou" in expired.text

    for _ in range(9):
        assert (await world.api.post(path, data={"documento": "000"})).status_code == 401
    last = await world.api.post(path, data={"documento": "000"})
    assert last.status_code == 429 and "bloqueado" in last.text
    # the right answer no longer opens it, nor does a plain visit
    right = await world.api.post(path, data={"documento": CPF[:3]})
    visit = await world.api.get(path)
    assert (right.status_code, visit.status_code) == (429, 429)
    assert "bloqueado" in right.text and "bloqueado" in visit.text


async def test_an_offer_link_lists_the_options_and_choosing_one_makes_the_agreement(
    world: World, settings: Settings
) -> None:
    shop = await _debtor_shop(world, settings, "Loja Oferta")
    late = (date.today() - timedelta(days=20)).isoformat()
    r = await shop.call(
        "PUT",
        "/v1/installments/P-1",
        json={"customer_external_id": "C-1", "principal": "300.00", "due_date": late},
    )
    assert r.status_code == 201, r.text
    inst = r.json()
    made = await shop.call("POST", "/v1/customers/C-1/offers")
    assert made.status_code == 201, made.text
    offer = made.json()
    plan = next(o for o in offer["options"] if o["kind"] != "pay_today" and o["down_payment"])
    path = _path(links.OFFER, uuid.UUID(offer["id"]))

    await _pass(world.api, path)
    page = await world.api.get(path)
    assert page.status_code == 200, page.text
    assert page.text.count("Escolher esta opção") == len(offer["options"])

    chosen = await world.api.post(f"{path}/escolha", data={"opcao": plan["id"]})
    assert chosen.status_code == 303, chosen.text
    again = await world.api.post(f"{path}/escolha", data={"opcao": plan["id"]})
    assert again.status_code == 303  # a double tap makes one agreement
    done = await world.api.get(path)
    assert "Acordo fechado!" in done.text and "Agora: a entrada" in done.text
    entrada = Decimal(plan["down_payment"]["amount"])
    assert decode(_copia_e_cola(done.text)).amount == entrada

    got = (await shop.call("GET", f"/v1/installments/{inst['id']}")).json()
    assert got["status"] == "renegotiated"
    # an earlier reminder's page about it says so, and asks for nothing
    reminder = _path(links.ATTEMPT, await message_about(world, shop, inst))
    await _pass(world.api, reminder)
    assert "entraram em um acordo" in (await world.api.get(reminder)).text
    async with world.maker() as session:
        await use_scope(session, SYSTEM)
        agreements = list(await session.scalars(select(Agreement)))
    assert [a.option_id for a in agreements] == [plan["id"]]
