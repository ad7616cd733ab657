"""Security headers on every answer: CSP without unsafe-inline, frame-ancestors, HSTS, nosniff, Referrer-Policy."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from starlette.testclient import TestClient

from billportal.app import build_app
from tests import factories
from tests.conftest import World, run
from tests.security.conftest import (
    HS256,
    Documents,
    good_claims,
    own_url,
    protected,
    shared_app_clients,
    signed,
    signed_in,
)


def directives(response: Any) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    parsed = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        assert name not in parsed, f"{name} given twice"
        parsed[name] = value
    return parsed


def assert_secure_headers(response: Any, *, https: bool = True, ancestors: str = "'none'") -> None:
    headers = response.headers
    where = f"{response.request.method} {response.request.url.path[:60]} -> {response.status_code}"
    policy = headers.get("content-security-policy", "")
    assert policy, where
    assert "unsafe-inline" not in policy, where
    assert "unsafe-eval" not in policy, where
    parsed = directives(response)
    assert parsed["default-src"] == "'none'", where
    assert "script-src" not in parsed, where  # default-src 'none': no script at all
    assert parsed["frame-ancestors"] == ancestors, where
    assert parsed["object-src"] == "'none'", where
    assert parsed["base-uri"] == "'none'", where
    assert headers["x-content-type-options"] == "nosniff", where
    assert headers["referrer-policy"] in ("no-referrer", "same-origin", "strict-origin-when-cross-origin"), where
    if https:
        assert headers["strict-transport-security"].startswith("max-age="), where
        assert int(headers["strict-transport-security"].split("=")[1].split(";")[0]) >= 31536000, where
    else:
        assert "strict-transport-security" not in headers, where


def every_kind_of_answer(world: World, documents: Documents, client: TestClient) -> list[Any]:
    """One request of each kind a browser can make to a portal host, signed in and not."""
    stranger = world.client()
    answers = [client.get(own_url(path, documents)) for path in protected(world, "GET")]
    answers += [
        stranger.get("/"),  # 401: sign in
        stranger.get(f"/login/{signed(HS256, good_claims(world))}"),  # 303: signed in
        stranger.get("/login/nonsense"),  # 401: refused
        stranger.post("/login", content=b"token=" + b"a" * 9000),  # 401: too long
        stranger.get("/signed-out"),
        stranger.get("/theme.css"),
        stranger.get("/static/portal.css"),
        stranger.get("/static/missing.css"),  # 404 from the static files
        stranger.get("/no-such-page"),  # 404
        stranger.put("/"),  # 405
        stranger.get("/logout"),  # 405
        stranger.get("/" + "a" * 9000),  # 414
        stranger.post("/logout", content=b"--x", headers={"content-type": "multipart/form-data; boundary=x"}),
        stranger.post("/logout", data={"csrf_token": "x" * 5000}),  # 400: over the form's limits
        client.post("/logout", data={"csrf_token": "forged"}),  # 403
        world.client("no-such-company").get("/"),  # 404: no company
        stranger.get("/", headers={"host": "evil.example"}),  # 404: not our host
        stranger.get("/", headers={"host": "dashboard.localhost"}),  # the dashboard host
        stranger.get("/healthz"),
    ]
    limited = shared_app_clients(world)("198.51.100.1")
    for _ in range(21):
        last = limited.get("/login/nonsense")
    assert last.status_code == 429
    answers.append(last)
    return answers


def test_every_answer_carries_the_security_headers(world: World, documents: Documents) -> None:
    answers = every_kind_of_answer(world, documents, signed_in(world))
    statuses = {response.status_code for response in answers}
    assert {200, 303, 400, 401, 403, 404, 405, 414, 429} <= statuses  # the sample covers them
    for response in answers:
        assert_secure_headers(response)


def test_no_hsts_over_plain_http(world: World) -> None:
    client = TestClient(
        build_app(replace(world.settings, cookie_secure=False), world.store, world.clock),
        base_url="http://acme.localhost",
        follow_redirects=False,
    )
    for response in (client.get("/"), client.get("/login/x"), client.get("/signed-out")):
        assert_secure_headers(response, https=False)


ALLOWED = "https://app.acme.example https://*.acme-partner.example:8443"


def test_a_company_that_embeds_the_portal_gets_its_frame_ancestors_on_its_pages(
    world: World, documents: Documents
) -> None:
    run(factories.company_settings(world.store, world.acme, frame_ancestors=ALLOWED))
    client = signed_in(world)
    for path in protected(world, "GET"):
        response = client.get(own_url(path, documents))
        if response.headers["content-type"].startswith("text/html"):
            assert_secure_headers(response, ancestors=" ".join(sorted(ALLOWED.split())))
    # A refused sign-in shows its one page in an allowed frame too (docs/embedding.md).
    assert_secure_headers(world.client().get("/login/nonsense"), ancestors=" ".join(sorted(ALLOWED.split())))
    # Another company's pages, and pages that are not the portal's own, stay unframeable.
    globex = signed_in(world, company="globex")
    assert_secure_headers(globex.get("/"))
    assert_secure_headers(world.client("globex").get("/login/nonsense"))
    assert_secure_headers(world.client().get("/no-such-page"))


@pytest.mark.parametrize(
    ("setting", "ancestors"),
    [
        ("https://ok.example; script-src 'unsafe-inline'", "'none'"),  # "https://ok.example;" is no source
        ("https://ok.example 'unsafe-inline' 'unsafe-eval'", "https://ok.example"),
        ("https://ok.example *", "https://ok.example"),
        ("https://ok.example data: javascript:", "https://ok.example"),
        ("https://ok.example https://ok.example/;report-uri", "https://ok.example"),
    ],
)
def test_a_company_setting_cannot_inject_into_the_policy(world: World, setting: str, ancestors: str) -> None:
    run(
        factories.company_settings(
            world.store,
            world.acme,
            frame_ancestors=setting,
            sign_out_url="https://bye.example; script-src 'unsafe-inline'",
        )
    )
    response = signed_in(world).get("/")
    assert response.status_code == 200
    assert_secure_headers(response, ancestors=ancestors)
    assert "bye.example" not in response.headers["content-security-policy"]
