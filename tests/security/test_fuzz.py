"""Property-based fuzzing of the verifier and of ``/login`` (hypothesis).

Properties: a mutation of a valid token is refused unless it decodes to the very
same claims; no input makes :func:`verify` raise; no request to ``/login`` is
answered with a 5xx. ``make test`` runs a fixed sample of each property;
``make fuzz`` (``BILLPORTAL_FUZZ_PROFILE=fuzz``) runs thousands of fresh ones.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from billportal.sso.tokens import MAX_TIME, Claims, Policy, Rejection, VerificationKey, parse_customer_id, verify
from tests.conftest import ACME_KEY, World
from tests.security.conftest import login_path, shared_app_clients, signed

NOW = 1_800_000_000
KEYS = (VerificationKey(kid="sso_fuzz", secret=ACME_KEY.encode()),)
POLICY = Policy()
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Characters a mutation may bring in: the alphabet, its look-alikes, separators, and anything at all.
NEAR = st.sampled_from(list(B64URL + "=+/.% \t\n\r\x00\u00a0\u200b"))
ANY_CHAR = st.one_of(NEAR, st.characters())

# Text, half the time with a lone surrogate in it: JSON can spell one as an escape.
texts = st.one_of(
    st.text(max_size=20),
    st.tuples(st.text(max_size=8), st.characters(categories=["Cs"]), st.text(max_size=8)).map("".join),
)
sub_values = st.one_of(st.integers(1, 2**63 - 1), st.integers(1, 2**63 - 1).map(str))
claim_sets = st.fixed_dictionaries(
    {"sub": sub_values, "exp": st.integers(NOW + 1, NOW + 10**6)},
    optional={
        "iss": st.text(max_size=40),
        "jti": st.text(min_size=1, max_size=40),
        "iat": st.integers(NOW - 10**6, NOW),
        "nbf": st.integers(NOW - 10**6, NOW),
    },
)


def same_claims(a: Claims, b: Claims) -> bool:
    return (a.customer_id, a.exp, a.issuer, a.jti, a.iat) == (b.customer_id, b.exp, b.issuer, b.jti, b.iat)


@st.composite
def mutations(draw: st.DrawFn, token: str) -> str:
    """One or a few edits of ``token``: characters, segments, or bits of a decoded segment."""
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "segments", "bits", "recode"]))
        if kind == "replace" and token:
            i = draw(st.integers(0, len(token) - 1))
            token = token[:i] + draw(ANY_CHAR) + token[i + 1 :]
        elif kind == "insert":
            i = draw(st.integers(0, len(token)))
            token = token[:i] + draw(st.text(ANY_CHAR, min_size=1, max_size=4)) + token[i:]
        elif kind == "delete" and token:
            i = draw(st.integers(0, len(token) - 1))
            token = token[:i] + token[i + draw(st.integers(1, 8)) :]
        elif kind == "truncate":
            token = token[: draw(st.integers(0, len(token)))]
        elif kind == "segments":
            parts = token.split(".")
            token = ".".join(draw(st.lists(st.sampled_from(parts), min_size=1, max_size=5)))
        elif kind == "bits":
            token = _flip_bits(draw, token)
        else:
            token = _recode(draw, token)
    return token


def _flip_bits(draw: st.DrawFn, token: str) -> str:
    """Flip bits in the decoded bytes of one segment and encode it canonically again."""
    parts = token.split(".")
    index = draw(st.integers(0, len(parts) - 1))
    try:
        raw = bytearray(base64.urlsafe_b64decode(parts[index] + "=" * (-len(parts[index]) % 4)))
    except ValueError:
        return token
    if not raw:
        return token
    position = draw(st.integers(0, len(raw) - 1))
    raw[position] ^= draw(st.integers(1, 255))
    parts[index] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    return ".".join(parts)


def _recode(draw: st.DrawFn, token: str) -> str:
    """Another spelling of the same bytes: padding, the standard alphabet, spare bits set."""
    parts = token.split(".")
    index = draw(st.integers(0, len(parts) - 1))
    style = draw(st.sampled_from(["pad", "standard", "spare-bits"]))
    part = parts[index]
    if style == "pad":
        part += "=" * draw(st.integers(1, 3))
    elif style == "standard":
        part = part.replace("-", "+").replace("_", "/")
    elif part and len(part) % 4 in (2, 3) and part[-1] in B64URL:
        part = part[:-1] + B64URL[B64URL.index(part[-1]) | draw(st.integers(1, 15 if len(part) % 4 == 2 else 3))]
    parts[index] = part
    return ".".join(parts)


@st.composite
def mutated_tokens(draw: st.DrawFn) -> tuple[Claims, str, str]:
    claims = draw(claim_sets)
    header = draw(st.sampled_from([{"alg": "HS256"}, {"alg": "HS256", "typ": "JWT"}, {"typ": "JWT", "alg": "HS256"}]))
    token = jwt.encode(claims, ACME_KEY, algorithm="HS256", headers=header)
    original = verify(token, KEYS, POLICY, NOW)
    assert isinstance(original, Claims), original
    return original, token, draw(mutations(token))


@given(mutated_tokens())
def test_a_mutated_token_is_refused_unless_it_means_the_same(case: tuple[Claims, str, str]) -> None:
    original, _, mutated = case
    outcome = verify(mutated, KEYS, POLICY, NOW)
    if isinstance(outcome, Claims):
        assert same_claims(outcome, original)
    else:
        assert isinstance(outcome, Rejection)


@given(st.one_of(st.text(), st.text(NEAR), st.binary().map(lambda b: b.decode("latin-1"))))
def test_verify_never_raises_on_any_text(text: str) -> None:
    assert isinstance(verify(text, KEYS, POLICY, NOW), Claims | Rejection)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
headers = st.one_of(
    json_values,
    st.dictionaries(
        st.sampled_from(["alg", "typ", "kid", "crit", "jku", "jwk", "x5u", "x5c", "b64", "cty", "enc", "zip"]),
        st.one_of(st.sampled_from(["HS256", "none", "JWT", "sso_fuzz", "RS256"]), json_values),
    ),
)
payloads = st.one_of(
    json_values,
    st.dictionaries(
        st.sampled_from(["sub", "exp", "nbf", "iat", "iss", "jti", "aud"]),
        st.one_of(sub_values, st.integers(NOW - 100, NOW + 10**5), st.integers(), json_values),
    ),
)


@given(headers, payloads)
def test_any_signed_json_is_judged_by_the_rules(header: Any, payload: Any) -> None:
    token = signed(header, payload)
    outcome = verify(token, KEYS, POLICY, NOW)
    if isinstance(outcome, Claims):
        # Whatever hypothesis invents, an accepted token satisfies the documented rules.
        assert header["alg"] == "HS256"
        assert "crit" not in header
        assert not {"jku", "jwk", "x5u", "x5c"} & set(header)
        assert header.get("kid") in (None, "sso_fuzz")
        assert type(payload["exp"]) is int
        assert NOW - POLICY.leeway < payload["exp"] <= MAX_TIME
        assert parse_customer_id(payload["sub"]) == outcome.customer_id
    else:
        assert isinstance(outcome, Rejection)


# -- the same through HTTP ----------------------------------------------------------------------------


@pytest.fixture
def fuzz_client(world: World) -> Any:
    """One app for every example, with limits out of the way: rate limiting is tested elsewhere."""
    return shared_app_clients(
        world, login_failures_per_ip="1000000/minute", login_failures_per_company="1000000/minute"
    )


FAR_EXP = 4_000_000_000  # 2096: valid whenever the suite runs, and no lifetime limit is set


@st.composite
def acme_mutations(draw: st.DrawFn) -> tuple[str, str]:
    """A good link for one of acme's customers, and a mutation of it."""
    claims = {"sub": draw(st.sampled_from([1234, "1234", 1235])), "iss": draw(texts), "exp": FAR_EXP}
    token = signed({"alg": "HS256", "typ": "JWT"}, claims)
    return token, draw(mutations(token))


@given(case=acme_mutations())
def test_login_never_fails_with_5xx_and_signs_in_only_the_same_claims(
    world: World, fuzz_client: Any, case: tuple[str, str]
) -> None:
    token, mutated = case
    response = fuzz_client().get(login_path(mutated))
    assert response.status_code in (303, 401)
    if response.status_code == 303:
        expected = verify(token, world.acme.sso_keys, world.acme.policy, world.clock.now)
        outcome = verify(mutated, world.acme.sso_keys, world.acme.policy, world.clock.now)
        assert isinstance(expected, Claims)
        assert isinstance(outcome, Claims)
        assert same_claims(outcome, expected)


form_fields = st.dictionaries(
    st.sampled_from(["token", "redirect_to", "csrf_token", "x"]) | st.text(max_size=10),
    st.text(max_size=200),
    max_size=6,
)


@given(
    path=st.text(max_size=300),
    query=st.dictionaries(st.text(max_size=10), st.text(max_size=50), max_size=3),
    fetch_site=st.sampled_from(["none", "same-origin", "same-site", "cross-site", ""]),
    fetch_dest=st.sampled_from(["document", "iframe", "image", "script", "empty", ""]),
)
def test_any_get_to_login_is_answered_without_5xx(
    fuzz_client: Any, path: str, query: dict[str, str], fetch_site: str, fetch_dest: str
) -> None:
    headers = {name: value for name, value in [("sec-fetch-site", fetch_site), ("sec-fetch-dest", fetch_dest)] if value}
    response = fuzz_client().get(
        "/login/" + quote(path, safe="/", errors="surrogatepass"), params=query, headers=headers
    )
    assert response.status_code < 500


@given(
    fields=form_fields,
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "text/plain", "application/json"]
    ),
    raw=st.booleans(),
    body=st.binary(max_size=600),
)
def test_any_post_to_login_or_logout_is_answered_without_5xx(
    fuzz_client: Any, fields: dict[str, str], content_type: str, raw: bool, body: bytes
) -> None:
    client = fuzz_client()
    for path in ("/login", "/logout"):
        if raw:
            response = client.post(path, content=body, headers={"content-type": content_type})
        else:
            response = client.post(path, data=fields)
        assert response.status_code < 500
