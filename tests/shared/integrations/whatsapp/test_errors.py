"""Error classes: every code of the contract's table (whatsapp-cloud-api.md §3.3) has its class,
and each class advises the retry policy the table recommends."""

from __future__ import annotations

import pytest

from shared.integrations.whatsapp.errors import (
    CODE_CLASSES,
    PAIR_MAX_ATTEMPTS,
    TRANSIENT_MAX_ATTEMPTS,
    Advice,
    ErrorClass,
    WhatsAppError,
    advice,
    classify,
)

C = ErrorClass

# The contract's table, row by row (the "200-299" row as its bounds and a middle value).
CONTRACT_TABLE: dict[int, ErrorClass] = {
    0: C.AUTH,
    190: C.AUTH,
    3: C.AUTH,
    10: C.AUTH,
    200: C.AUTH,
    250: C.AUTH,
    299: C.AUTH,
    4: C.RATE_LIMITED,
    80007: C.RATE_LIMITED,
    130429: C.RATE_LIMITED,
    131056: C.PAIR_LIMITED,
    131048: C.POLICY,
    131064: C.POLICY,
    368: C.POLICY,
    131031: C.POLICY,
    130497: C.POLICY,
    1: C.TRANSIENT,
    2: C.TRANSIENT,
    33: C.AUTH,
    100: C.INVALID_REQUEST,
    130403: C.UNDELIVERABLE,
    130472: C.POLICY,
    131000: C.TRANSIENT,
    131005: C.AUTH,
    131008: C.INVALID_REQUEST,
    131009: C.INVALID_REQUEST,
    131016: C.TRANSIENT,
    131021: C.INVALID_REQUEST,
    131026: C.UNDELIVERABLE,
    131037: C.AUTH,
    131042: C.POLICY,
    131045: C.AUTH,
    131047: C.REENGAGE,
    131049: C.POLICY,
    131050: C.POLICY,
    131051: C.INVALID_REQUEST,
    131052: C.INVALID_REQUEST,
    131053: C.INVALID_REQUEST,
    131057: C.TRANSIENT,
    131062: C.INVALID_REQUEST,
    131063: C.TEMPLATE_PROBLEM,
    132000: C.TEMPLATE_PROBLEM,
    132001: C.TEMPLATE_PROBLEM,
    132005: C.TEMPLATE_PROBLEM,
    132007: C.TEMPLATE_PROBLEM,
    132012: C.TEMPLATE_PROBLEM,
    132015: C.TEMPLATE_PROBLEM,
    132016: C.TEMPLATE_PROBLEM,
    132018: C.TEMPLATE_PROBLEM,
    133010: C.AUTH,
    134011: C.INVALID_REQUEST,
    135000: C.INVALID_REQUEST,
    470: C.REENGAGE,
    63016: C.REENGAGE,
}


@pytest.mark.parametrize(("code", "expected"), sorted(CONTRACT_TABLE.items()))
def test_contract_code_is_classified(code: int, expected: ErrorClass) -> None:
    # A 400 is the usual status; the class must come from the code whatever the status.
    assert classify(400, code) is expected
    assert classify(500, code) is expected
    assert classify(None, code, 2494055) is expected


def test_the_classifier_table_is_the_contract_table() -> None:
    explicit = {code for code in CONTRACT_TABLE if not 200 <= code <= 299}
    assert set(CODE_CLASSES) == explicit


@pytest.mark.parametrize("subcode", [None, 463, 467, 460])
def test_expired_token_is_auth_whatever_the_subcode(subcode: int | None) -> None:
    assert classify(401, 190, subcode) is C.AUTH


def test_unlisted_template_code_is_a_template_problem() -> None:
    assert classify(400, 132999) is C.TEMPLATE_PROBLEM


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, C.TRANSIENT),
        (502, C.TRANSIENT),
        (503, C.TRANSIENT),
        (None, C.TRANSIENT),
        (429, C.RATE_LIMITED),
        (401, C.AUTH),
        (403, C.AUTH),
        (400, C.INVALID_REQUEST),
        (404, C.INVALID_REQUEST),
    ],
)
def test_unknown_codes_fall_back_on_the_http_status(
    status: int | None, expected: ErrorClass
) -> None:
    assert classify(status, 999_999) is expected
    assert classify(status, None) is expected


# --- advice --------------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(PAIR_MAX_ATTEMPTS))
def test_pair_limit_waits_four_to_the_attempt(attempt: int) -> None:
    assert advice(C.PAIR_LIMITED, attempt) == Advice(
        retry=True, delay_s=4.0**attempt, fallback=False, stop_channel=False
    )


def test_pair_limit_gives_up_to_the_fallback_eventually() -> None:
    given_up = advice(C.PAIR_LIMITED, PAIR_MAX_ATTEMPTS)
    assert not given_up.retry
    assert given_up.fallback


def test_throughput_limit_backs_off_in_seconds() -> None:
    delays = [advice(C.RATE_LIMITED, n, 130429).delay_s for n in range(4)]
    assert delays == [1.0, 2.0, 4.0, 8.0]


def test_app_rate_limit_backs_off_in_minutes_up_to_an_hour() -> None:
    assert advice(C.RATE_LIMITED, 0, 4).delay_s == 60.0
    assert advice(C.RATE_LIMITED, 0, 80007).delay_s == 60.0
    assert advice(C.RATE_LIMITED, 20, 4).delay_s == 3600.0
    assert advice(C.RATE_LIMITED, 3, 4).retry


def test_closed_window_is_not_retried_nor_sent_elsewhere() -> None:
    assert advice(C.REENGAGE, 0) == Advice(
        retry=False, delay_s=None, fallback=False, stop_channel=False
    )


def test_undeliverable_falls_back_to_another_channel() -> None:
    assert advice(C.UNDELIVERABLE, 0) == Advice(
        retry=False, delay_s=None, fallback=True, stop_channel=False
    )


def test_template_problem_is_not_retried() -> None:
    result = advice(C.TEMPLATE_PROBLEM, 0)
    assert not result.retry
    assert not result.stop_channel


def test_auth_stops_the_channel() -> None:
    assert advice(C.AUTH, 0) == Advice(retry=False, delay_s=None, fallback=True, stop_channel=True)


@pytest.mark.parametrize("code", [131042, 368, 131031, 131048, 131064, 130497, None])
def test_account_policy_stops_the_channel(code: int | None) -> None:
    result = advice(C.POLICY, 0, code)
    assert result.stop_channel
    assert not result.retry


def test_marketing_cap_waits_a_day_without_stopping_the_channel() -> None:
    assert advice(C.POLICY, 0, 131049) == Advice(
        retry=True, delay_s=86400.0, fallback=False, stop_channel=False
    )


@pytest.mark.parametrize("code", [131050, 130472])
def test_marketing_opt_out_is_final_for_that_message_only(code: int) -> None:
    assert advice(C.POLICY, 0, code) == Advice(
        retry=False, delay_s=None, fallback=False, stop_channel=False
    )


def test_invalid_request_is_a_bug_not_retried() -> None:
    assert advice(C.INVALID_REQUEST, 0) == Advice(
        retry=False, delay_s=None, fallback=False, stop_channel=False
    )


def test_transient_retries_three_times_then_falls_back() -> None:
    retries = [advice(C.TRANSIENT, n) for n in range(TRANSIENT_MAX_ATTEMPTS)]
    assert [r.delay_s for r in retries] == [2.0, 4.0, 8.0]
    assert all(r.retry for r in retries)
    last = advice(C.TRANSIENT, TRANSIENT_MAX_ATTEMPTS)
    assert (last.retry, last.fallback) == (False, True)


def test_maintenance_mode_waits_a_minute() -> None:
    assert advice(C.TRANSIENT, 0, 131057).delay_s == 60.0


@pytest.mark.parametrize("cls", list(ErrorClass))
def test_every_class_has_advice(cls: ErrorClass) -> None:
    assert isinstance(advice(cls, 0), Advice)


def test_negative_attempt_is_refused() -> None:
    with pytest.raises(ValueError, match="attempt"):
        advice(C.TRANSIENT, -1)


# --- error bodies --------------------------------------------------------------------------------


def test_error_body_of_contract_3_1_is_parsed() -> None:
    body = {
        "error": {
            "message": "(#130429) Rate limit hit",
            "type": "OAuthException",
            "code": 130429,
            "error_data": {
                "messaging_product": "whatsapp",
                "details": "Cloud API message throughput has been reached.",
            },
            "error_subcode": 2494055,
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
        }
    }
    error = WhatsAppError.from_response(400, body)
    assert error.error_class is C.RATE_LIMITED
    assert (error.code, error.subcode, error.http_status) == (130429, 2494055, 400)
    assert error.title == "Rate limit hit"
    assert error.message == "(#130429) Rate limit hit"
    assert error.details == "Cloud API message throughput has been reached."
    assert error.fbtrace_id == "Az8or2yhqkZfEZ-_4Qn_Bam"
    assert error.body == body
    assert error.advice(0).retry


def test_body_without_error_object_is_classified_by_status() -> None:
    assert WhatsAppError.from_response(502, None).error_class is C.TRANSIENT
    assert WhatsAppError.from_response(400, {"oops": 1}).error_class is C.INVALID_REQUEST


def test_error_string_names_class_and_code_only() -> None:
    error = WhatsAppError.from_response(400, {"error": {"code": 131026, "message": "x"}})
    assert str(error) == "whatsapp undeliverable (code 131026, http 400)"
