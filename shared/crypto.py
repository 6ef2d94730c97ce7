"""Envelope encryption of secrets at rest (AES-256-GCM).

Keys come from ``QUITA_SECRET_KEYS``: a comma-separated list of ``id:base64(32 bytes)``.  The
first key encrypts; every key listed decrypts, so a key is rotated by putting the new one first,
re-encrypting the rows (``needs_rotation`` / ``reencrypt``) and then dropping the old one.

A token is ``v1.<key id>.<base64url nonce>.<base64url ciphertext+tag>``.  The caller's ``context``
(e.g. ``"oauth_signing_key:<kid>"``) is bound as associated data: a token copied to another row,
or decrypted for another purpose, fails to decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.config import Settings, get_settings

VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


class DecryptionError(ValueError):
    """A token that cannot be decrypted.  The message never holds plaintext or key material."""


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    """Parse ``id:base64,id:base64,...`` into ``(id, key)`` pairs, active key first.

    Raises ``ValueError`` naming the offending key id (never its material) when the list is
    empty, an id is invalid or repeated, or a key is not base64 of exactly 32 bytes.
    """
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate(spec.split(","), start=1):
        key_id, sep, encoded = entry.strip().partition(":")
        if not sep or not _KEY_ID.fullmatch(key_id):
            raise ValueError(
                f"secret key #{position} must look like 'id:base64' with an id of 1-32 "
                "letters, digits, '_' or '-'"
            )
        if any(key_id == seen for seen, _ in keys):
            raise ValueError(f"secret key id {key_id!r} is listed twice")
        try:
            # Accept the standard and the URL-safe alphabets alike.
            normalized = encoded.strip().replace("-", "+").replace("_", "/")
            key = base64.b64decode(normalized, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"secret key {key_id!r} is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise ValueError(
                f"secret key {key_id!r} must decode to exactly {KEY_BYTES} bytes, not {len(key)}"
            )
        keys.append((key_id, key))
    return keys


class Keyring:
    """The key-encryption keys: the first encrypts, all of them decrypt."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self.active_key_id = keys[0][0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """The keyring configured by ``settings.secret_keys``."""
        return cls(parse_keys(settings.secret_keys.get_secret_value()))

    def encrypt(self, plaintext: str | bytes, *, context: str) -> str:
        """Encrypt under the active key; ``str`` is encoded as UTF-8."""
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.active_key_id].encrypt(nonce, data, _aad(context))
        return ".".join((VERSION, self.active_key_id, _b64encode(nonce), _b64encode(sealed)))

    def decrypt(self, token: str, *, context: str) -> bytes:
        """The plaintext, or ``DecryptionError`` (malformed, unknown key, wrong context,
        tampered)."""
        key_id, nonce, sealed = _split(token)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(f"unknown key id {key_id!r}")
        try:
            return cipher.decrypt(nonce, sealed, _aad(context))
        except InvalidTag:
            raise DecryptionError("ciphertext or context does not authenticate") from None

    def needs_rotation(self, token: str) -> bool:
        """True when ``token`` is not under the active key (``DecryptionError`` if malformed)."""
        return _split(token)[0] != self.active_key_id

    def reencrypt(self, token: str, *, context: str) -> str:
        """``token`` under the active key: unchanged if it already is (after checking it
        decrypts), a fresh token otherwise."""
        plaintext = self.decrypt(token, context=context)
        if not self.needs_rotation(token):
            return token
        return self.encrypt(plaintext, context=context)


def encrypt(plaintext: str | bytes, *, context: str) -> str:
    """``Keyring.encrypt`` with the configured keys."""
    return _default_keyring().encrypt(plaintext, context=context)


def decrypt(token: str, *, context: str) -> bytes:
    """``Keyring.decrypt`` with the configured keys."""
    return _default_keyring().decrypt(token, context=context)


def needs_rotation(token: str) -> bool:
    """``Keyring.needs_rotation`` with the configured keys."""
    return _default_keyring().needs_rotation(token)


def reencrypt(token: str, *, context: str) -> str:
    """``Keyring.reencrypt`` with the configured keys."""
    return _default_keyring().reencrypt(token, context=context)


def mac_keys(purpose: str) -> list[bytes]:
    """Keys for authenticating (not encrypting) what Quita hands out for ``purpose`` — e.g. the
    payment links — derived from each configured key (HMAC-SHA256 of the purpose), the active
    key's first: a rotation keeps links signed under the previous key valid until it is
    dropped."""
    return list(_mac_keys_for(get_settings().secret_keys.get_secret_value(), purpose))


@lru_cache(maxsize=16)
def _mac_keys_for(spec: str, purpose: str) -> tuple[bytes, ...]:
    label = f"quita:{VERSION}:mac:{purpose}".encode()
    return tuple(hmac.new(key, label, hashlib.sha256).digest() for _, key in parse_keys(spec))


def _default_keyring() -> Keyring:
    return _keyring_for(get_settings().secret_keys.get_secret_value())


@lru_cache(maxsize=4)
def _keyring_for(spec: str) -> Keyring:
    # Keyed by the spec so that reset_settings() with new keys yields a new keyring.
    return Keyring(parse_keys(spec))


def _aad(context: str) -> bytes:
    # The version is bound too, so a future format cannot be confused with this one.
    return f"quita:{VERSION}:{context}".encode()


def _split(token: str) -> tuple[str, bytes, bytes]:
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        raise DecryptionError(f"not a {VERSION} token")
    _, key_id, nonce_text, sealed_text = parts
    try:
        nonce, sealed = _b64decode(nonce_text), _b64decode(sealed_text)
    except (binascii.Error, ValueError):
        raise DecryptionError("token is not valid base64url") from None
    if len(nonce) != NONCE_BYTES:
        raise DecryptionError("token has a nonce of the wrong size")
    return key_id, nonce, sealed


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


__all__ = [
    "DecryptionError",
    "Keyring",
    "decrypt",
    "encrypt",
    "mac_keys",
    "needs_rotation",
    "parse_keys",
    "reencrypt",
]
