"""A spent link (expired, used, cut off) leads back to the company's app for a fresh one, not to a dead end."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests import factories
from tests.conftest import World, run

REMOTE = "https://app.acme.example/portal-login"
RECOVERED = "__Host-bp_recovered"


@pytest.fixture
def remote(world: World) -> World:
    run(factories.company_settings(world.store, world.acme, sign_in_url=REMOTE))
    return world


def _reasons(world: World) -> list[str]:
    return [event.reason for event in run(world.store.sign_in_events(world.acme.id))]


def _sent_back(location: str) -> dict[str, list[str]]:
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REMOTE
    return parse_qs(parts.query)


def test_an_expired_link_goes_back_to_the_remote_sign_in_for_the_page_it_named(remote: World) -> None:
    world = remote
    expired = world.token({"sub": 1234, "iss": "Ruby Backend", "exp": world.clock.now - 3600})
    browser = world.client()
    answer = browser.get(f"/login/{expired}", params={"redirect_to": "invoices"})
    assert answer.status_code == 303
    assert _sent_back(answer.headers["location"]) == {"redirect_to": ["invoices"]}
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{RECOVERED}="))
    assert cookie == f"{RECOVERED}=1; Path=/; Max-Age=300; HttpOnly; SameSite=Lax; Secure"
    assert _reasons(world)[0] == "expired"  # the reason stays in the sign-in log, never in the URL
    assert "expired" not in answer.headers["location"]

    # The fresh link the company's app makes signs in and lands on the page.
    fresh = browser.get(f"/login/{world.token()}", params={"redirect_to": "invoices"})
    assert fresh.headers["location"] == "/invoices"


def test_a_used_single_use_link_goes_back_too_and_a_document_path_is_kept(remote: World) -> None:
    world = remote
    token = world.token({"sub": 1234, "iss": "Ruby Backend", "exp": world.clock.now + 600, "jti": "once"})
    assert world.client().get(f"/login/{token}").status_code == 303  # a mail scanner, say, used it
    answer = world.client().get(f"/login/{token}", params={"redirect_to": "/invoices/3"})
    assert answer.status_code == 303
    assert _sent_back(answer.headers["location"]) == {"redirect_to": ["/invoices/3"]}
    assert _reasons(world)[0] == "jti_replayed"


def test_only_once_in_a_while_per_browser_so_that_failing_links_cannot_loop(remote: World) -> None:
    world = remote
    browser = world.client()
    expired = world.token({"sub": 1234, "iss": "Ruby Backend", "exp": world.clock.now - 3600})
    assert browser.get(f"/login/{expired}").status_code == 303
    again = browser.get(f"/login/{expired}")
    assert again.status_code == 401
    assert "This sign-in link is not valid" in again.text


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": 1234, "iss": "Ruby Backend"},  # no exp: a link a fresh one would not mend
        {"sub": 99999, "iss": "Ruby Backend", "exp": 10**10},  # an unknown customer
    ],
)
def test_a_link_a_fresh_one_would_not_mend_keeps_the_failure_page(remote: World, claims: dict[str, object]) -> None:
    answer = remote.client().get(f"/login/{remote.token(claims)}")
    assert answer.status_code == 401
    assert not any(c.startswith(RECOVERED) for c in answer.headers.get_list("set-cookie"))


def test_a_bad_signature_keeps_the_failure_page(remote: World) -> None:
    forged = remote.token(key="not the key of acme, but as long as one: 32 bytes+")
    assert remote.client().get(f"/login/{forged}").status_code == 401


def test_the_error_url_wins_and_without_a_remote_sign_in_the_page_is_as_before(world: World) -> None:
    expired = world.token({"sub": 1234, "iss": "Ruby Backend", "exp": world.clock.now - 3600})
    assert world.client().get(f"/login/{expired}").status_code == 401
    run(factories.company_settings(world.store, world.acme, sign_in_url=REMOTE, error_url="https://app.acme.example/e"))
    answer = world.client().get(f"/login/{expired}")
    assert answer.headers["location"] == "https://app.acme.example/e?error=expired"
