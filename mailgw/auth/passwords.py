"""Password hashing for local users: argon2id via argon2-cffi, with rehash on parameter change.

One module-level `PasswordHasher` with argon2-cffi's defaults (RFC 9106 "low memory" profile).
When those defaults change in a later argon2-cffi, stored hashes keep verifying and are rehashed
with the new parameters at the user's next successful login. All functions here are blocking
(tens of milliseconds of CPU and 64 MiB of memory each): call them in a thread from async code.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASHER = PasswordHasher()
MAX_PASSWORD = 1024  # longer input is refused without hashing (no client needs more)


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (a fresh salt each time)."""
    return HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True if `password` matches `stored_hash`; False for a mismatch or a malformed hash."""
    try:
        return HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return HASHER.check_needs_rehash(stored_hash)


_dummy: tuple[PasswordHasher, str] | None = None


def dummy_hash() -> str:
    """A hash of a random secret, verified for unknown users so that they cost the same work.

    Made once per hasher, so it always has the parameters new hashes get.
    """
    global _dummy
    if _dummy is None or _dummy[0] is not HASHER:
        _dummy = (HASHER, HASHER.hash(secrets.token_urlsafe(32)))
    return _dummy[1]


def burn(password: str) -> None:
    """Do the work of one verification that cannot succeed (unknown or refused login)."""
    verify_password(dummy_hash(), password[:MAX_PASSWORD])
