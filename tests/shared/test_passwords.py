from __future__ import annotations

import time

import pytest

from shared.passwords import (
    DUMMY_HASH,
    digest_secret,
    hash_password,
    needs_rehash,
    new_secret,
    secrets_match,
    verify_password,
    verify_password_timing_safe,
)


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password("correct horse battery staple")


def test_the_right_password_verifies(stored: str) -> None:
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse battery staple")


def test_a_wrong_password_does_not(stored: str) -> None:
    assert not verify_password(stored, "correct horse battery stapler")


@pytest.mark.parametrize("invalid", ["", "plain-text", "$argon2id$v=19$m=1$broken", "$2b$12$x"])
def test_an_invalid_hash_is_a_mismatch_not_an_error(invalid: str) -> None:
    assert verify_password(invalid, "anything") is False
    assert needs_rehash(invalid)


def test_each_hash_has_its_own_salt() -> None:
    assert hash_password("same") != hash_password("same")


def test_a_fresh_hash_needs_no_rehash(stored: str) -> None:
    assert not needs_rehash(stored)


def test_a_weaker_hash_needs_rehash() -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")

    assert verify_password(weak, "pw")
    assert needs_rehash(weak)


def test_the_dummy_hash_uses_the_current_parameters() -> None:
    # Otherwise verifying against it would take another time than a real user's hash.
    assert not needs_rehash(DUMMY_HASH)


def test_an_unknown_user_never_verifies(stored: str) -> None:
    assert verify_password_timing_safe(None, "") is False
    assert verify_password_timing_safe(None, "anything") is False
    assert verify_password_timing_safe(stored, "correct horse battery staple") is True
    assert verify_password_timing_safe(stored, "wrong") is False


def test_an_unknown_user_costs_about_as_much_as_a_wrong_password(stored: str) -> None:
    def slowest_of_two(hash: str | None) -> float:
        durations = []
        for _ in range(2):
            started = time.perf_counter()
            verify_password_timing_safe(hash, "wrong")
            durations.append(time.perf_counter() - started)
        return min(durations)

    # Generous: only an early return (microseconds against ~0.1 s) can fail this.
    assert slowest_of_two(None) > 0.3 * slowest_of_two(stored)


def test_new_secrets_are_url_safe_and_unique() -> None:
    first, second = new_secret(), new_secret()

    assert first != second
    assert len(first) == 43  # 32 bytes in unpadded base64
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(new_secret(16)) == 22


def test_digest_is_stable_sha256_hex() -> None:
    assert digest_secret("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    secret = new_secret()
    assert digest_secret(secret) == digest_secret(secret)
    assert digest_secret(secret) != digest_secret(new_secret())


def test_secrets_match_compares_exactly() -> None:
    assert secrets_match("abc", "abc")
    assert not secrets_match("abc", "abd")
    assert not secrets_match("abc", "abcd")
    assert secrets_match("ação", "ação")
