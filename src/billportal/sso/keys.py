"""SSO keys: generation, strength, and encryption at rest.

A company's SSO key is a string: its JWT library signs with the UTF-8 bytes of
that string, exactly as the seed product's Ruby example passes it to
``JWT.encode``. A generated key is 32 random bytes written in base64url.

At rest each key is sealed with AES-256-GCM under the server's master key, with
the company id in the associated data, so a sealed key copied to another
company's row does not open. A database dump alone reveals no key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Iterable
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MIN_KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 12


class SSOKeyError(Exception):
    """A key cannot be used; the message never contains key material."""


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


def master_key_id(master_key: bytes) -> str:
    """A short fingerprint naming a master key, so rotation knows which one sealed a row."""
    return hashlib.sha256(b"billportal-master-key-id" + master_key).hexdigest()[:16]


def _associated_data(company_id: int) -> bytes:
    return f"billportal:sso-key:company:{company_id}".encode("ascii")


def seal(master_key: bytes, company_id: int, secret: bytes) -> bytes:
    """Encrypt a key for storage: nonce || ciphertext || tag."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(master_key).encrypt(nonce, secret, _associated_data(company_id))


def unseal(master_keys: Iterable[bytes], sealed_by: str, company_id: int, sealed: bytes) -> bytes:
    """Decrypt a stored key with whichever of ``master_keys`` sealed it."""
    for master_key in master_keys:
        if master_key_id(master_key) == sealed_by:
            try:
                return AESGCM(master_key).decrypt(
                    sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], _associated_data(company_id)
                )
            except InvalidTag:
                raise SSOKeyError("a stored SSO key failed its integrity check") from None
    raise SSOKeyError(f"no configured master key has id {sealed_by}; set BILLPORTAL_PREVIOUS_MASTER_KEYS")
