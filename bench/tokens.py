"""Sign-in tokens for the load tools: one fresh, valid, single-use token per request.

Each token is an HS256 JWT as a company's backend makes it (``sub`` as a digit
string, ``iss``, ``iat``, ``exp`` one hour on, a unique ``jti``), for a customer
drawn uniformly from the whole database, so no cache can hide the work. They are
signed with the standard library (the bytes PyJWT would produce; the first one is
checked with ``jwt.decode``) because a run needs hundreds of thousands of them.
Token files are written owner-only under var/bench/run/ and never printed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import secrets
import time
from pathlib import Path

import jwt

from bench.common import COMPANY, ISSUER, TOKEN_TTL, write_secret
from billportal.core.config import Settings, load_or_create_master_key
from billportal.storage import open_store

_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode("ascii")


def sso_key(data_dir: Path) -> str:
    """The bench company's active SSO key, unsealed with that folder's master key."""
    store = open_store(Settings(data_dir=data_dir, master_key=load_or_create_master_key(data_dir)), migrate=False)
    try:
        company = asyncio.run(store.company(COMPANY))
    finally:
        store.close()
    if company is None:
        raise RuntimeError(f"no company {COMPANY!r} in {data_dir}")
    return next(k.secret.decode("utf-8") for k in company.sso_keys if k.state == "active")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def make_token(key: str, customer: int, jti: str, now: int | None = None) -> str:
    """One token for ``customer``, as a company's backend signs it."""
    issued = int(time.time()) if now is None else now
    claims = {"sub": str(customer), "iss": ISSUER, "iat": issued, "exp": issued + TOKEN_TTL, "jti": jti}
    signing_input = f"{_HEADER}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
    signature = hmac.new(key.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def make_tokens(key: str, customers: int, count: int, *, seed: int = 0) -> list[tuple[int, str]]:
    """``count`` distinct tokens as (customer id, token), customers drawn from 1..customers."""
    pick = random.Random(seed or secrets.randbits(32))
    tag = secrets.token_hex(6)
    now = int(time.time())
    out: list[tuple[int, str]] = []
    for n in range(count):
        customer = pick.randint(1, customers)
        out.append((customer, make_token(key, customer, f"{tag}-{n:x}", now)))
    if out:
        decoded = jwt.decode(out[0][1], key, algorithms=["HS256"])
        assert decoded["sub"] == str(out[0][0])
    return out


def write_login_lines(path: Path, tokens: list[tuple[int, str]]) -> None:
    """One ``/login/{token}`` per line, for ``bench/requests.lua``."""
    write_secret(path, [f"/login/{token}\t" for _, token in tokens])
