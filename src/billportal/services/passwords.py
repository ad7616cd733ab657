"""Admin passwords: argon2id hashes (argon2-cffi), one-time passwords, and the rules for new ones."""

from __future__ import annotations

import functools
import secrets
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from billportal.core.metrics import PASSWORD_CHECKS

MIN_LENGTH: Final = 12
MAX_LENGTH: Final = 1024  # hashing cost grows with the input: no megabyte passwords

# argon2-cffi's defaults: argon2id with RFC 9106's low-memory parameters.
_hasher: Final = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches; False for a malformed hash too."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        ok: bool = _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        ok = False
    PASSWORD_CHECKS.labels("match" if ok else "mismatch").inc()
    return ok


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@functools.cache
def decoy_hash() -> str:
    """Checked for an unknown email, so that a wrong email costs as long as a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))


def generate_password() -> str:
    """A one-time password: 144 random bits in 24 URL-safe characters."""
    return secrets.token_urlsafe(18)


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None if it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if not password.strip():
        return "The password cannot be only spaces."
    return None
