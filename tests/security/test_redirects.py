"""Open redirects: ``redirect_to``, the sign-out URL, the error URL and the remote sign-in URL.

Every redirect billportal sends goes to one of its own fixed paths or to a URL
the company configured; nothing in a request can choose or extend it.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from billportal.sso.pages import PAGE_PATHS
from tests import factories
from tests.conftest import World, run
from tests.security.conftest import HS256, good_claims, signed
from tests.security.test_sessions import csrf_token

EVIL = "evil.example"
HOSTILE_TARGETS = [
    f"https://{EVIL}",
    f"//{EVIL}",
    f"///{EVIL}",
    f"\\\\{EVIL}",
    f"/\\{EVIL}",
    f"/%2F%2F{EVIL}",
    f"https:/\\{EVIL}",
    f"%68ttps://{EVIL}",
    f"https:{EVIL}",
    f"invoices@{EVIL}",
    f"invoices/../../{EVIL}",
    f"invoices#@{EVIL}",
    f"invoices?next=https://{EVIL}",
    " invoices",
    "INVOICES",
    "invoices\r\nLocation: https://evil.example",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/invoices",
    "",
]
REDIRECT_PARAMETERS = ["redirect_to", "next", "url", "return_to", "returnTo", "continue", "error_url", "sign_out_url"]


def assert_own_path(location: str) -> None:
    assert location in set(PAGE_PATHS.values())
    assert EVIL not in location


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_redirect_to_only_ever_lands_on_a_portal_page(world: World, target: str) -> None:
    token = signed(HS256, good_claims(world))
    by_get = world.client().get(f"/login/{token}", params={"redirect_to": target})
    by_post = world.client().post("/login", data={"token": token, "redirect_to": target})
    by_post_query = world.client().post("/login", params={"redirect_to": target}, data={"token": token})
    for response in (by_get, by_post, by_post_query):
        assert response.status_code == 303
        assert_own_path(response.headers["location"])
        assert all(EVIL not in value for value in response.headers.values())


def test_no_other_parameter_redirects_a_sign_in(world: World) -> None:
    params = {name: f"https://{EVIL}/" for name in REDIRECT_PARAMETERS if name != "redirect_to"}
    response = world.client().get(f"/login/{signed(HS256, good_claims(world))}", params=params)
    assert response.headers["location"] == "/"


@pytest.fixture
def configured(world: World) -> World:
    """Acme with the URLs a company may set: remote sign-in, sign-out and error pages."""
    run(
        factories.company_settings(
            world.store,
            world.acme,
            sign_in_url="https://app.acme.example/portal-login",
            sign_out_url="https://app.acme.example/bye?from=portal",
            error_url="https://app.acme.example/sso-error?from=portal",
        )
    )
    return world


def test_a_failed_sign_in_goes_to_the_error_url_with_only_a_reason_code(configured: World) -> None:
    attacker_params = dict.fromkeys(REDIRECT_PARAMETERS, f"https://{EVIL}/") | {"error": "<script>"}
    token = signed(HS256, good_claims(configured), "not the key")
    for response in (
        configured.client().get(f"/login/{token}", params=attacker_params),
        configured.client().post(
            "/login",
            params=attacker_params,
            # A form takes four fields at most: the token and three tries.
            data={"token": token, "error_url": f"https://{EVIL}/", "redirect_to": f"//{EVIL}", "error": "<b>"},
        ),
    ):
        assert response.status_code == 303
        location = urlsplit(response.headers["location"])
        assert (location.scheme, location.netloc, location.path) == ("https", "app.acme.example", "/sso-error")
        assert parse_qs(location.query) == {"from": ["portal"], "error": ["signature_invalid"]}
        assert "set-cookie" not in response.headers
        assert token.split(".")[2] not in response.headers["location"]


def test_sign_out_goes_only_to_the_configured_sign_out_url(configured: World) -> None:
    client = configured.client()
    client.get(f"/login/{signed(HS256, good_claims(configured))}")
    fields = dict.fromkeys(REDIRECT_PARAMETERS, f"https://{EVIL}/")
    response = client.post(
        "/logout", params=fields, data={"csrf_token": csrf_token(client.get("/").text), "redirect_to": f"//{EVIL}"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "https://app.acme.example/bye?from=portal"


def test_sign_out_without_a_configured_url_stays_on_the_portal(world: World) -> None:
    client = world.client()
    client.get(f"/login/{signed(HS256, good_claims(world))}")
    response = client.post(
        "/logout", params={"redirect_to": f"https://{EVIL}"}, data={"csrf_token": csrf_token(client.get("/").text)}
    )
    assert response.headers["location"] == "/signed-out"


def test_remote_sign_in_passes_a_page_id_never_a_url(configured: World) -> None:
    response = configured.client().get("/invoices", params={"redirect_to": f"https://{EVIL}", "next": f"//{EVIL}"})
    assert response.status_code == 303
    assert response.headers["location"] == "https://app.acme.example/portal-login?redirect_to=invoices"
