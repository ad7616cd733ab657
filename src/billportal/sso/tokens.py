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

import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from billportal.core import i18n
from billportal.core.bounds import MAX_ID
from billportal.sso.reasons import Reason

MAX_TOKEN_BYTES: Final = 4096
MAX_CUSTOMER_ID: Final = MAX_ID  # a sub is a customer id: any positive BIGINT
# NumericDate bounds: after 2000-01-01 and before 10000-01-01.
MIN_TIME: Final = 946_684_800
MAX_TIME: Final = 253_402_300_799
MAX_JTI_LENGTH: Final = 255
MAX_KID_LENGTH: Final = 64

_JWS = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_FINAL_CHARACTERS = {0: frozenset(_ALPHABET), 2: frozenset(_ALPHABET[::16]), 3: frozenset(_ALPHABET[::4])}
_PADDING = {0: b"", 2: b"==", 3: b"="}
_URLSAFE = bytes.maketrans(b"-_", b"+/")
_DIGITS = re.compile(r"[1-9][0-9]{0,18}")
_KEY_PARAMETERS: Final = frozenset({"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"})


def _hs256_verifies(signing_input: bytes, secret: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is HMAC-SHA256 of ``signing_input`` under ``secret``, compared in constant time.

    The two standard-library calls PyJWT's ``HMACAlgorithm.verify`` makes. Importing PyJWT here would load
    cryptography's x509, RSA and EC modules into every worker (about 140 ms of start-up) for nothing else.
    PyJWT still makes the SDK's tokens; Wycheproof's vectors and Node's and Ruby's libraries check this.
    """
    return hmac.compare_digest(signature, hmac.new(secret, signing_input, hashlib.sha256).digest())


class VerificationKey:
    """One of a company's SSO keys, as the verifier sees it.

    The secret is given as it is, or as ``opener``, which unseals it on first use:
    a company's pages are served without decrypting its keys, and a worker that has
    signed no one in has not loaded AES at all.
    """

    __slots__ = ("_opener", "_secret", "kid", "retiring_until", "state")

    def __init__(
        self,
        kid: str,
        secret: bytes | None = None,
        state: str = "active",  # "active", "retiring" or "revoked"
        retiring_until: int | None = None,
        *,
        opener: Callable[[], bytes] | None = None,
    ) -> None:
        if (secret is None) == (opener is None):
            raise TypeError("a verification key needs its secret or an opener, not both")
        self.kid = kid
        self.state = state
        self.retiring_until = retiring_until
        self._secret = secret
        self._opener = opener

    def __repr__(self) -> str:
        return f"VerificationKey(kid={self.kid!r}, state={self.state!r}, retiring_until={self.retiring_until!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerificationKey):
            return NotImplemented
        mine = (self.kid, self.state, self.retiring_until)
        return mine == (other.kid, other.state, other.retiring_until) and hmac.compare_digest(self.secret, other.secret)

    def __hash__(self) -> int:
        return hash((self.kid, self.state, self.retiring_until))

    @property
    def secret(self) -> bytes:
        """The key's secret (unsealed the first time; a SealError if it does not open)."""
        if self._secret is None:
            assert self._opener is not None
            self._secret = self._opener()
            self._opener = None
        return self._secret

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


class Claims(NamedTuple):
    """The verified claims of a token that may sign a customer in.

    A named tuple, not a frozen dataclass: it is made once per sign-in, and a
    frozen dataclass's ``__init__`` costs more than the claim checks themselves.
    """

    customer_id: int
    exp: int
    issuer: str | None
    kid: str  # the key that verified the signature, named in the header or not
    jti: str | None
    iat: int | None
    locale: str | None = None  # the optional ``locale`` claim, when it names a shipped locale


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused token, and what could be read of it (for the sign-in log)."""

    reason: Reason
    kid: str | None = None
    issuer: str | None = None
    customer_id: int | None = None


class _Refused(Exception):
    """Internal: stops the checks at the first failure."""

    def __init__(self, reason: Reason, kid: str | None = None) -> None:
        self.reason = reason
        self.kid = kid  # the key that signed, when the header did not name it


def _b64decode(segment: str) -> bytes:
    """Decode one base64url segment, refusing every non-canonical spelling.

    Padding, ``+``, ``/``, white space and unused bits that are not zero would
    all let one token be written several ways; only the canonical form passes.
    The caller has checked the alphabet (``_JWS`` or ``_SEGMENT``).
    """
    rest = len(segment) % 4
    # The last character carries 4 (or 2) unused bits when the length is 2 (or 3)
    # mod 4; canonical base64url sets them to zero, and length 1 mod 4 is no base64.
    if rest == 1 or segment[-1] not in _FINAL_CHARACTERS[rest]:
        raise _Refused(Reason.TOKEN_MALFORMED)
    try:
        return binascii.a2b_base64(segment.encode("ascii").translate(_URLSAFE) + _PADDING[rest])
    except (binascii.Error, ValueError):
        raise _Refused(Reason.TOKEN_MALFORMED) from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# Objects come back as lists of (name, value) pairs, built in C: a Python hook
# per object would cost more than the rest of the parse. JSON arrays come back
# as lists of values, never of tuples, so the two cannot be confused.
_decode_pairs = json.JSONDecoder(object_pairs_hook=list, parse_constant=_refuse_constant).raw_decode
_JSON_WHITESPACE = " \t\r\n"


def _check_members(value: object) -> None:
    """Raise ValueError on a duplicate name in a nested object, or on a lone surrogate."""
    if isinstance(value, str):
        value.encode("utf-8")  # a lone surrogate (from a \u escape) is not Unicode: RFC 7493
    elif isinstance(value, list):
        if value and all(type(item) is tuple for item in value):
            if len({name for name, _ in value}) != len(value):
                raise ValueError("duplicate member name")
            for name, item in value:
                name.encode("utf-8")
                _check_members(item)
        else:
            for item in value:
                _check_members(item)


def _json_object(raw: bytes, reason: Reason) -> dict[str, Any]:
    """A JSON object in UTF-8 with unique member names, or the reason it is not."""
    try:
        text = raw.decode("utf-8")
        start = len(text) - len(text.lstrip(_JSON_WHITESPACE))
        if text[start : start + 1] != "{":
            raise _Refused(reason)
        pairs, end = _decode_pairs(text, start)
        if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
            raise _Refused(reason)
        value = dict(pairs)
        if len(value) != len(pairs):
            raise _Refused(reason)  # duplicate member names
        # Only text with nested objects or escapes needs the walk.
        if "\\u" in text or text.count("{") > 1:
            _check_members(pairs)
    except (UnicodeError, ValueError, RecursionError):
        # ValueError covers JSONDecodeError, NaN and integers beyond Python's digit limit.
        raise _Refused(reason) from None
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


def _named_key(kid: str, keys: tuple[VerificationKey, ...], now: int) -> VerificationKey:
    """The key a header's ``kid`` names: only that one is tried."""
    for key in keys:
        if key.kid == kid:
            if key.state == "revoked":
                raise _Refused(Reason.KEY_REVOKED)
            if not key.usable_at(now):
                raise _Refused(Reason.KEY_RETIRED)
            return key
    raise _Refused(Reason.KID_UNKNOWN)


def _unusable_key_refusal(
    signing_input: bytes, signature: bytes, keys: tuple[VerificationKey, ...], now: int
) -> _Refused:
    """Tell a stale key (and which) from a wrong one, for the sign-in log only."""
    for key in keys:
        if not key.usable_at(now) and _hs256_verifies(signing_input, key.secret, signature):
            return _Refused(Reason.KEY_REVOKED if key.state == "revoked" else Reason.KEY_RETIRED, key.kid)
    return _Refused(Reason.SIGNATURE_INVALID)


# A backend sends the same header with every link: a header that passed its decoding and its rules
# is remembered by its exact text, so the next links skip both (the same outcome, in the same order).
# Bounded, and emptied when full, so that odd headers cannot grow it. Its dicts are only read.
_GOOD_HEADERS: dict[str, dict[str, Any]] = {}
_GOOD_HEADERS_MAX = 64


def _remember_header(header_b64: str, header: dict[str, Any]) -> None:
    if len(_GOOD_HEADERS) >= _GOOD_HEADERS_MAX:
        _GOOD_HEADERS.clear()
    _GOOD_HEADERS[header_b64] = header


def _parse(token: str) -> tuple[str, str, bytes, dict[str, Any], dict[str, Any]]:
    if len(token) > MAX_TOKEN_BYTES:
        raise _Refused(Reason.TOKEN_TOO_LONG)
    shape = _JWS.fullmatch(token)
    if shape is None:
        raise _Refused(Reason.TOKEN_MALFORMED)
    header_b64, payload_b64, signature_b64 = shape.groups()
    known = _GOOD_HEADERS.get(header_b64)
    header_raw = _b64decode(header_b64) if known is None else b""
    payload_raw = _b64decode(payload_b64)
    signature = _b64decode(signature_b64)
    header = _json_object(header_raw, Reason.HEADER_INVALID) if known is None else known
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
    """The key whose HMAC matches, compared in constant time by PyJWT's HS256.

    Without a ``kid``, every usable key is tried in the order given; the store
    lists the active key first, since it signs nearly every link.
    """
    if kid is not None:
        key = _named_key(kid, keys, now)
        if _hs256_verifies(signing_input, key.secret, signature):
            return key
        raise _Refused(Reason.SIGNATURE_INVALID)
    usable = False
    for key in keys:
        if key.usable_at(now):
            usable = True
            if _hs256_verifies(signing_input, key.secret, signature):
                return key
    if not usable:
        raise _Refused(Reason.NO_USABLE_KEY)
    raise _unusable_key_refusal(signing_input, signature, keys, now)


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
    if issuer is not None and (not isinstance(issuer, str) or "\x00" in issuer):
        raise _Refused(Reason.ISS_INVALID)
    if policy.allowed_issuers and issuer not in policy.allowed_issuers:
        raise _Refused(Reason.ISSUER_NOT_ALLOWED)
    jti = claims.get("jti")
    if jti is None:
        if policy.require_jti:
            raise _Refused(Reason.JTI_REQUIRED)
    elif not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH or "\x00" in jti:
        raise _Refused(Reason.JTI_INVALID)
    return customer_id, issuer, jti


def verify(token: str, keys: tuple[VerificationKey, ...], policy: Policy, now: int) -> Claims | Rejection:
    """Verify a sign-in token against a company's keys and policy at time ``now``."""
    header: dict[str, Any] = {}
    claims: dict[str, Any] = {}
    try:
        header_b64, payload_b64, signature, header, claims = _parse(token)
        kid = _check_header(header)
        if header_b64 not in _GOOD_HEADERS:
            _remember_header(header_b64, header)
        signed_by = _check_signature(f"{header_b64}.{payload_b64}".encode("ascii"), signature, kid, keys, now)
        exp, iat = _check_times(claims, policy, now)
        customer_id, issuer, jti = _check_subject(claims, policy)
    except _Refused as refused:
        return Rejection(
            refused.reason,
            kid=refused.kid or _loggable_str(header.get("kid"), MAX_KID_LENGTH),
            issuer=_loggable_str(claims.get("iss"), 200),
            customer_id=parse_customer_id(claims.get("sub")),
        )
    asked = claims.get("locale")
    # An unknown or malformed locale does not refuse the link: the portal chooses another way.
    locale = i18n.shipped(asked) if isinstance(asked, str) else None
    return Claims(customer_id, exp, issuer, signed_by.kid, jti, iat, locale)


def _loggable_str(value: object, limit: int) -> str | None:
    # The sign-in log keeps what it can of a refused token; PostgreSQL refuses a NUL in a string.
    return value[:limit].replace("\x00", "\ufffd") if isinstance(value, str) else None


def verify_signature_only(token: str, secret: bytes) -> bool:
    """Whether the raw segments of ``token`` carry a valid HS256 signature under ``secret``.

    For the token debugger and test vectors: no header or claim rules apply.
    """
    shape = _JWS.fullmatch(token)
    if shape is None:
        return False
    header_b64, payload_b64, signature_b64 = shape.groups()
    try:
        # Every segment must be canonical base64url: a MAC over a mis-encoded
        # header or payload is not a valid JWS (Wycheproof tcId 365-371, 375).
        _b64decode(header_b64)
        _b64decode(payload_b64)
        signature = _b64decode(signature_b64)
    except _Refused:
        return False
    return _hs256_verifies(f"{header_b64}.{payload_b64}".encode("ascii"), secret, signature)
