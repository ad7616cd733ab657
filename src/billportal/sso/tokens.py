"""The SSO token verification policy: one function, :func:`verify`.

A token either verifies, giving :class:`Claims`, or is refused with a
:class:`~billportal.sso.reasons.Reason`. The checks run in the documented order
(docs/integration.md, "What billportal checks") and stop at the first failure:

1. shape: at most 4 KiB, three canonical base64url segments, JSON objects;
2. header: ``alg`` exactly ``HS256``, ``typ`` JWT if present, no ``crit``, no
   key-carrying parameters, ``kid`` only chooses among the company's keys;
3. signature: HMAC-SHA256 by PyJWT's algorithm, compared in constant time,
   under the active key or a retiring key still inside its grace period;
4. time: ``exp`` required, ``nbf`` / ``iat`` honoured, the company's leeway,
   maximum lifetime and ``iat`` cutoff;
5. ``sub`` (integer or digit string), ``iss`` (free text unless the company
   lists issuers), ``jti`` (single-use marker, checked by the caller).

The algorithm is never read from the token: HS256 is fixed here.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

from jwt.algorithms import HMACAlgorithm

from billportal.sso.reasons import Reason

MAX_TOKEN_BYTES: Final = 4096
MAX_CUSTOMER_ID: Final = 2**63 - 1
# NumericDate bounds: after 2000-01-01 and before 10000-01-01.
MIN_TIME: Final = 946_684_800
MAX_TIME: Final = 253_402_300_799
MAX_JTI_LENGTH: Final = 255
MAX_KID_LENGTH: Final = 64

_HS256: Final = HMACAlgorithm(HMACAlgorithm.SHA256)
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_DIGITS = re.compile(r"[1-9][0-9]{0,18}")
_KEY_PARAMETERS: Final = frozenset({"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"})


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One of a company's SSO keys, as the verifier sees it."""

    kid: str
    secret: bytes = field(repr=False)
    state: str = "active"  # "active", "retiring" or "revoked"
    retiring_until: int | None = None

    def usable_at(self, now: int) -> bool:
        if self.state == "active":
            return True
        return self.state == "retiring" and self.retiring_until is not None and now < self.retiring_until


@dataclass(frozen=True, slots=True)
class Policy:
    """A company's sign-in rules (Settings > Developers > Single Sign-On)."""

    leeway: int = 60
    max_lifetime: int | None = None
    require_jti: bool = False
    allowed_issuers: frozenset[str] = frozenset()
    iat_cutoff: int | None = None


@dataclass(frozen=True, slots=True)
class Claims:
    """The verified claims of a token that may sign a customer in."""

    customer_id: int
    exp: int
    issuer: str | None
    kid: str  # the key that verified the signature, named in the header or not
    jti: str | None
    iat: int | None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused token, and what could be read of it (for the sign-in log)."""

    reason: Reason
    kid: str | None = None
    issuer: str | None = None
    customer_id: int | None = None


class _Refused(Exception):
    """Internal: stops the checks at the first failure."""

    def __init__(self, reason: Reason) -> None:
        self.reason = reason


def _b64decode(segment: str) -> bytes:
    """Decode one base64url segment, refusing every non-canonical spelling.

    Padding, ``+``, ``/``, white space and unused bits that are not zero would
    all let one token be written several ways; only the canonical form passes.
    """
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise _Refused(Reason.TOKEN_MALFORMED)
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise _Refused(Reason.TOKEN_MALFORMED) from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != segment.encode("ascii"):
        raise _Refused(Reason.TOKEN_MALFORMED)
    return raw


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member name")
    return result


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _json_object(raw: bytes, reason: Reason) -> dict[str, Any]:
    try:
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_unique_object,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        # ValueError covers JSONDecodeError, duplicate names, NaN and integers
        # beyond Python's digit limit.
        raise _Refused(reason) from None
    if not isinstance(value, dict):
        raise _Refused(reason)
    return value


def _numeric_date(claims: dict[str, Any], name: str, invalid: Reason) -> int | None:
    if name not in claims:
        return None
    value = claims[name]
    # Whole seconds only: bool is an int in Python, and floats, strings and null
    # are refused rather than guessed at.
    if type(value) is not int or not MIN_TIME <= value <= MAX_TIME:
        raise _Refused(invalid)
    return value


def parse_customer_id(value: object) -> int | None:
    """A ``sub`` as the seed product sends it: a JSON integer or a digit string."""
    if type(value) is int:
        return value if 0 < value <= MAX_CUSTOMER_ID else None
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
        return number if number <= MAX_CUSTOMER_ID else None
    return None


def _select_keys(kid: str | None, keys: tuple[VerificationKey, ...], now: int) -> list[VerificationKey]:
    if kid is not None:
        for key in keys:
            if key.kid == kid:
                if key.state == "revoked":
                    raise _Refused(Reason.KEY_REVOKED)
                if not key.usable_at(now):
                    raise _Refused(Reason.KEY_RETIRED)
                return [key]
        raise _Refused(Reason.KID_UNKNOWN)
    usable = [key for key in keys if key.usable_at(now)]
    if not usable:
        raise _Refused(Reason.NO_USABLE_KEY)
    # The active key first: it signs nearly every link.
    usable.sort(key=lambda key: key.state != "active")
    return usable


def _unusable_key_reason(signing_input: bytes, signature: bytes, keys: tuple[VerificationKey, ...], now: int) -> Reason:
    """Tell a stale key from a wrong one, for the sign-in log only."""
    for key in keys:
        if not key.usable_at(now) and _HS256.verify(signing_input, key.secret, signature):
            return Reason.KEY_REVOKED if key.state == "revoked" else Reason.KEY_RETIRED
    return Reason.SIGNATURE_INVALID


def _parse(token: str) -> tuple[str, str, bytes, dict[str, Any], dict[str, Any]]:
    if len(token) > MAX_TOKEN_BYTES:
        raise _Refused(Reason.TOKEN_TOO_LONG)
    parts = token.split(".")
    if len(parts) != 3 or not token.isascii():
        raise _Refused(Reason.TOKEN_MALFORMED)
    header_b64, payload_b64, signature_b64 = parts
    header_raw = _b64decode(header_b64)
    payload_raw = _b64decode(payload_b64)
    signature = _b64decode(signature_b64)
    header = _json_object(header_raw, Reason.HEADER_INVALID)
    claims = _json_object(payload_raw, Reason.PAYLOAD_INVALID)
    return header_b64, payload_b64, signature, header, claims


def _check_header(header: dict[str, Any]) -> str | None:
    """The header rules; returns the ``kid`` it names, if any."""
    if header.get("alg") != "HS256":
        raise _Refused(Reason.ALG_NOT_ALLOWED)
    typ = header.get("typ", "JWT")
    if not isinstance(typ, str) or typ.upper() != "JWT":
        raise _Refused(Reason.TYP_INVALID)
    if "crit" in header:
        raise _Refused(Reason.CRIT_NOT_SUPPORTED)
    if not _KEY_PARAMETERS.isdisjoint(header):
        raise _Refused(Reason.HEADER_KEY_PARAMETER)
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH):
        raise _Refused(Reason.KID_INVALID)
    return kid


def _check_signature(
    signing_input: bytes, signature: bytes, kid: str | None, keys: tuple[VerificationKey, ...], now: int
) -> VerificationKey:
    """The key whose HMAC matches, compared in constant time by PyJWT's HS256."""
    for key in _select_keys(kid, keys, now):
        if _HS256.verify(signing_input, key.secret, signature):
            return key
    if kid is not None:
        raise _Refused(Reason.SIGNATURE_INVALID)
    raise _Refused(_unusable_key_reason(signing_input, signature, keys, now))


def _check_times(claims: dict[str, Any], policy: Policy, now: int) -> tuple[int, int | None]:
    """``exp``, ``nbf``, ``iat``, the cutoff and the maximum lifetime; returns (exp, iat)."""
    leeway = policy.leeway
    exp = _numeric_date(claims, "exp", Reason.EXP_INVALID)
    if exp is None:
        raise _Refused(Reason.EXP_MISSING)
    if exp + leeway <= now:
        raise _Refused(Reason.EXPIRED)
    nbf = _numeric_date(claims, "nbf", Reason.NBF_INVALID)
    if nbf is not None and nbf - leeway > now:
        raise _Refused(Reason.NOT_YET_VALID)
    iat = _numeric_date(claims, "iat", Reason.IAT_INVALID)
    if iat is not None and iat - leeway > now:
        raise _Refused(Reason.IAT_IN_FUTURE)
    if policy.iat_cutoff is not None:
        if iat is None:
            raise _Refused(Reason.IAT_MISSING)
        if iat < policy.iat_cutoff:
            raise _Refused(Reason.ISSUED_BEFORE_CUTOFF)
    if policy.max_lifetime is not None and exp - (iat if iat is not None else now) > policy.max_lifetime:
        raise _Refused(Reason.LIFETIME_TOO_LONG)
    return exp, iat


def _check_subject(claims: dict[str, Any], policy: Policy) -> tuple[int, str | None, str | None]:
    """``sub``, ``iss`` and ``jti``; returns (customer id, issuer, jti)."""
    if "sub" not in claims:
        raise _Refused(Reason.SUB_MISSING)
    customer_id = parse_customer_id(claims["sub"])
    if customer_id is None:
        raise _Refused(Reason.SUB_INVALID)
    issuer = claims.get("iss")
    if issuer is not None and not isinstance(issuer, str):
        raise _Refused(Reason.ISS_INVALID)
    if policy.allowed_issuers and issuer not in policy.allowed_issuers:
        raise _Refused(Reason.ISSUER_NOT_ALLOWED)
    jti = claims.get("jti")
    if jti is None:
        if policy.require_jti:
            raise _Refused(Reason.JTI_REQUIRED)
    elif not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise _Refused(Reason.JTI_INVALID)
    return customer_id, issuer, jti


def verify(token: str, keys: tuple[VerificationKey, ...], policy: Policy, now: int) -> Claims | Rejection:
    """Verify a sign-in token against a company's keys and policy at time ``now``."""
    header: dict[str, Any] = {}
    claims: dict[str, Any] = {}
    try:
        header_b64, payload_b64, signature, header, claims = _parse(token)
        kid = _check_header(header)
        signed_by = _check_signature(f"{header_b64}.{payload_b64}".encode("ascii"), signature, kid, keys, now)
        exp, iat = _check_times(claims, policy, now)
        customer_id, issuer, jti = _check_subject(claims, policy)
    except _Refused as refused:
        return Rejection(
            refused.reason,
            kid=_loggable_str(header.get("kid"), MAX_KID_LENGTH),
            issuer=_loggable_str(claims.get("iss"), 200),
            customer_id=parse_customer_id(claims.get("sub")),
        )
    return Claims(customer_id=customer_id, exp=exp, issuer=issuer, kid=signed_by.kid, jti=jti, iat=iat)


def _loggable_str(value: object, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def verify_signature_only(token: str, secret: bytes) -> bool:
    """Whether the raw segments of ``token`` carry a valid HS256 signature under ``secret``.

    For the token debugger and test vectors: no header or claim rules apply.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        signature = _b64decode(parts[2])
    except _Refused:
        return False
    return _HS256.verify(f"{parts[0]}.{parts[1]}".encode("ascii", "replace"), secret, signature)
