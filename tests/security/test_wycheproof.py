"""Wycheproof's HS256 JSON Web Signature vectors, and RFC 7515 appendix A.1, against the verifier.

The vectors (tests/security/vectors, from C2SP/wycheproof) check a JWS library:
every ``invalid`` one must be refused by :func:`verify_signature_only` (the
signature over the raw segments) and by :func:`verify` (the whole sign-in
policy). A ``valid`` one must verify, unless it is listed below with the reason
our stricter rules refuse it on purpose. No vector's payload is a set of claims,
so as a sign-in every one of them is refused.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from billportal.sso.tokens import Claims, Policy, Rejection, VerificationKey, verify, verify_signature_only
from tests.conftest import World
from tests.security.conftest import assert_refused

VECTORS = Path(__file__).with_name("vectors") / "json_web_signature_test.json"
HS256_TC_IDS = frozenset([*range(1, 18), 348, 352, *range(357, 378)])
NOW = 1_800_000_000

# Valid vectors our rules refuse on purpose (tcId: why).
STRICTER = {
    372: "a '?' inside the header segment is not base64url; we MAC the segment as sent, never a cleaned copy",
    373: "a '?' inside the payload segment is not base64url; we MAC the segment as sent, never a cleaned copy",
}
# Vectors that do not test what their comment says (tcId: what is wrong, and where that case is tested).
DEFECTIVE = {
    367: "byte-identical to valid tcId 357: the '=' padding it names is missing upstream "
    "(see test_padded_spellings_of_a_valid_vector_are_refused)",
    370: "byte-identical to valid tcId 357: the '=' padding it names is missing upstream "
    "(see test_padded_spellings_of_a_valid_vector_are_refused)",
}


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hs256_cases() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    data = json.loads(VECTORS.read_text(encoding="utf-8"))
    cases = [
        (group["private"], test)
        for group in data["testGroups"]
        if group["private"].get("kty") == "oct"
        for test in group["tests"]
    ]
    assert {test["tcId"] for _, test in cases} == HS256_TC_IDS
    return cases


CASES = hs256_cases()


def jws_text(test: dict[str, Any]) -> str:
    jws = test["jws"]
    return jws if isinstance(jws, str) else json.dumps(jws)


@pytest.mark.parametrize(("key", "test"), CASES, ids=[f"tcId {t['tcId']} {t['comment']}" for _, t in CASES])
def test_wycheproof_hs256_vector(key: dict[str, Any], test: dict[str, Any]) -> None:
    secret = _b64decode(key["k"])
    jws = jws_text(test)
    tc_id = test["tcId"]
    signature_ok = verify_signature_only(jws, secret)
    outcome = verify(jws, (VerificationKey(kid=key["kid"], secret=secret),), Policy(), NOW)

    if tc_id in DEFECTIVE:
        assert jws == next(jws_text(t) for _, t in CASES if t["tcId"] == 357)
        assert signature_ok
    elif test["result"] == "invalid":
        assert not signature_ok
    elif tc_id in STRICTER:
        assert not signature_ok
        assert isinstance(outcome, Rejection)
        assert outcome.reason == "token_malformed"
    else:
        assert test["result"] == "valid"
        assert signature_ok
    # No vector carries claims, so none signs anyone in; the valid ones stop at the payload.
    assert isinstance(outcome, Rejection)
    if test["result"] == "valid" and tc_id not in STRICTER:
        assert outcome.reason == "payload_invalid"


def test_padded_spellings_of_a_valid_vector_are_refused() -> None:
    # What tcId 367 and 370 meant to test: '=' padding on the header or the payload.
    key, test = next((k, t) for k, t in CASES if t["tcId"] == 357)
    secret = _b64decode(key["k"])
    head, body, sig = test["jws"].split(".")
    assert verify_signature_only(test["jws"], secret)
    for spelling in (f"{head}=.{body}.{sig}", f"{head}.{body}==.{sig}", f"{head}.{body}.{sig}="):
        assert not verify_signature_only(spelling, secret)


# -- RFC 7515, appendix A.1 -------------------------------------------------------------------------

RFC7515_A1 = (
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)
RFC7515_A1_KEY = _b64decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
RFC7515_A1_EXP = 1300819380


def test_rfc7515_a1_signature_verifies_over_the_raw_segments() -> None:
    head, body, _ = RFC7515_A1.split(".")
    assert _b64decode(head) == b'{"typ":"JWT",\r\n "alg":"HS256"}'
    assert b"\r\n" in _b64decode(body)
    assert verify_signature_only(RFC7515_A1, RFC7515_A1_KEY)
    # Re-encoding the header without its CRLF would change what is signed.
    compact = base64.urlsafe_b64encode(b'{"typ":"JWT","alg":"HS256"}').rstrip(b"=").decode()
    assert not verify_signature_only(RFC7515_A1.replace(head, compact), RFC7515_A1_KEY)
    assert not verify_signature_only(RFC7515_A1, RFC7515_A1_KEY[:-1])


@pytest.mark.parametrize(
    ("now", "reason"), [(NOW, "expired"), (RFC7515_A1_EXP - 100, "sub_missing")], ids=["today", "before its exp"]
)
def test_rfc7515_a1_never_signs_anyone_in(now: int, reason: str) -> None:
    outcome = verify(RFC7515_A1, (VerificationKey(kid="rfc", secret=RFC7515_A1_KEY),), Policy(), now)
    assert not isinstance(outcome, Claims)
    assert outcome.reason == reason


def test_rfc7515_a1_at_a_company_portal_is_refused(world: World, failure_page: str) -> None:
    assert_refused(world, world.client().get(f"/login/{RFC7515_A1}"), failure_page, "signature_invalid")
