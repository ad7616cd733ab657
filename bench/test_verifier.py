"""Microseconds per token: billportal's verifier, PyJWT's decode alone, and a minimal stdlib check.

Run by ``make bench`` (``pytest bench/test_verifier.py --benchmark-only``), never by
``make test``. Each call takes the next of 1,000 distinct tokens (as the sign-in
benchmark sends them: ``sub``, ``iss``, ``iat``, ``exp``, ``jti``), so no cache can
answer for the verifier. The three functions, from most to least work:

- ``billportal.sso.tokens.verify``: the whole policy (canonical base64url, strict
  JSON, header rules, HS256 by key, times, leeway, lifetime, cutoff, ``sub``,
  issuer list, required ``jti``);
- ``jwt.decode(token, key, algorithms=["HS256"])``: PyJWT's own checks;
- the minimal standard-library check below: split, HMAC-SHA256 compared in
  constant time, the payload's JSON, ``exp``. Less than this verifies nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from bench.common import ISSUER, TOKEN_TTL
from bench.tokens import make_token
from billportal.sso.tokens import Claims, Policy, VerificationKey, verify

KEY = secrets.token_urlsafe(32)
NOW = int(time.time())
TOKENS = [make_token(KEY, 1 + n % 1000, f"bench-{n}", NOW) for n in range(1000)]
KEYS = (VerificationKey(kid="sso_bench", secret=KEY.encode("utf-8")),)
POLICY = Policy(
    leeway=60,
    max_lifetime=TOKEN_TTL,
    require_jti=True,
    allowed_issuers=frozenset({ISSUER, "another-backend"}),
    iat_cutoff=NOW - 86_400,
)


def stdlib_verify(token: str, secret: bytes, now: int) -> dict[str, Any] | None:
    """The least a correct HS256 check does, with the standard library only."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        expected = hmac.new(secret, f"{header_b64}.{payload_b64}".encode("ascii"), hashlib.sha256).digest()
        signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
        if not hmac.compare_digest(expected, signature):
            return None
        claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        return None
    return claims


@pytest.fixture
def tokens() -> Iterator[str]:
    return itertools.cycle(TOKENS)


@pytest.mark.benchmark(group="verifier")
def test_billportal_verify(benchmark: BenchmarkFixture, tokens: Iterator[str]) -> None:
    result = benchmark(lambda: verify(next(tokens), KEYS, POLICY, NOW))
    assert isinstance(result, Claims)


@pytest.mark.benchmark(group="verifier")
def test_pyjwt_decode(benchmark: BenchmarkFixture, tokens: Iterator[str]) -> None:
    result = benchmark(lambda: jwt.decode(next(tokens), KEY, algorithms=["HS256"]))
    assert result["iss"] == ISSUER


@pytest.mark.benchmark(group="verifier")
def test_stdlib_hmac(benchmark: BenchmarkFixture, tokens: Iterator[str]) -> None:
    secret = KEY.encode("utf-8")
    result = benchmark(lambda: stdlib_verify(next(tokens), secret, NOW))
    assert result is not None
    assert result["iss"] == ISSUER


def _loop(seconds: float) -> None:
    """``python -m bench.test_verifier SECONDS``: verify() in a loop, for py-spy to sample."""
    pool = itertools.cycle(TOKENS)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(1000):
            verify(next(pool), KEYS, POLICY, NOW)


if __name__ == "__main__":
    import sys

    _loop(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
