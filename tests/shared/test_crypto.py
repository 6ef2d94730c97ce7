from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from shared import crypto
from shared.config import Settings, get_settings, reset_settings
from shared.crypto import DecryptionError, Keyring

KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.urlsafe_b64encode(bytes(range(200, 232))).decode()  # URL-safe alphabet
CONTEXT = "oauth_signing_key:kid-1"


def keyring(spec: str) -> Keyring:
    return Keyring.from_settings(Settings(secret_keys=SecretStr(spec)))


def test_round_trip_as_a_compact_ascii_token() -> None:
    ring = keyring(f"a:{KEY_A}")

    token = ring.encrypt("segredo ✓", context=CONTEXT)

    assert token.isascii()
    assert token.startswith("v1.a.")
    assert "segredo" not in token
    assert ring.decrypt(token, context=CONTEXT) == "segredo ✓".encode()


def test_each_encryption_uses_a_fresh_nonce() -> None:
    ring = keyring(f"a:{KEY_A}")

    assert ring.encrypt(b"x", context=CONTEXT) != ring.encrypt(b"x", context=CONTEXT)


def test_a_token_does_not_decrypt_in_another_context() -> None:
    ring = keyring(f"a:{KEY_A}")
    token = ring.encrypt(b"hunter2", context="oauth_signing_key:kid-1")

    with pytest.raises(DecryptionError) as error:
        ring.decrypt(token, context="oauth_signing_key:kid-2")

    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize("position", [2, 3])
def test_a_tampered_token_fails(position: int) -> None:
    ring = keyring(f"a:{KEY_A}")
    parts = ring.encrypt(b"secret", context=CONTEXT).split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[position] + "=="))
    raw[0] ^= 1
    parts[position] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()

    with pytest.raises(DecryptionError):
        ring.decrypt(".".join(parts), context=CONTEXT)


@pytest.mark.parametrize(
    "token", ["", "v1.a.AAAA", "v2.a.AAAAAAAAAAAAAAAA.AAAA", "v1.a.AAAA.AAAA", "v1.a.!!!!.AAAA"]
)
def test_malformed_tokens_fail(token: str) -> None:
    with pytest.raises(DecryptionError):
        keyring(f"a:{KEY_A}").decrypt(token, context=CONTEXT)


def test_a_token_under_an_unknown_key_fails_without_revealing_keys() -> None:
    token = keyring(f"b:{KEY_B}").encrypt(b"secret", context=CONTEXT)

    with pytest.raises(DecryptionError, match="unknown key id 'b'") as error:
        keyring(f"a:{KEY_A}").decrypt(token, context=CONTEXT)

    assert KEY_A not in str(error.value)
    assert KEY_B not in str(error.value)


def test_rotation_from_a_to_b() -> None:
    old = keyring(f"a:{KEY_A}")
    token = old.encrypt(b"secret", context=CONTEXT)
    rotating = keyring(f"b:{KEY_B},a:{KEY_A}")

    assert rotating.decrypt(token, context=CONTEXT) == b"secret"
    assert rotating.needs_rotation(token)

    fresh = rotating.reencrypt(token, context=CONTEXT)

    assert fresh.startswith("v1.b.")
    assert not rotating.needs_rotation(fresh)
    assert rotating.reencrypt(fresh, context=CONTEXT) == fresh
    assert keyring(f"b:{KEY_B}").decrypt(fresh, context=CONTEXT) == b"secret"


def test_reencrypt_checks_the_context() -> None:
    ring = keyring(f"b:{KEY_B},a:{KEY_A}")
    token = keyring(f"a:{KEY_A}").encrypt(b"secret", context=CONTEXT)

    with pytest.raises(DecryptionError):
        ring.reencrypt(token, context="other")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "must look like 'id:base64'"),
        (f"a.b:{KEY_A}", "must look like 'id:base64'"),
        (f"a:{KEY_A},a:{KEY_B}", "'a' is listed twice"),
        ("a:not base64!", "'a' is not valid base64"),
        (f"a:{KEY_A},short:{base64.b64encode(b'k' * 16).decode()}", "exactly 32 bytes, not 16"),
    ],
)
def test_malformed_key_configuration_is_rejected_at_load_time(
    spec: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUITA_SECRET_KEYS", spec)

    with pytest.raises(ValidationError, match=message) as error:
        Settings()

    assert KEY_A not in str(error.value)
    assert KEY_B not in str(error.value)


def test_module_functions_use_the_configured_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUITA_SECRET_KEYS", f"b:{KEY_B},a:{KEY_A}")
    reset_settings()
    try:
        assert get_settings().secret_keys.get_secret_value().startswith("b:")
        legacy = keyring(f"a:{KEY_A}").encrypt(b"secret", context=CONTEXT)

        assert crypto.needs_rotation(legacy)
        fresh = crypto.reencrypt(legacy, context=CONTEXT)
        assert crypto.decrypt(fresh, context=CONTEXT) == b"secret"
        assert crypto.decrypt(crypto.encrypt("x", context=CONTEXT), context=CONTEXT) == b"x"
    finally:
        reset_settings()


def test_the_default_key_is_marked_dev_only() -> None:
    assert Keyring.from_settings(Settings()).active_key_id == "dev-only"


@given(plaintext=st.binary(max_size=4096), context=st.text(max_size=64))
def test_any_bytes_round_trip(plaintext: bytes, context: str) -> None:
    ring = keyring(f"a:{KEY_A}")

    assert ring.decrypt(ring.encrypt(plaintext, context=context), context=context) == plaintext
