"""Sealing secrets at rest: AES-256-GCM under the server's master key. The one seal and the one unseal.

Every secret billportal keeps (SSO keys, stored API answers that hold a key or
a link) is sealed here, with associated data that names what it is and whose
it is (``billportal:sso-key:company:7``): a sealed value copied to another
company's row, or to another kind of column, does not open. A sealed value
records which master key sealed it, so that the master key can be rotated
(``billportal master-key reencrypt``) while older values still open with the
previous keys.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from billportal.core.lazy import lazy_import

if TYPE_CHECKING:
    from cryptography import exceptions
    from cryptography.hazmat.primitives.ciphers import aead
else:
    # About 9 MB, loaded by the first seal or unseal (the first company a worker loads), not by an idle worker.
    exceptions = lazy_import("cryptography.exceptions")
    aead = lazy_import("cryptography.hazmat.primitives.ciphers.aead")

_NONCE_BYTES: Final = 12


class SealError(Exception):
    """A sealed value cannot be opened; the message never holds key material."""


def master_key_id(master_key: bytes) -> str:
    """A short fingerprint naming a master key, so that rotation knows which one sealed a value."""
    return hashlib.sha256(b"billportal-master-key-id" + master_key).hexdigest()[:16]


def _context(purpose: str, company_id: int) -> bytes:
    return f"billportal:{purpose}:company:{company_id}".encode("ascii")


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed secret: the id of the master key that sealed it, and nonce || ciphertext || tag."""

    master_key_id: str
    blob: bytes = field(repr=False)

    def as_text(self) -> str:
        """``{master key id}:{base64url blob}``, for a text column."""
        return f"{self.master_key_id}:{base64.urlsafe_b64encode(self.blob).decode('ascii')}"

    @classmethod
    def from_text(cls, text: str) -> Sealed:
        key_id, _, blob = text.partition(":")
        try:
            return cls(key_id, base64.urlsafe_b64decode(blob))
        except ValueError:
            raise SealError("a sealed value is not in its stored form") from None


class MasterKeys:
    """The current master key (which seals) and the previous ones (which still open)."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        self._keys = {master_key_id(key): key for key in (*previous, current)}
        self._current = current
        self.current_id = master_key_id(current)

    def __repr__(self) -> str:
        return f"MasterKeys(current_id={self.current_id!r}, count={len(self._keys)})"

    def seal(self, secret: bytes, purpose: str, company_id: int) -> Sealed:
        """Encrypt ``secret`` under the current master key, bound to ``purpose`` and the company."""
        nonce = os.urandom(_NONCE_BYTES)
        blob = nonce + aead.AESGCM(self._current).encrypt(nonce, secret, _context(purpose, company_id))
        return Sealed(self.current_id, blob)

    def sealed_it(self, sealed: Sealed) -> bool:
        """Whether a configured master key sealed this value (by its id: no decryption, no AES loaded)."""
        return sealed.master_key_id in self._keys

    def require(self, sealed: Sealed) -> None:
        """SealError unless a configured master key sealed this value (by its id: nothing is decrypted)."""
        if sealed.master_key_id not in self._keys:
            raise SealError(
                f"no configured master key has id {sealed.master_key_id}: set BILLPORTAL_MASTER_KEY to the key "
                "that sealed the stored secrets (or add it to BILLPORTAL_PREVIOUS_MASTER_KEYS)"
            )

    def unseal(self, sealed: Sealed, purpose: str, company_id: int) -> bytes:
        """The secret, opened with whichever configured master key sealed it (SealError otherwise)."""
        self.require(sealed)
        key = self._keys[sealed.master_key_id]
        nonce, ciphertext = sealed.blob[:_NONCE_BYTES], sealed.blob[_NONCE_BYTES:]
        try:
            return aead.AESGCM(key).decrypt(nonce, ciphertext, _context(purpose, company_id))
        except exceptions.InvalidTag:
            raise SealError(
                f"a sealed {purpose} failed its integrity check under master key {sealed.master_key_id}"
            ) from None
