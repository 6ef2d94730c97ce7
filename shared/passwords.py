"""Password hashing (argon2id) and high-entropy secrets.

Passwords are chosen by people, so they are hashed slowly with argon2id.  Secrets we generate
ourselves (client secrets, refresh tokens) already carry 256 bits of entropy; they are stored as a
plain SHA-256 digest, which is fast on purpose: a slow hash adds nothing against brute force there
and would make every token check cost a login's worth of CPU and memory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

# RFC 9106's second recommended ("low memory") profile: argon2id, t=3, m=64 MiB, p=4 — also
# argon2-cffi's default.  About 0.15 s per hash on a 2-core server; the first recommended profile
# (2 GiB per hash) would let a handful of concurrent logins exhaust such a machine's memory.
_hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)

# A hash of a random, forgotten password with the same parameters, verified when the user does
# not exist.  Precomputed so importing this module costs nothing; a test keeps it in step with
# the parameters above (a stale one would verify faster and give unknown users away).
DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$O1sh6stVLCxU/nPeXHO9Nw"
    "$OVCiWXCHKAoljzhbcznRRUtDZFcjJHtAMSPfiniWxqY"
)


def hash_password(plain: str) -> str:
    """An argon2id PHC string for ``plain``, with a fresh random salt."""
    return _hasher.hash(plain)


def verify_password(hash: str, plain: str) -> bool:
    """True if ``plain`` matches ``hash``; False on mismatch or an invalid hash (never raises
    for those)."""
    try:
        return _hasher.verify(hash, plain)
    except (VerificationError, InvalidHashError):
        return False


def verify_password_timing_safe(hash: str | None, plain: str) -> bool:
    """``verify_password``, but for a missing user (``hash is None``) spend the same time
    verifying against ``DUMMY_HASH`` and return False, so unknown e-mails are not revealed."""
    if hash is None:
        verify_password(DUMMY_HASH, plain)
        return False
    return verify_password(hash, plain)


def needs_rehash(hash: str) -> bool:
    """True if ``hash`` was made with other parameters (or is not a valid argon2 hash) and
    should be replaced by ``hash_password`` at the next successful login."""
    try:
        return _hasher.check_needs_rehash(hash)
    except InvalidHashError:
        return True


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random secret of ``nbytes`` random bytes."""
    return secrets.token_urlsafe(nbytes)


def digest_secret(secret: str) -> str:
    """The SHA-256 hex digest of a high-entropy secret (never for passwords)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secrets_match(a: str, b: str) -> bool:
    """Compare two secrets (or digests) in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())


__all__ = [
    "DUMMY_HASH",
    "digest_secret",
    "hash_password",
    "needs_rehash",
    "new_secret",
    "secrets_match",
    "verify_password",
    "verify_password_timing_safe",
]
