"""Reply intents: the issue's phrases, button payloads, wordless receipts, negation, precedence,
promise dates, the hand-made corpus (precision and recall per intent), and properties: never
raises, blind to case/accents/trailing punctuation/emojis, promise dates never in the past."""

from __future__ import annotations

import dataclasses
import unicodedata
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.intent_corpus import date_mistakes, load_corpus, misses, scores, table
from shared.domains.inbound.intents import (
    MAX_PROMISE_DAYS,
    PAYLOAD_DISPUTE,
    PAYLOAD_NEGOTIATE,
    PAYLOAD_NOT_ME,
    PAYLOAD_PAID,
    PAYLOAD_SECOND_COPY,
    PAYLOAD_STOP,
    Intent,
    IntentKind,
    classify,
    classify_media,
)

K = IntentKind
TODAY = date(2026, 3, 11)  # a Wednesday
CORPUS_TODAY, CORPUS = load_corpus()


def kind_of(text: str, today: date = TODAY) -> IntentKind:
    return classify(text, today=today).kind


def promised(text: str, today: date = TODAY) -> date | None:
    intent = classify(text, today=today)
    assert intent.kind is K.PROMISE, f"{text!r} read as {intent.kind}"
    return intent.promise_date


# --- the issue's phrases ------------------------------------------------------------------

ISSUE_PHRASES = [
    *[(t, K.OPT_OUT) for t in ["pare", "parar", "sair", "não quero mais receber", "stop"]],
    *[(t, K.WRONG_PERSON) for t in ["não sou eu", "número errado", "não conheço"]],
    *[(t, K.ALREADY_PAID) for t in ["já paguei", "paguei ontem"]],
    *[
        (t, K.SECOND_COPY)
        for t in ["2ª via", "segunda via", "manda o pix", "boleto", "código", "me manda o pix"]
    ],
    *[(t, K.NEGOTIATE) for t in ["quero parcelar", "negociar", "desconto", "acordo"]],
    *[(t, K.PROMISE) for t in ["pago dia 10", "pago sexta", "posso pagar dia 10?"]],
    *[(t, K.DISPUTE) for t in ["não reconheço", "não comprei"]],
    ("Oi, tudo bem?", K.OTHER),
]


@pytest.mark.parametrize(("text", "kind"), ISSUE_PHRASES)
def test_every_phrase_of_the_issue_reads_as_its_intent(text: str, kind: IntentKind) -> None:
    assert kind_of(text) is kind


def test_the_issues_promises_carry_their_dates() -> None:
    assert promised("pago dia 10") == date(2026, 4, 10)  # the 10th has passed this month
    assert promised("pago sexta") == date(2026, 3, 13)


# --- payloads and media -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (PAYLOAD_PAID, K.ALREADY_PAID),
        (PAYLOAD_NEGOTIATE, K.NEGOTIATE),
        (PAYLOAD_SECOND_COPY, K.SECOND_COPY),
        (PAYLOAD_STOP, K.OPT_OUT),
        (PAYLOAD_NOT_ME, K.WRONG_PERSON),
        (PAYLOAD_DISPUTE, K.DISPUTE),
    ],
)
def test_a_button_payload_decides_whatever_its_text(payload: str, kind: IntentKind) -> None:
    intent = classify("Olá", payload=payload, today=TODAY)
    assert intent.kind is kind
    assert intent.matched == payload
    assert intent.confidence == 1.0


def test_payloads_are_read_without_regard_to_case_or_spaces() -> None:
    assert classify(None, payload=" quita_stop ", today=TODAY).kind is K.OPT_OUT


def test_an_unknown_payload_falls_back_to_the_button_text() -> None:
    assert classify("Já paguei", payload="OLD_TEMPLATE_BTN_1", today=TODAY).kind is K.ALREADY_PAID
    assert classify("Ver depois", payload="OLD_TEMPLATE_BTN_2", today=TODAY).kind is K.OTHER


def test_a_receipt_image_or_document_without_words_counts_as_paid() -> None:
    assert classify_media("image").kind is K.ALREADY_PAID
    assert classify_media("document").kind is K.ALREADY_PAID
    assert classify(None, media="image", today=TODAY).kind is K.ALREADY_PAID
    assert classify("", media="document", today=TODAY).matched == "media:document"


def test_other_media_is_left_to_the_inbox() -> None:
    for kind in ["audio", "video", "sticker", "location"]:
        assert classify_media(kind).kind is K.OTHER


def test_a_caption_with_an_intent_wins_over_the_media_rule() -> None:
    assert classify("quero parcelar", media="image", today=TODAY).kind is K.NEGOTIATE
    assert classify("segue", media="image", today=TODAY).kind is K.ALREADY_PAID


def test_no_text_at_all_is_other() -> None:
    assert classify(None, today=TODAY) == Intent(K.OTHER)
    assert kind_of("   ") is K.OTHER
    assert kind_of("👍🙏") is K.OTHER


def test_intent_is_immutable() -> None:
    intent = classify("pare", today=TODAY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        intent.kind = K.OTHER  # type: ignore[misc]


# --- negation, "para", precedence ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("não paguei ainda", K.OTHER),
        ("ainda não paguei", K.OTHER),
        ("paguei não", K.OTHER),
        ("não quero parcelar", K.OTHER),
        ("não vou pagar", K.OTHER),
        ("não sou eu", K.WRONG_PERSON),
        ("Não, já paguei", K.ALREADY_PAID),
        ("nao ja paguei", K.ALREADY_PAID),  # a missing comma, not a negation
        ("ainda não paguei mas pago dia 20", K.PROMISE),
    ],
)
def test_negation_is_understood_where_it_matters(text: str, kind: IntentKind) -> None:
    assert kind_of(text) is kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("para", K.OPT_OUT),
        ("Para!", K.OPT_OUT),
        ("para, por favor", K.OPT_OUT),
        ("para de me mandar mensagem", K.OPT_OUT),
        ("pare de me mandar mensagem", K.OPT_OUT),
        ("para quem eu ligo?", K.OTHER),
        ("vou pagar para a loja", K.PROMISE),
        ("pare de me cobrar", K.OTHER),  # a complaint for an operator, not an opt-out
    ],
)
def test_para_is_a_stop_only_alone_or_before_what_to_stop(text: str, kind: IntentKind) -> None:
    assert kind_of(text) is kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("para de mandar mensagem que eu já paguei", K.OPT_OUT),
        ("não sou eu, não comprei nada", K.WRONG_PERSON),
        ("o valor está errado, eu paguei 3 parcelas", K.DISPUTE),
        ("já paguei, pode mandar o boleto da próxima?", K.ALREADY_PAID),
        ("manda o boleto que eu pago sexta", K.PROMISE),
        ("quero parcelar, me manda o boleto", K.SECOND_COPY),
        ("já paguei, não devo nada", K.ALREADY_PAID),  # a weak dispute yields to a payment
        ("não devo nada", K.DISPUTE),
        ("quero quitar com desconto", K.NEGOTIATE),  # "quero quitar" alone is weak
        ("quero pagar", K.SECOND_COPY),
    ],
)
def test_precedence_when_several_intents_match(text: str, kind: IntentKind) -> None:
    assert kind_of(text) is kind


# --- chat spelling ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("n sou eu", K.WRONG_PERSON),
        ("ñ sou eu", K.WRONG_PERSON),
        ("num sou eu", K.WRONG_PERSON),
        ("num errado", K.WRONG_PERSON),
        ("nº errado", K.WRONG_PERSON),
        ("vc mandou pro numero errado", K.WRONG_PERSON),
        ("n quero mais receber msg", K.OPT_OUT),
        ("manda o pix pfv", K.SECOND_COPY),
        ("pq vcs n param de mandar msg? pare", K.OPT_OUT),
        ("paaaaare", K.OPT_OUT),
        ("jaaaa pagueiii", K.ALREADY_PAID),
        ("pagei ontem", K.ALREADY_PAID),
        ("ja pgauei", K.ALREADY_PAID),  # two letters swapped
        ("numero erado", K.WRONG_PERSON),
        ("quero parselar", K.NEGOTIATE),
        ("quero negocear", K.NEGOTIATE),
        ("nao reconhesso", K.DISPUTE),
        ("tem dezconto?", K.NEGOTIATE),
        ("parar", K.OPT_OUT),  # a real word is never "corrected" into another ("pagar")
        ("tenho uma dúvida", K.OTHER),  # "dúvida" is not a typo of "dívida"
    ],
)
def test_chat_spelling_is_understood(text: str, kind: IntentKind) -> None:
    assert kind_of(text) is kind


def test_a_corrected_typo_lowers_the_confidence() -> None:
    assert classify("numero errado", today=TODAY).confidence == 0.9
    assert classify("numero erado", today=TODAY).confidence == 0.8


# --- promise dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pago dia 11", date(2026, 3, 11)),  # today itself is this month
        ("pago dia 30", date(2026, 3, 30)),
        ("pago dia 5", date(2026, 4, 5)),
        ("pago dia primeiro", date(2026, 4, 1)),
        ("pago dia 10 do mês que vem", date(2026, 4, 10)),
        ("pago 20/03", date(2026, 3, 20)),
        ("pago 20.03", date(2026, 3, 20)),
        ("pago 20/3/2026", date(2026, 3, 20)),
        ("pago 20/03/26", date(2026, 3, 20)),
        ("pago dia 2 de abril", date(2026, 4, 2)),
        ("vou pagar amanhã", date(2026, 3, 12)),
        ("vou pagar depois de amanhã", date(2026, 3, 13)),
        ("vou pagar hoje", TODAY),
        ("pago hoje de manhã", TODAY),  # "manhã" is the morning, not "amanhã"
        ("pago sexta-feira", date(2026, 3, 13)),
        ("pago na quarta", date(2026, 3, 18)),  # today is Wednesday: the next one
        ("pago segunda", date(2026, 3, 16)),
        ("pago sábado", date(2026, 3, 14)),
        ("pago domingo", date(2026, 3, 15)),
        ("vou pagar semana que vem", date(2026, 3, 18)),
        ("vou pagar no fim do mês", date(2026, 3, 31)),
        ("pago no final do mes", date(2026, 3, 31)),
        ("pago daqui a 5 dias", date(2026, 3, 16)),
        ("recebo dia 5 e pago dia 20", date(2026, 3, 20)),  # the date said after "pago"
        ("dia 20 eu pago", date(2026, 3, 20)),
    ],
)
def test_promise_dates_relative_to_today(text: str, expected: date) -> None:
    assert promised(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "vou pagar",
        "pago assim que receber",
        "pago quando cair o salário",
        "mês que vem eu pago",
        "pago dia 15 de maio",  # 65 days ahead
        "pago dia 45",
        "pago 31/02",
        "pago 05/03",  # passed this year: next year is too far
        "pago 20/03/2025",  # in the past
    ],
)
def test_a_promise_without_a_usable_date_has_none(text: str) -> None:
    assert promised(text) is None


def test_dates_cross_month_and_year_ends() -> None:
    new_year = date(2026, 12, 20)
    assert promised("pago dia 5", new_year) == date(2027, 1, 5)
    assert promised("pago 05/01", new_year) == date(2027, 1, 5)
    assert promised("vou pagar no fim do mês", date(2028, 2, 3)) == date(2028, 2, 29)
    assert promised("pago dia 31", date(2026, 4, 5)) is None  # April has no 31st


def test_a_reply_that_is_only_a_date_is_a_promise() -> None:
    assert promised("amanhã") == date(2026, 3, 12)
    assert promised("dia 20 sem falta") == date(2026, 3, 20)
    assert promised("pode ser dia 18?") == date(2026, 3, 18)
    assert promised("semana que vem") == date(2026, 3, 18)
    assert kind_of("Bom dia, dia lindo hoje") is K.OTHER
    assert kind_of("pode me ligar amanhã?") is K.OTHER


def test_second_copy_and_ordinals_are_not_weekdays() -> None:
    assert kind_of("segunda via") is K.SECOND_COPY
    assert classify("paguei a segunda parcela", today=TODAY).promise_date is None
    assert kind_of("a quinta parcela já foi paga") is K.ALREADY_PAID


# --- the corpus ---------------------------------------------------------------------------


def test_the_corpus_is_large_and_covers_every_intent() -> None:
    assert len(CORPUS) >= 250
    for kind in IntentKind:
        assert sum(e.kind is kind for e in CORPUS) >= 20, kind


def test_precision_and_recall_of_every_intent_over_the_corpus() -> None:
    got = [classify(e.text, today=CORPUS_TODAY) for e in CORPUS]
    rows = scores(CORPUS, got)
    report = "\n".join([*table(rows), *misses(CORPUS, got)])
    assert all(r.precision >= 0.9 and r.recall >= 0.9 for r in rows), report


def test_the_corpus_promises_carry_their_expected_dates() -> None:
    got = [classify(e.text, today=CORPUS_TODAY) for e in CORPUS]
    assert date_mistakes(CORPUS_TODAY, CORPUS, got) == []


# --- properties ---------------------------------------------------------------------------

days = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
corpus_texts = st.sampled_from([e.text for e in CORPUS])
EMOJIS = ["👍", "🙏", "😡", "🛑", "😅", "❤️", "👍🏽", "🇧🇷", "☺", "👨‍👩‍👧"]


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def same_reading(a: Intent, b: Intent) -> bool:
    return (a.kind, a.promise_date) == (b.kind, b.promise_date)


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=300), payload=st.none() | st.text(max_size=20), today=days)
def test_classify_never_raises(text: str, payload: str | None, today: date) -> None:
    intent = classify(text, payload=payload, today=today)
    assert isinstance(intent.kind, IntentKind)


@settings(max_examples=300, deadline=None)
@given(
    text=corpus_texts,
    case=st.sampled_from([str.upper, str.lower, str.title, str.swapcase]),
    accents=st.booleans(),
)
def test_case_and_accents_do_not_change_the_reading(text: str, case: object, accents: bool) -> None:
    changed = case(text)  # type: ignore[operator]
    if accents:
        changed = strip_accents(changed)
    assert same_reading(classify(text, today=CORPUS_TODAY), classify(changed, today=CORPUS_TODAY))


@settings(max_examples=300, deadline=None)
@given(
    text=corpus_texts,
    tail=st.text(alphabet="!?.,;:… ", max_size=6),
    emojis=st.lists(st.sampled_from(EMOJIS), max_size=3),
    where=st.sampled_from(["start", "end", "between"]),
)
def test_trailing_punctuation_and_emojis_do_not_change_the_reading(
    text: str, tail: str, emojis: list[str], where: str
) -> None:
    decorated = " ".join(emojis)
    if where == "start":
        changed = f"{decorated} {text}{tail}"
    elif where == "end":
        changed = f"{text}{tail} {decorated}"
    else:
        words = text.split(" ")
        middle = len(words) // 2
        changed = " ".join([*words[:middle], decorated, *words[middle:]]) + tail
    assert same_reading(classify(text, today=CORPUS_TODAY), classify(changed, today=CORPUS_TODAY))


WEEKDAYS = ["segunda", "terça", "quarta", "quinta", "sexta", "sábado", "domingo"]
MONTHS = ["janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto"]
date_phrases = st.one_of(
    st.integers(0, 40).map(lambda n: f"dia {n}"),
    st.tuples(st.integers(0, 35), st.integers(0, 14)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.tuples(st.integers(1, 31), st.integers(1, 12), st.integers(1990, 2110)).map(
        lambda t: f"{t[0]}/{t[1]}/{t[2]}"
    ),
    st.tuples(st.integers(1, 31), st.sampled_from(MONTHS)).map(lambda t: f"{t[0]} de {t[1]}"),
    st.integers(0, 99).map(lambda n: f"daqui a {n} dias"),
    st.sampled_from(
        [*WEEKDAYS, "amanhã", "depois de amanhã", "hoje", "fim do mês", "semana que vem"]
    ),
)


@settings(max_examples=500, deadline=None)
@given(
    verb=st.sampled_from(["pago", "vou pagar", "posso pagar", "te pago na", "", "até"]),
    when=date_phrases,
    today=days,
)
def test_promise_dates_are_never_past_nor_too_far(verb: str, when: str, today: date) -> None:
    intent = classify(f"{verb} {when}", today=today)
    if intent.promise_date is not None:
        assert intent.kind is K.PROMISE
        assert today <= intent.promise_date <= today + timedelta(days=MAX_PROMISE_DAYS)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200), today=days)
def test_any_text_gives_no_past_promise_date(text: str, today: date) -> None:
    day = classify(text, today=today).promise_date
    assert day is None or today <= day <= today + timedelta(days=MAX_PROMISE_DAYS)
