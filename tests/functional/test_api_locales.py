"""Languages through the API, the SDK and the dashboard: sign-in links that ask for one, the company's default."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

import billportal
from tests.conftest import ACME_KEY, World
from tests.functional import test_cli_inputs
from tests.functional.dashboard_support import admin_of_acme
from tests.functional.portal_world import add_documents, signed_in
from tests.functional.test_api import dashboard, error, new_key

cli = test_cli_inputs.cli  # the fixture that runs billportal in this process (status, stdout, stderr)


@pytest.fixture
def api(world: World) -> TestClient:
    return dashboard(world, new_key(world))


def test_a_sign_in_link_from_the_api_can_ask_for_a_language(api: TestClient, world: World) -> None:
    made = api.post("/api/v1/customers/1234/sign_in_links", json={"locale": "de"})
    assert made.status_code == 201
    assert made.json()["locale"] == "de"
    portal = world.client("acme")
    signed = portal.get(made.json()["url"].removeprefix("https://acme.localhost"))
    assert signed.status_code == 303
    portal.get(signed.headers["location"])  # the landing page, as a browser follows it
    assert "Mein Konto" in portal.get("/", headers={"Accept-Language": "fr"}).text
    assert api.post("/api/v1/customers/1234/sign_in_links", json={}).json()["locale"] is None
    error(api.post("/api/v1/customers/1234/sign_in_links", json={"locale": "klingon"}), 400, "invalid_field", "locale")


def test_the_company_default_language_through_the_api(api: TestClient) -> None:
    assert api.get("/api/v1/company").json()["default_locale"] == "en"
    changed = api.patch("/api/v1/company", json={"default_locale": "pt_BR"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["default_locale"] == "pt_BR"
    error(api.patch("/api/v1/company", json={"default_locale": "xx"}), 400, "invalid_field", "default_locale")


def test_the_sdk_puts_the_locale_in_the_token(world: World) -> None:
    url = billportal.sign_in_url(ACME_KEY, "acme", 1234, locale="fr", base_url="https://localhost")
    token = url.rsplit("/", 1)[1]
    claims = jwt.decode(token, ACME_KEY, algorithms=["HS256"], options={"verify_sub": False})
    assert claims["locale"] == "fr"
    assert "locale" not in jwt.decode(
        billportal.make_token(ACME_KEY, 1234), ACME_KEY, algorithms=["HS256"], options={"verify_sub": False}
    )
    with pytest.raises(ValueError, match="locale"):
        billportal.sign_in_url(ACME_KEY, "acme", 1234, locale="not a locale")


def test_the_admin_sets_the_default_language_on_the_company_page(world: World) -> None:
    add_documents(world)
    admin = admin_of_acme(world)
    page = admin.get("/settings/company")
    assert 'name="default_locale"' in page.text
    refused = admin.post("/settings/company", {"default_locale": "klingon"})
    assert refused.status_code == 400
    assert "one of the portal&#39;s languages" in refused.text or "one of the portal's languages" in refused.text
    assert admin.post("/settings/company", {"default_locale": "fr"}).status_code == 303
    assert world.company("acme").default_locale == "fr"
    world.clock.now += 2  # past the one-second company cache
    assert "Mon compte" in signed_in(world).get("/", headers={"Accept-Language": "ja"}).text


def test_the_cli_link_asks_for_a_language(cli: Any) -> None:
    status, out, _ = cli("sso-url", "--tenant", "acme", "--customer", "1234", "--locale", "pt-BR")
    assert status == 0
    claims = jwt.decode(out.strip().rsplit("/", 1)[1], ACME_KEY, algorithms=["HS256"], options={"verify_sub": False})
    assert claims["locale"] == "pt_BR"
    status, out, err = cli("sso-url", "--tenant", "acme", "--customer", "1234", "--locale", "klingon")
    assert status != 0
    assert out == ""
    assert "--locale" in err
    assert "pt_BR" in err
