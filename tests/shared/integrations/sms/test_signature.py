"""``X-Twilio-Signature``: computed as Twilio's docs define it, checked against a hand-built HMAC
and Twilio's published example, and verified with token rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac

from shared.integrations.sms.signature import twilio_signature, verify_twilio_signature

URL = "https://api.exemplo.com/sms/twilio/status?tenant=loja-1"
TOKEN = "sandbox-auth-token"
PARAMS = {
    "MessageSid": "SM0123456789abcdef0123456789abcdef",
    "MessageStatus": "delivered",
    "To": "+5511987654321",
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "From": "+15005550006",
}


def by_hand(token: str, text: str) -> str:
    mac = hmac.new(token.encode(), text.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def test_signature_is_hmac_sha1_of_url_and_sorted_name_value_pairs() -> None:
    text = (
        URL
        + "AccountSidAC0123456789abcdef0123456789abcdef"
        + "From+15005550006"
        + "MessageSidSM0123456789abcdef0123456789abcdef"
        + "MessageStatusdelivered"
        + "To+5511987654321"
    )

    assert twilio_signature(URL, PARAMS, TOKEN) == by_hand(TOKEN, text)


def test_signature_matches_twilios_published_example() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }

    signature = twilio_signature("https://mycompany.com/myapp.php?foo=1&bar=2", params, "12345")

    assert signature == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_repeated_names_sign_each_value_sorted_like_twilios_validator() -> None:
    pairs = [("Tag", "b"), ("Body", "Olá"), ("Tag", "a"), ("Tag", "b")]

    signature = twilio_signature(URL, pairs, TOKEN)

    assert signature == by_hand(TOKEN, URL + "BodyOlá" + "Taga" + "Tagb")
    assert signature == twilio_signature(URL, {"Body": "Olá", "Tag": ["b", "a"]}, TOKEN)


def test_unicode_values_are_signed_as_utf8() -> None:
    params = {"Body": "Sua fatura de R$ 150,00 vence amanhã 💸", "From": "+5511987654321"}
    text = URL + "BodySua fatura de R$ 150,00 vence amanhã 💸" + "From+5511987654321"

    assert twilio_signature(URL, params, TOKEN) == by_hand(TOKEN, text)


def test_names_sort_case_sensitively() -> None:
    params = {"b": "1", "B": "2", "a": "3"}

    assert twilio_signature(URL, params, TOKEN) == by_hand(TOKEN, URL + "B2a3b1")


def test_the_url_is_signed_exactly_as_given() -> None:
    assert twilio_signature(URL, PARAMS, TOKEN) != twilio_signature(URL + "&", PARAMS, TOKEN)
    assert twilio_signature(URL, PARAMS, TOKEN) != twilio_signature(
        URL.replace("https", "http"), PARAMS, TOKEN
    )


def test_verify_accepts_the_current_or_a_previous_token() -> None:
    header = twilio_signature(URL, PARAMS, "old-token")

    assert verify_twilio_signature(URL, PARAMS, header, ["new-token", "old-token"])
    assert not verify_twilio_signature(URL, PARAMS, header, ["new-token"])


def test_verify_refuses_a_changed_param_a_missing_header_or_no_tokens() -> None:
    header = twilio_signature(URL, PARAMS, TOKEN)

    assert not verify_twilio_signature(URL, {**PARAMS, "To": "+5511900000000"}, header, [TOKEN])
    assert not verify_twilio_signature(URL, PARAMS, None, [TOKEN])
    assert not verify_twilio_signature(URL, PARAMS, "", [TOKEN])
    assert not verify_twilio_signature(URL, PARAMS, header, [])
    assert not verify_twilio_signature(URL, PARAMS, header, [""])
