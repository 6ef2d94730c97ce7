"""Segment counting for GSM-7 and UCS-2 (GSM 03.38), and folding Portuguese accents to GSM-7."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.integrations.sms.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    Encoding,
    SegmentCount,
    count_segments,
    gsm_fold,
    is_gsm7,
    segments,
)

PORTUGUESE_OUTSIDE_GSM = "ãõâêôáíóúçÁÍÓÚÂÊÔÃÕ"
REMINDER = "Olá Maria, sua parcela de R$\u00a0150,00 na Loja Exemplo vence amanhã. Pague com Pix."


@pytest.mark.parametrize(
    ("length", "expected"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3)]
)
def test_gsm7_fits_160_alone_and_153_per_part(length: int, expected: int) -> None:
    assert count_segments("a" * length) == SegmentCount(Encoding.GSM7, expected, length)


@pytest.mark.parametrize(("length", "expected"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_fits_70_alone_and_67_per_part(length: int, expected: int) -> None:
    counted = count_segments("ã" * length)

    assert (counted.encoding, counted.segments) == (Encoding.UCS2, expected)


@pytest.mark.parametrize("char", sorted("€[]{}^~\\|"))
def test_extension_characters_count_two_septets(char: str) -> None:
    assert count_segments(char * 80) == SegmentCount(Encoding.GSM7, 1, 160)
    assert segments(char * 81) == 2


def test_an_escape_pair_is_never_split_across_parts() -> None:
    # 306 septets would fill two parts of 153 exactly, but "€" (escape + char) arrives at
    # septet 153: the first part stops at 152 and the text needs a third part.
    text = "a" * 152 + "€" + "a" * 152
    assert count_segments(text).units == 306
    assert segments(text) == 3
    assert segments("a" * 151 + "€" + "a" * 151) == 2


def test_an_emoji_takes_two_ucs2_units_and_is_not_split() -> None:
    assert count_segments("💸" * 35) == SegmentCount(Encoding.UCS2, 1, 70)
    assert segments("a" * 66 + "💸" + "a" * 66) == 3


@pytest.mark.parametrize("char", list("àéèùìòÇØøÅåÄÖÑÜ§¿äöñüÉÆæß¡£¥ΔΦΓΛΩΠΨΣΘΞ"))
def test_gsm_basic_table_letters_stay_gsm7(char: str) -> None:
    assert is_gsm7(f"Olá {char}") is False  # "á" is not GSM-7
    assert is_gsm7(f"Ola {char}")


@pytest.mark.parametrize("char", list(PORTUGUESE_OUTSIDE_GSM))
def test_portuguese_accents_outside_gsm7_force_ucs2(char: str) -> None:
    assert count_segments(f"Vence amanh{char}").encoding is Encoding.UCS2


def test_an_empty_text_is_zero_segments() -> None:
    assert segments("") == 0


def test_a_portuguese_reminder_folds_to_one_gsm7_segment() -> None:
    folded = gsm_fold(REMINDER)

    assert folded == (
        "Ola Maria, sua parcela de R$ 150,00 na Loja Exemplo vence amanha. Pague com Pix."
    )
    assert count_segments(REMINDER).encoding is Encoding.UCS2
    assert count_segments(folded) == SegmentCount(Encoding.GSM7, 1, len(folded))


def test_fold_keeps_gsm7_letters_and_what_has_no_stand_in() -> None:
    assert gsm_fold("Çà é ü ñ") == "Çà é ü ñ"
    assert gsm_fold("ação 1ª “ok” \u2013 💸") == 'acao 1a "ok" - 💸'


FOLDABLE = st.text(
    alphabet=st.sampled_from(
        sorted(GSM7_BASIC | GSM7_EXTENSION)
        + list(PORTUGUESE_OUTSIDE_GSM)
        + list("ÀÈÌÒÙàèìòùÉÍÚëïÿ\u00a0\u2019\u201c\u201d\u2013ºª")
    ),
    max_size=400,
)


@given(FOLDABLE)
def test_folded_portuguese_text_is_always_gsm7_and_never_longer(text: str) -> None:
    folded = gsm_fold(text)

    assert is_gsm7(folded)
    assert len(folded) == len(text)
    assert segments(folded) <= segments(text)


@given(st.text(max_size=300))
def test_fold_never_grows_a_text_and_is_idempotent(text: str) -> None:
    folded = gsm_fold(text)

    assert len(folded) <= len(text)
    assert segments(folded) <= segments(text)
    assert gsm_fold(folded) == folded


@given(st.text(max_size=500))
def test_segments_are_enough_for_the_text(text: str) -> None:
    counted = count_segments(text)
    single, part = (160, 153) if counted.encoding is Encoding.GSM7 else (70, 67)

    if counted.units == 0:
        assert counted.segments == 0
    elif counted.units <= single:
        assert counted.segments == 1
    else:
        # At least the ideal packing, at most one unit lost per part to an unsplit pair.
        assert -(-counted.units // part) <= counted.segments <= -(-counted.units // (part - 1))
