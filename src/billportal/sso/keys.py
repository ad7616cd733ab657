"""SSO keys: generation and strength (they are sealed at rest by billportal.core.crypto).

A company's SSO key is a string: its JWT library signs with the UTF-8 bytes of
that string, exactly as the seed product's Ruby example passes it to
``JWT.encode``. A generated key is 32 random bytes written in base64url.

At rest each key is sealed with AES-256-GCM under the server's master key, with
the company id in the associated data, so a sealed key copied to another
company's row does not open. A database dump alone reveals no key.
"""

from __future__ import annotations

import base64
import os
import secrets
from typing import Final

MIN_KEY_BYTES: Final = 32


class SSOKeyError(Exception):
    """A key cannot be imported; the message never contains key material."""


class WeakKeyError(SSOKeyError):
    """An imported SSO key is shorter than 32 bytes and ``allow_weak`` was not given."""


def generate_sso_key() -> str:
    """A new SSO key: 32 random bytes, base64url without padding (43 characters)."""
    return base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode("ascii")


def generate_kid() -> str:
    """A new key id, unique within a company in practice, never derived from the key."""
    return "sso_" + secrets.token_hex(6)


def is_weak(sso_key: str) -> bool:
    """Whether the key is shorter than the 256 bits HS256 calls for (RFC 7518, 3.2)."""
    return len(sso_key.encode("utf-8")) < MIN_KEY_BYTES


def check_importable(sso_key: str, allow_weak: bool) -> bool:
    """Validate a key a company brings along; return whether it is weak."""
    if not sso_key:
        raise SSOKeyError("the SSO key is empty")
    if sso_key != sso_key.strip():
        raise SSOKeyError("the SSO key starts or ends with white space; paste it exactly")
    weak = is_weak(sso_key)
    if weak and not allow_weak:
        raise WeakKeyError(
            f"the SSO key is shorter than {MIN_KEY_BYTES} bytes; pass --allow-weak-key to import it anyway"
        )
    return weak
