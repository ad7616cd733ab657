"""Tokens from the JWT libraries companies already use sign customers in, over HTTP.

PyJWT, Node's ``jsonwebtoken`` (npm, in tests/interop/node_modules) and Ruby's
``jwt`` gem (Debian's ruby-jwt: the seed product's own example) each sign a
token in a real interpreter; the portal then gets it at ``/login/{token}``.
The snippets of docs/integration.md for these languages are run as written.
``make interop-deps`` installs the runtimes and libraries.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.conftest import ACME_KEY, World, run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GUIDE = ROOT / "docs" / "integration.md"
NODE_MODULES = HERE / "node_modules"
COOKIE = "__Host-bp_session"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make interop-deps`")
    return found


def node_env() -> dict[str, str]:
    if not (NODE_MODULES / "jsonwebtoken").is_dir():
        pytest.fail("tests/interop/node_modules/jsonwebtoken is missing: run `make interop-deps`")
    return {**os.environ, "NODE_PATH": str(NODE_MODULES)}


def sign_with(command: list[str], key: str, claims: dict[str, Any], kid: str | None, env: dict[str, str]) -> str:
    result = subprocess.run(
        command,
        input=json.dumps({"key": key, "claims": claims, "kid": kid}),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def pyjwt(key: str, claims: dict[str, Any], kid: str | None) -> str:
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid} if kid else None)


def node(key: str, claims: dict[str, Any], kid: str | None) -> str:
    return sign_with([tool("node"), str(HERE / "sign.js")], key, claims, kid, node_env())


def ruby(key: str, claims: dict[str, Any], kid: str | None) -> str:
    return sign_with([tool("ruby"), str(HERE / "sign.rb")], key, claims, kid, dict(os.environ))


SIGNERS: dict[str, Callable[[str, dict[str, Any], str | None], str]] = {
    "python-pyjwt": pyjwt,
    "node-jsonwebtoken": node,
    "ruby-jwt": ruby,
}


def signs_in(world: World, token: str, query: str = "") -> str:
    """Follow the link as a browser would; answer where it landed."""
    portal = world.client("acme")
    landed = portal.get(f"/login/{token}{query}")
    assert landed.status_code == 303, landed.text
    assert COOKIE in landed.cookies
    page = portal.get(landed.headers["location"])
    assert page.status_code == 200
    assert "Wile E. Coyote" in page.text
    return str(landed.headers["location"])


@pytest.mark.parametrize("signer", list(SIGNERS))
def test_a_token_from_each_library_signs_in(world: World, signer: str) -> None:
    claims = {"sub": 1234, "iss": f"{signer} backend", "exp": world.clock.now + 300}
    token = SIGNERS[signer](ACME_KEY, claims, None)
    assert signs_in(world, token) == "/"
    events = run(world.store.sign_in_events(world.acme.id))
    assert (events[0].result, events[0].reason, events[0].issuer) == ("success", "ok", f"{signer} backend")


@pytest.mark.parametrize("signer", list(SIGNERS))
def test_string_sub_kid_header_and_redirect(world: World, signer: str) -> None:
    kid = world.acme.sso_keys[0].kid
    claims = {"sub": "1234", "iss": "backend", "exp": world.clock.now + 300, "jti": f"{signer}-once"}
    token = SIGNERS[signer](ACME_KEY, claims, kid)
    assert signs_in(world, token, "?redirect_to=invoices") == "/invoices"
    # The jti makes it single-use, whichever library wrote it.
    assert world.client("acme").get(f"/login/{token}").status_code == 401


@pytest.mark.parametrize("signer", list(SIGNERS))
def test_a_token_signed_with_another_key_is_refused(world: World, signer: str) -> None:
    token = SIGNERS[signer]("not-the-key-" + "x" * 32, {"sub": 1234, "exp": world.clock.now + 300}, None)
    assert world.client("acme").get(f"/login/{token}").status_code == 401
    assert run(world.store.sign_in_events(world.acme.id))[0].reason == "signature_invalid"


# -- the guide's snippets, run as written -----------------------------------------------------------------


def snippet(language: str) -> str:
    """The code block after ``<!-- snippet: {language} -->`` in docs/integration.md."""
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(rf"<!-- snippet: {language} -->\s*```[a-z]*\n(.*?)```", text, re.DOTALL)
    assert match is not None, f"docs/integration.md has no {language} snippet"
    return match.group(1)


SNIPPET_RUNNERS: dict[str, Callable[[str], tuple[list[str], dict[str, str]]]] = {
    "python": lambda code: ([sys.executable, "-c", code], dict(os.environ)),
    "node": lambda code: ([tool("node"), "-e", code], node_env()),
    "ruby": lambda code: ([tool("ruby"), "-e", code], dict(os.environ)),
}


@pytest.mark.parametrize("language", list(SNIPPET_RUNNERS))
def test_the_guide_snippet_makes_a_working_link(world: World, language: str) -> None:
    command, env = SNIPPET_RUNNERS[language](snippet(language))
    env.update(
        {
            "BILLPORTAL_SSO_KEY": ACME_KEY,
            "BILLPORTAL_COMPANY": "acme",
            "BILLPORTAL_BASE_URL": "https://localhost",
            "CUSTOMER_ID": "1234",
        }
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip().splitlines()[-1]
    assert url.startswith("https://acme.localhost/login/")
    token = url.removeprefix("https://acme.localhost/login/")
    assert signs_in(world, token) == "/"
