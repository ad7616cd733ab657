"""Links the server prints are built from the configured base domain, never from the Host header (issue 12.7).

The review's request: ``Host: dashboard.localhost:@evil.example`` made Try it print
``https://acme.localhost:@evil.example/login/<valid token>``, a link whose host is
evil.example, carrying a token that signs the customer in.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import ACME_KEY, World, run
from tests.factories import api_key
from tests.functional.dashboard_support import PASSWORD, SSO, admin_of_acme

HOSTILE_HOSTS = [
    "dashboard.localhost:@evil.example",
    "dashboard.localhost:443@evil.example",
    "dashboard.localhost:x",
    "dashboard.localhost:99999",
]


def _try_link(world: World, host: str) -> tuple[int, str]:
    dashboard = admin_of_acme(world)
    made = dashboard.post(f"{SSO}/try/link", {"customer": "1234", "password": PASSWORD}, headers={"host": host})
    match = re.search(r'id="test-link"[^>]*value="([^"]+)"', made.text)
    return made.status_code, match.group(1) if match else ""


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_try_it_never_lends_a_link_the_host_header(world: World, host: str) -> None:
    status, link = _try_link(world, host)
    assert "evil.example" not in link
    assert link == "" or link.startswith("https://acme.localhost/login/"), link
    assert status in (200, 404)


def test_try_it_takes_even_the_port_from_the_public_url(world: World) -> None:
    status, link = _try_link(world, "dashboard.localhost:8443")
    assert status == 200
    assert link.startswith("https://acme.localhost/login/")  # BILLPORTAL_PUBLIC_URL is https://localhost


def test_the_sso_page_shows_the_portal_address_from_the_settings(world: World) -> None:
    dashboard = admin_of_acme(world)
    page = dashboard.get(SSO, headers={"host": "dashboard.localhost:@evil.example"})
    assert "evil.example" not in page.text


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_the_apis_sign_in_links_never_take_the_host_header(world: World, host: str) -> None:
    key = run(api_key(world.store, world.acme, now=world.clock.now)).key
    client = world.client("dashboard")
    answer = client.post(
        "/api/v1/customers/1234/sign_in_links",
        json={},
        headers={"authorization": f"Bearer {key}", "host": host},
    )
    assert "evil.example" not in answer.text
    if answer.status_code == 201:
        assert answer.json()["url"].startswith("https://acme.localhost/login/")
    assert ACME_KEY not in answer.text
