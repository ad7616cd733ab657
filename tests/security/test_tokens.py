"""Every known attack on a JWT sign-in link, sent to ``/login`` (GET and POST): 401, no session.

tests/functional/test_signin.py shows each rejection rule once; this suite tries
the variants attackers use (RFC 8725, the OWASP JWT cheat sheet, recent CVEs in
JWT libraries). Each case names the reason the sign-in log must show, so a case
refused for the wrong reason (say, by accident of its shape) fails too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from tests import factories
from tests.conftest import ACME_KEY, GLOBEX_KEY, World, run
from tests.functional.test_signin import COOKIE
from tests.security.conftest import (
    HS256,
    assert_refused,
    good_claims,
    last_reason,
    login_path,
    segment,
    session_count,
    signature,
    signed,
)


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem() -> bytes:
    return (
        rsa_key().public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def with_signature(token: str, new_signature: str) -> str:
    head, body, _ = token.split(".")
    return f"{head}.{body}.{new_signature}"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def altered(token: str, change: Callable[[bytes], bytes]) -> str:
    """The token with its signature bytes changed."""
    raw = base64.urlsafe_b64decode(token.split(".")[2] + "==")
    return with_signature(token, b64(change(raw)))


def flip(position: int) -> Callable[[bytes], bytes]:
    def change(raw: bytes) -> bytes:
        data = bytearray(raw)
        data[position] ^= 0x01
        return bytes(data)

    return change


def hmac_token(header: dict[str, Any], claims: dict[str, Any], digest: Any, key: str = ACME_KEY) -> str:
    signing_input = f"{segment(header)}.{segment(claims)}"
    return f"{signing_input}.{b64(hmac.new(key.encode(), signing_input.encode(), digest).digest())}"


def other_spelling_of_last_char(text: str) -> str:
    """The same bytes with different unused low bits in the last base64url character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 4, 3: 2}[len(text) % 4]  # 2 chars: 4 spare bits; 3 chars: 2
    index = alphabet.index(text[-1])
    return text[:-1] + alphabet[index ^ ((1 << unused) - 1)]


def iss_with_both_extra_characters(world: World) -> dict[str, Any]:
    """Claims whose base64url payload has both ``-`` and ``_`` (to spell them as ``+`` and ``/``)."""
    for n in range(200):
        claims = good_claims(world, iss="?>" * n + "~~~")
        text = segment(claims)
        if "-" in text and "_" in text:
            return claims
    raise AssertionError("no payload spells both - and _")


WEAK_SECRETS = ["", "secret", "password", "123456", "your-256-bit-secret", "changeme", "key", "jwt", "shhhhh", "null"]
CERTIFICATE = "MIIBszCCAVmgAwIBAgIUQ0z9"  # a certificate's first bytes: never read anyway

# name -> (the token, made for this world; the reason the sign-in log shows)
Build = Callable[[World], str]
Case = tuple[Build, str]


def unsigned(header: Any) -> Build:
    return lambda world: f"{segment(header)}.{segment(good_claims(world))}."


def header_is(header: Any, key: str | bytes = ACME_KEY) -> Build:
    """Good claims under ``header``, correctly signed with ``key``."""
    return lambda world: signed(header, good_claims(world), key)


def payload_is(payload: Any) -> Build:
    """``payload`` (or what it makes of the world) under a good header, correctly signed."""
    return lambda world: signed(HS256, payload(world) if callable(payload) else payload)


def claim_is(name: str, value: Any) -> Build:
    """Good claims but for ``name`` (a value, or what it makes of the world), correctly signed."""
    return lambda world: signed(HS256, good_claims(world, **{name: value(world) if callable(value) else value}))


def segment_edited(index: int, appended: str, inserted: str = "") -> Build:
    """A good token with text appended to one of its segments, or inserted after its fifth character."""

    def build(world: World) -> str:
        parts = signed(HS256, good_claims(world)).split(".")
        parts[index] = parts[index][:5] + inserted + parts[index][5:] + appended
        return ".".join(parts)

    return build


CASES: dict[str, Case] = {
    # -- alg ---------------------------------------------------------------------------
    **{
        f"alg {alg} unsigned": (
            unsigned({"alg": alg}),
            "token_malformed",
        )
        for alg in ("none", "None", "NONE", "nOnE")
    },
    **{
        f"alg {alg} signed with the key": (header_is({"alg": alg}), "alg_not_allowed")
        for alg in ("none", "None", "NONE", "nOnE")
    },
    "alg missing": ((lambda w: signed({"typ": "JWT"}, good_claims(w))), "alg_not_allowed"),
    "alg null": ((lambda w: signed({"alg": None}, good_claims(w))), "alg_not_allowed"),
    "alg a list": ((lambda w: signed({"alg": ["HS256"]}, good_claims(w))), "alg_not_allowed"),
    "alg lower case": ((lambda w: signed({"alg": "hs256"}, good_claims(w))), "alg_not_allowed"),
    "alg with a space": ((lambda w: signed({"alg": "HS256 "}, good_claims(w))), "alg_not_allowed"),
    "alg HS384 with the right key": (
        (lambda w: hmac_token({"alg": "HS384"}, good_claims(w), hashlib.sha384)),
        "alg_not_allowed",
    ),
    "alg HS512 with the right key": (
        (lambda w: hmac_token({"alg": "HS512"}, good_claims(w), hashlib.sha512)),
        "alg_not_allowed",
    ),
    "alg RS256 really signed": (
        (lambda w: jwt.encode(good_claims(w), rsa_key(), algorithm="RS256")),
        "alg_not_allowed",
    ),
    "alg PS256 really signed": (
        (lambda w: jwt.encode(good_claims(w), rsa_key(), algorithm="PS256")),
        "alg_not_allowed",
    ),
    "alg ES256 really signed": (
        (lambda w: jwt.encode(good_claims(w), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")),
        "alg_not_allowed",
    ),
    "key confusion: RS256 header, HMAC with the public key": (
        (lambda w: signed({"alg": "RS256"}, good_claims(w), public_pem())),
        "alg_not_allowed",
    ),
    "key confusion: HS256 with the public key as secret": (
        (lambda w: signed(HS256, good_claims(w), public_pem())),
        "signature_invalid",
    ),
    # -- kid -----------------------------------------------------------------------------
    **{
        f"kid {kid!r}": (header_is({"alg": "HS256", "kid": kid}), "kid_unknown")
        # "\x00": PostgreSQL refuses a NUL in a string, so the sign-in log must not be handed one.
        for kid in ("../../../../dev/null", "/dev/null", "|sleep 10", "x' UNION SELECT '1';--", "%00", "*", "\x00")
    },
    "kid /dev/null signed with an empty key": (
        (lambda w: signed({"alg": "HS256", "kid": "/dev/null"}, good_claims(w), b"")),
        "kid_unknown",
    ),
    "kid SQL injection signed with '1'": (
        (lambda w: signed({"alg": "HS256", "kid": "x' UNION SELECT '1';--"}, good_claims(w), b"1")),
        "kid_unknown",
    ),
    "kid empty string": ((lambda w: signed({"alg": "HS256", "kid": ""}, good_claims(w))), "kid_invalid"),
    "kid too long": ((lambda w: signed({"alg": "HS256", "kid": "k" * 65}, good_claims(w))), "kid_invalid"),
    "kid a number": ((lambda w: signed({"alg": "HS256", "kid": 1}, good_claims(w))), "kid_invalid"),
    "kid an object": ((lambda w: signed({"alg": "HS256", "kid": {"$ne": None}}, good_claims(w))), "kid_invalid"),
    "kid of another company's key": (
        (lambda w: signed({"alg": "HS256", "kid": w.globex.sso_keys[0].kid}, good_claims(w), GLOBEX_KEY)),
        "kid_unknown",
    ),
    # -- keys carried in the header ---------------------------------------------------------
    "embedded jwk with the attacker's key": (
        (
            lambda w: signed(
                {"alg": "HS256", "jwk": {"kty": "oct", "k": b64(b"attacker-key-32-bytes-long......")}},
                good_claims(w),
                b"attacker-key-32-bytes-long......",
            )
        ),
        "header_key_parameter",
    ),
    "embedded jwk, RSA public key": (
        (
            lambda w: jwt.encode(
                good_claims(w),
                rsa_key(),
                algorithm="RS256",
                headers={"jwk": json.loads(RSAAlgorithm.to_jwk(rsa_key().public_key()))},
            )
        ),
        "alg_not_allowed",
    ),
    "x5c": ((lambda w: signed({"alg": "HS256", "x5c": [CERTIFICATE]}, good_claims(w))), "header_key_parameter"),
    "x5t": ((lambda w: signed({"alg": "HS256", "x5t": "dGh1bWI"}, good_claims(w))), "header_key_parameter"),
    "x5t#S256": ((lambda w: signed({"alg": "HS256", "x5t#S256": "dGh1bWI"}, good_claims(w))), "header_key_parameter"),
    # -- crit ------------------------------------------------------------------------------------
    **{
        f"crit {crit!r}": (header_is({"alg": "HS256", "crit": crit}), reason)
        for crit, reason in [
            (["exp"], "crit_not_supported"),
            ([], "crit_not_supported"),
            ("exp", "crit_not_supported"),
            (None, "crit_not_supported"),
            (["kid"], "crit_not_supported"),
            (["urn:example:unknown"], "crit_not_supported"),
            ({"exp": True}, "crit_not_supported"),
        ]
    },
    "crit b64 false (RFC 7797)": (
        (lambda w: signed({"alg": "HS256", "b64": False, "crit": ["b64"]}, good_claims(w))),
        "crit_not_supported",
    ),
    # -- the signature -------------------------------------------------------------------------
    "signature stripped, dot kept": ((lambda w: with_signature(signed(HS256, good_claims(w)), "")), "token_malformed"),
    "signature stripped with its dot": (
        (lambda w: signed(HS256, good_claims(w)).rsplit(".", 1)[0]),
        "token_malformed",
    ),
    "signature truncated to 16 bytes": (
        (lambda w: altered(signed(HS256, good_claims(w)), lambda s: s[:16])),
        "signature_invalid",
    ),
    "signature one byte short": (
        (lambda w: altered(signed(HS256, good_claims(w)), lambda s: s[:-1])),
        "signature_invalid",
    ),
    "signature one byte long": (
        (lambda w: altered(signed(HS256, good_claims(w)), lambda s: s + b"\0")),
        "signature_invalid",
    ),
    "signature doubled": ((lambda w: altered(signed(HS256, good_claims(w)), lambda s: s + s)), "signature_invalid"),
    "signature first bit flipped": ((lambda w: altered(signed(HS256, good_claims(w)), flip(0))), "signature_invalid"),
    "signature last bit flipped": ((lambda w: altered(signed(HS256, good_claims(w)), flip(31))), "signature_invalid"),
    "signature all zero": (
        (lambda w: altered(signed(HS256, good_claims(w)), lambda _s: bytes(32))),
        "signature_invalid",
    ),
    "signature of another token": (
        (
            lambda w: with_signature(
                signed(HS256, good_claims(w)), signed(HS256, good_claims(w, sub=1235)).split(".")[2]
            )
        ),
        "signature_invalid",
    ),
    "signed by another company": ((lambda w: signed(HS256, good_claims(w), GLOBEX_KEY)), "signature_invalid"),
    **{
        f"weak secret {secret!r}": (
            header_is(HS256, key=secret),
            "signature_invalid",
        )
        for secret in WEAK_SECRETS
    },
    # -- base64url spellings ---------------------------------------------------------------------
    **{
        f"padding {pad!r} on segment {index}": (
            segment_edited(index, pad),
            "token_malformed",
        )
        for index in range(3)
        for pad in ("=", "==")
    },
    "payload spelt with + and /": (
        (lambda w: _standard_alphabet(signed(HS256, iss_with_both_extra_characters(w)), 1)),
        "token_malformed",
    ),
    "signature spelt with + and /": (
        (lambda w: _standard_alphabet(_signature_with_both_extra_characters(w), 2)),
        "token_malformed",
    ),
    **{
        f"white space {space!r} in segment {index}": (
            segment_edited(index, "", space),
            "token_malformed",
        )
        for index in range(3)
        for space in (" ", "\t", "\n", "\r\n", "\u00a0")
    },
    "trailing newline": ((lambda w: signed(HS256, good_claims(w)) + "\n"), "token_malformed"),
    "leading space": ((lambda w: " " + signed(HS256, good_claims(w))), "token_malformed"),
    "signature with changed unused bits": ((lambda w: _with_unused_bits_changed(w, 2)), "token_malformed"),
    "payload with changed unused bits": (
        (lambda w: _with_unused_bits_changed(w, 1)),
        "token_malformed",
    ),
    "header with changed unused bits": (
        (lambda w: _with_unused_bits_changed(w, 0)),
        "token_malformed",
    ),
    # -- segments and serializations --------------------------------------------------------------
    "empty token": ((lambda _w: ""), "token_malformed"),
    "just a dot": ((lambda _w: "."), "token_malformed"),
    "two dots": ((lambda _w: ".."), "token_malformed"),
    "one segment": ((lambda w: segment(good_claims(w))), "token_malformed"),
    "two segments": ((lambda w: f"{segment(HS256)}.{segment(good_claims(w))}"), "token_malformed"),
    "four segments": ((lambda w: signed(HS256, good_claims(w)) + ".e30"), "token_malformed"),
    "trailing dot": ((lambda w: signed(HS256, good_claims(w)) + "."), "token_malformed"),
    "leading dot": ((lambda w: "." + signed(HS256, good_claims(w))), "token_malformed"),
    "empty header": ((lambda w: "." + signed(HS256, good_claims(w)).split(".", 1)[1]), "token_malformed"),
    "empty payload": (
        (lambda _w: f"{segment(HS256)}..{signature(segment(HS256) + '.')}"),
        "token_malformed",
    ),
    "five-part JWE (dir, A128GCM)": (
        (
            lambda w: ".".join(
                [segment({"alg": "dir", "enc": "A128GCM"}), "", b64(bytes(12)), segment(good_claims(w)), b64(bytes(16))]
            )
        ),
        "token_malformed",
    ),
    "five-part JWE (RSA-OAEP)": (
        (
            lambda _w: ".".join(
                [
                    segment({"alg": "RSA-OAEP", "enc": "A256GCM"}),
                    b64(bytes(256)),
                    b64(bytes(12)),
                    b64(b"x"),
                    b64(bytes(16)),
                ]
            )
        ),
        "token_malformed",
    ),
    "JSON serialization, flattened": (
        (lambda w: json.dumps(_json_serialization(w))),
        "token_malformed",
    ),
    "JSON serialization, general": ((lambda w: json.dumps(_json_serialization(w, general=True))), "token_malformed"),
    # -- header and payload documents ------------------------------------------------------------
    **{
        f"header {name}": (header_is(raw), "header_invalid")
        for name, raw in [
            ("an array", ["HS256"]),
            ("a string", "HS256"),
            ("a number", 256),
            ("null", None),
            ("true", True),
            ("not JSON", b"{alg:HS256}"),
            ("not UTF-8", b'{"alg":"HS256","x":"\xff"}'),
            ("overlong UTF-8", b'{"alg":"HS256","x":"\xc0\xaf"}'),
            ("an encoded surrogate", b'{"alg":"HS256","x":"\xed\xa0\x80"}'),
            ("Latin-1", b'{"alg":"HS256","x":"caf\xe9"}'),
            ("with a BOM", b'\xef\xbb\xbf{"alg":"HS256"}'),
            ("a lone surrogate escape", b'{"alg":"HS256","kid":"\\udfff"}'),
            ("duplicate alg, none last", b'{"alg":"HS256","alg":"none"}'),
            ("duplicate alg, none first", b'{"alg":"none","alg":"HS256"}'),
            ("duplicate alg spelt with an escape", b'{"alg":"none","\\u0061lg":"HS256"}'),
            ("NaN", b'{"alg":"HS256","x":NaN}'),
            ("trailing garbage", b'{"alg":"HS256"}x'),
            ("two objects", b'{"alg":"HS256"}{"alg":"none"}'),
        ]
    },
    **{
        f"payload {name}": (payload_is(raw), "payload_invalid")
        for name, raw in [
            ("an array", [1234]),
            ("a string", "1234"),
            ("a number", 1234),
            ("null", None),
            ("not UTF-8", b'{"sub":"\xff"}'),
            ("with a BOM", lambda w: b"\xef\xbb\xbf" + json.dumps(good_claims(w)).encode()),
            ("a lone surrogate in iss", lambda w: b'{"sub":1234,"exp":%d,"iss":"\\ud800"}' % (w.clock.now + 600)),
            ("a lone surrogate in jti", lambda w: b'{"sub":1234,"exp":%d,"jti":"a\\udbff"}' % (w.clock.now + 600)),
            ("a lone surrogate in a name", lambda w: b'{"sub":1234,"exp":%d,"\\ud800":1}' % (w.clock.now + 600)),
            ("duplicate sub", lambda w: b'{"sub":1235,"sub":1234,"exp":%d}' % (w.clock.now + 600)),
            ("duplicate exp", lambda w: b'{"sub":1234,"exp":1,"exp":%d}' % (w.clock.now + 600)),
            (
                "duplicate sub spelt with an escape",
                lambda w: b'{"sub":1235,"s\\u0075b":1234,"exp":%d}' % (w.clock.now + 600),
            ),
            ("nested duplicate", lambda w: b'{"sub":1234,"exp":%d,"x":{"a":1,"a":2}}' % (w.clock.now + 600)),
            ("Infinity", lambda _w: b'{"sub":1234,"exp":Infinity}'),
            ("deeply nested", lambda _w: b'{"sub":1234,"x":' + b"[" * 1400 + b"]" * 1400 + b"}"),
        ]
    },
    # -- time claims -------------------------------------------------------------------------------
    "exp missing": ((lambda w: signed(HS256, good_claims(w, exp=...))), "exp_missing"),
    **{
        f"exp {name}": (claim_is("exp", value), "exp_invalid")
        for name, value in [
            ("a string", lambda w: str(w.clock.now + 600)),
            ("a float", lambda w: w.clock.now + 600.5),
            ("a whole float", lambda w: float(w.clock.now + 600)),
            ("null", lambda _w: None),
            ("true", lambda _w: True),
            ("false", lambda _w: False),
            ("huge", lambda _w: 10**30),
            ("beyond any float", lambda _w: 10**400),
            ("negative", lambda w: -(w.clock.now + 600)),
            ("zero", lambda _w: 0),
            ("in milliseconds", lambda w: (w.clock.now + 600) * 1000),
            ("an array", lambda w: [w.clock.now + 600]),
            ("an object", lambda _w: {"$gt": 0}),
        ]
    },
    "exp in exponent notation": (
        (lambda w: signed(HS256, b'{"sub":1234,"exp":%de0}' % (w.clock.now + 600))),
        "exp_invalid",
    ),
    "expired beyond the leeway": ((lambda w: signed(HS256, good_claims(w, exp=w.clock.now - 60))), "expired"),
    "nbf in the future": ((lambda w: signed(HS256, good_claims(w, nbf=w.clock.now + 120))), "not_yet_valid"),
    "nbf a string": ((lambda w: signed(HS256, good_claims(w, nbf=str(w.clock.now)))), "nbf_invalid"),
    "nbf a float": ((lambda w: signed(HS256, good_claims(w, nbf=w.clock.now + 0.5))), "nbf_invalid"),
    "iat in the future": ((lambda w: signed(HS256, good_claims(w, iat=w.clock.now + 120))), "iat_in_future"),
    "iat a float": ((lambda w: signed(HS256, good_claims(w, iat=w.clock.now + 0.5))), "iat_invalid"),
    "iat null": ((lambda w: signed(HS256, good_claims(w, iat=None))), "iat_invalid"),
    # -- sub -----------------------------------------------------------------------------------------
    "sub missing": ((lambda w: signed(HS256, good_claims(w, sub=...))), "sub_missing"),
    **{
        f"sub {name}": (claim_is("sub", value), "sub_invalid")
        for name, value in [
            ("empty", ""),
            ("a whole float", 1234.0),
            ("a float", 1234.5),
            ("an array", [1234]),
            ("an object", {"id": 1234}),
            ("negative", -1234),
            ("a negative string", "-1234"),
            ("with a leading zero", "01234"),
            ("zero", 0),
            ("zero as a string", "0"),
            ("2**63", 2**63),
            ("30 digits", "9" * 30),
            ("400 digits", 10**400),
            ("with a trailing space", "1234 "),
            ("with a leading space", " 1234"),
            ("with a plus sign", "+1234"),
            ("with an underscore", "1_234"),
            ("in exponent notation", "1e3"),
            ("in Arabic-Indic digits", "\u0661\u0662\u0663\u0664"),  # int() would take them
            ("true", True),
            ("null", None),
        ]
    },
    "sub names a customer of another company only": (
        (lambda w: signed(HS256, good_claims(w, sub=77))),
        "customer_unknown",
    ),
    "sub names no customer": ((lambda w: signed(HS256, good_claims(w, sub=999_999))), "customer_unknown"),
    # -- other claims ----------------------------------------------------------------------------------
    "iss a number": ((lambda w: signed(HS256, good_claims(w, iss=7))), "iss_invalid"),
    "iss with a NUL": ((lambda w: signed(HS256, good_claims(w, iss="Ruby\x00Backend"))), "iss_invalid"),
    "iss with a NUL, badly signed": ((lambda w: signed(HS256, good_claims(w, iss="\x00"), b"x")), "signature_invalid"),
    "jti with a NUL": ((lambda w: signed(HS256, good_claims(w, jti="a\x00b"))), "jti_invalid"),
    "iss longer than the sign-in log holds, customer unknown": (
        (lambda w: signed(HS256, good_claims(w, iss="i" * 300, sub=999))),
        "customer_unknown",
    ),
    "jti empty": ((lambda w: signed(HS256, good_claims(w, jti=""))), "jti_invalid"),
    "jti too long": ((lambda w: signed(HS256, good_claims(w, jti="j" * 256))), "jti_invalid"),
    "typ JWE": ((lambda w: signed({"alg": "HS256", "typ": "JWE"}, good_claims(w))), "typ_invalid"),
    "typ a number": ((lambda w: signed({"alg": "HS256", "typ": 1}, good_claims(w))), "typ_invalid"),
}


def _standard_alphabet(token: str, index: int) -> str:
    parts = token.split(".")
    parts[index] = parts[index].replace("-", "+").replace("_", "/")
    return ".".join(parts)


def _signature_with_both_extra_characters(world: World) -> str:
    for n in range(500):
        token = signed(HS256, good_claims(world, jti=f"j{n}"))
        sig = token.split(".")[2]
        if "-" in sig and "_" in sig:
            return token
    raise AssertionError("no signature spells both - and _")


def _with_unused_bits_changed(world: World, index: int) -> str:
    """A token whose header, payload or signature segment has spare bits, spelt with them set."""
    for n in range(8):
        header = {"alg": "HS256", "typ": "JWT", **({"x": "p" * n} if index == 0 else {})}
        claims = good_claims(world, iss="p" * n)
        parts = [segment(header), segment(claims)]
        parts.append(signature(".".join(parts)))
        if len(parts[index]) % 4 in (2, 3):
            parts[index] = other_spelling_of_last_char(parts[index])
            if index < 2:
                parts[2] = signature(".".join(parts[:2]))
            return ".".join(parts)
    raise AssertionError("no segment with spare bits")


def _json_serialization(world: World, *, general: bool = False) -> dict[str, Any]:
    head, body, sig = signed(HS256, good_claims(world)).split(".")
    if general:
        return {"payload": body, "signatures": [{"protected": head, "signature": sig}]}
    return {"payload": body, "protected": head, "signature": sig}


def sign_in(world: World, method: str, token: str) -> Any:
    client = world.client()
    if method == "GET":
        return client.get(login_path(token))
    return client.post("/login", data={"token": token})


def test_a_correct_token_made_the_same_way_signs_in(world: World) -> None:
    # The control for every case below: the helpers make tokens that work.
    for method in ("GET", "POST"):
        response = sign_in(world, method, signed(HS256, good_claims(world)))
        assert response.status_code == 303
        assert COOKIE in response.cookies
    assert session_count(world.store) == 2


def test_a_good_link_with_an_issuer_longer_than_the_log_holds_signs_in(world: World) -> None:
    # PostgreSQL refuses a value longer than its column: the sign-in log keeps the issuer's first 200 characters.
    response = sign_in(world, "GET", signed(HS256, good_claims(world, iss="i" * 300)))
    assert response.status_code == 303
    assert last_issuer(world) == "i" * 200


def last_issuer(world: World) -> str | None:
    events = run(world.store.sign_in_events(world.acme.id, limit=1))
    return events[0].issuer


@pytest.mark.parametrize("name", list(CASES))
def test_attack_token_is_refused(world: World, failure_page: str, name: str) -> None:
    build, reason = CASES[name]
    token = build(world)
    for method in ("GET", "POST"):
        assert_refused(world, sign_in(world, method, token), failure_page, reason)


def test_duplicate_alg_with_none_is_refused_whichever_wins(world: World, failure_page: str) -> None:
    # A parser that keeps the first or the last duplicate would read HS256 one way
    # and none the other: no such header is ever read at all.
    for raw in (b'{"alg":"HS256","alg":"none"}', b'{"alg":"none","alg":"HS256"}'):
        token = f"{segment(raw)}.{segment(good_claims(world))}."
        assert_refused(world, world.client().get(f"/login/{token}"), failure_page, "token_malformed")


# -- jku / x5u: no request leaves the server --------------------------------------------------------


class Listener:
    """A TCP listener on a free local port that records every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def test_jku_and_x5u_are_refused_and_never_fetched(world: World, failure_page: str, listener: Listener) -> None:
    # A control first: the listener does see a connection made to it.
    socket.create_connection(("127.0.0.1", listener.port), timeout=5).close()
    for _ in range(100):
        if listener.connections:
            break
        threading.Event().wait(0.01)
    assert listener.connections == 1

    url = f"http://127.0.0.1:{listener.port}/.well-known/jwks.json"
    headers = [
        {"alg": "HS256", "jku": url},
        {"alg": "HS256", "x5u": url},
        {"alg": "HS256", "jku": url, "kid": "attacker"},
        {"alg": "RS256", "jku": url},
        {"alg": "RS256", "x5u": url},
    ]
    for header in headers:
        response = world.client().get(f"/login/{signed(header, good_claims(world))}")
        assert_refused(world, response, failure_page)
        assert last_reason(world) in ("header_key_parameter", "alg_not_allowed")
    listener.close()
    assert listener.connections == 1  # the control's only


# -- claims are never reflected ---------------------------------------------------------------------

HOSTILE = '<script>alert("x")</script>"><img src=x onerror=alert(1)>'


@pytest.mark.parametrize("claim", ["iss", "jti", "kid", "sub", "typ", "nbf"])
def test_claim_values_are_never_reflected(world: World, failure_page: str, claim: str) -> None:
    header = {"alg": "HS256", **({claim: HOSTILE} if claim in ("kid", "typ") else {})}
    claims = good_claims(world, **({claim: HOSTILE} if claim not in ("kid", "typ") else {}))
    for valid_signature in (True, False):
        token = signed(header, claims, ACME_KEY if valid_signature else GLOBEX_KEY)
        response = world.client().get(f"/login/{quote(token, safe='')}", follow_redirects=True)
        assert "<script" not in response.text
        assert "onerror" not in response.text
        for value in response.headers.values():
            assert "script" not in value
            assert "onerror" not in value


def test_hostile_issuer_on_a_good_link_is_not_shown_raw_on_any_page(world: World) -> None:
    client = world.client()
    token = signed(HS256, good_claims(world, iss=HOSTILE, jti=HOSTILE))
    response = client.get(f"/login/{quote(token, safe='')}")
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert page.status_code == 200
    assert "<script" not in page.text
    assert "onerror" not in page.text


def test_hostile_customer_data_is_escaped(world: World) -> None:
    from tests.conftest import run

    run(
        factories.customer(
            world.store, world.acme.id, id=4242, name=HOSTILE, email="o'brien+&tag@example.com", now=world.clock.now
        )
    )
    client = world.client()
    assert client.get(f"/login/{signed(HS256, good_claims(world, sub=4242))}").status_code == 303
    page = client.get("/")
    assert page.status_code == 200
    assert "<script" not in page.text
    assert "&lt;script&gt;" in page.text


def test_a_header_seen_before_is_judged_as_a_new_one(world: World, failure_page: str) -> None:
    """The verifier remembers headers that passed (a bounded table): more distinct headers than it
    holds still verify, and a header that passed once does not carry a bad payload or signature."""
    client = world.client()
    for n in range(80):  # more than the table holds: it is emptied and filled again
        header = HS256 | {"x-n": n}
        assert client.get(login_path(signed(header, good_claims(world, jti=f"many-{n}")))).status_code == 303
    client.cookies.clear()
    run(world.store.end_customer_sessions(world.acme.id, 1234))
    header = HS256 | {"x-n": 79}  # remembered now
    bad_payload = f"{segment(header)}.{segment(b'not json')}"
    assert_refused(world, client.get(login_path(f"{bad_payload}.{signature(bad_payload)}")), failure_page)
    assert last_reason(world) == "payload_invalid"
    forged = signed(header, good_claims(world, jti="forged"), key=GLOBEX_KEY)
    assert_refused(world, client.get(login_path(forged)), failure_page)
    assert last_reason(world) == "signature_invalid"
    refused = HS256 | {"alg": "none", "x-n": 79}
    for _ in range(2):  # a refused header is never remembered
        assert_refused(world, client.get(login_path(signed(refused, good_claims(world)))), failure_page)
        assert last_reason(world) == "alg_not_allowed"
