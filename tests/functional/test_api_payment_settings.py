"""Settings > Payments through the API: GET and PATCH /api/v1/payment_settings, over HTTP on a real database.

The secrets are write-only: no answer, error or audit entry ever carries them. The checks
are Payments.configure's, the same as the dashboard's and the CLI's.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import pytest
from starlette.testclient import TestClient

from billportal.core.crypto import Sealed
from billportal.services import api_keys
from billportal.services.gateways import GATEWAY_SEAL_PURPOSE
from billportal.services.payments import Payments
from billportal.storage.records import AuditEvent
from tests import factories
from tests.conftest import World, run
from tests.functional.dashboard_support import PASSWORD, admin_of_acme
from tests.functional.portal_world import signed_in, text_of
from tests.functional.test_api import dashboard, error
from tests.functional.test_dashboard_cli import cli

__all__ = ["cli"]  # a fixture, imported so that it is found here

PATH: Final = "/api/v1/payment_settings"
SECRET_KEY: Final = "sk_test_51HnotARealKeyButLongEnough9xYz"
WEBHOOK_SECRET: Final = "whsec_notARealSigningSecretQw7e"


def key_for(world: World, scopes: tuple[str, ...], company: str = "acme") -> str:
    return run(factories.api_key(world.store, world.company(company), now=world.clock.now, scopes=scopes)).key


@pytest.fixture
def api(world: World) -> TestClient:
    return dashboard(world, key_for(world, ("payment_settings",)), bearer=True)


def audit_trail(world: World) -> list[AuditEvent]:
    return run(world.store.admins.audit_events(world.acme.id))


def settings_changes(world: World) -> list[AuditEvent]:
    return [e for e in audit_trail(world) if e.action in ("payments.configured", "company.updated")]


def stored_secret(world: World, field: str) -> str:
    settings = run(Payments(world.store).settings(world.acme.id))
    sealed = getattr(settings, f"{field}_sealed")
    return world.store.master_keys.unseal(Sealed.from_text(sealed), GATEWAY_SEAL_PURPOSE, world.acme.id).decode()


def test_a_company_that_never_set_them_gets_the_defaults(world: World, api: TestClient) -> None:
    instructions = world.acme.payment_instructions
    answer = api.get(PATH)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json() == {
        "object": "payment_settings",
        "gateway": "none",
        "test_mode": False,
        "allow_partial": False,
        "allow_saved_methods": True,
        "allow_autopay": False,
        "autopay_retry_days": "1,3,7",
        "publishable_key": "",
        "api_base": "",
        "secret_key_set": False,
        "secret_key_hint": None,
        "webhook_secret_set": False,
        "webhook_secret_hint": None,
        "payment_instructions": instructions,
        "updated_at": 0,
    }


def test_connect_stripe_and_the_secrets_are_never_shown_again(
    world: World, api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    changes = {
        "gateway": "stripe",
        "publishable_key": "pk_test_123",
        "secret_key": SECRET_KEY,
        "webhook_secret": f"  {WEBHOOK_SECRET}\n",  # as pasted: trimmed, as the dashboard trims it
        "allow_partial": True,
        "allow_autopay": True,
        "autopay_retry_days": " 2, 5",
        "api_base": "http://127.0.0.1:8420",
        "payment_instructions": "Wire to IBAN DE89 3704 0044 0532 0130 00.\nReference: your customer number.",
    }
    answer = api.patch(PATH, json=changes)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["gateway"] == "stripe"
    assert (body["allow_partial"], body["allow_autopay"], body["allow_saved_methods"]) == (True, True, True)
    assert body["autopay_retry_days"] == "2,5"
    assert body["api_base"] == "http://127.0.0.1:8420"
    assert body["payment_instructions"] == changes["payment_instructions"]
    assert (body["secret_key_set"], body["secret_key_hint"]) == (True, "…9xYz")
    assert (body["webhook_secret_set"], body["webhook_secret_hint"]) == (True, "…Qw7e")
    assert body["updated_at"] == world.clock.now
    assert "secret_key" not in body
    assert "webhook_secret" not in body
    # Sealed at rest, opened only by the master keys.
    assert stored_secret(world, "secret_key") == SECRET_KEY
    assert stored_secret(world, "webhook_secret") == WEBHOOK_SECRET

    again = api.get(PATH)
    assert again.json() == body
    # Seen nowhere: answers, the audit trail, the logs.
    trail = audit_trail(world)
    for text in (answer.text, again.text, repr(trail), caplog.text):
        assert SECRET_KEY not in text
        assert WEBHOOK_SECRET not in text
        assert SECRET_KEY[:-4] not in text
    # The same audit entry the dashboard writes: what changed, by which key; the instructions are the profile's.
    actions = {e.action: e for e in trail}
    configured = actions["payments.configured"]
    assert configured.actor.startswith("api:bp_live_")
    assert configured.detail == (
        "allow_autopay, allow_partial, api_base, autopay_retry_days, gateway, publishable_key, "
        "secret_key, webhook_secret"
    )
    # The company's own audit entry names the field with its old and new values (services/companies.py).
    assert actions["company.updated"].detail.startswith("payment_instructions: '' → 'Wire to IBAN")
    assert world.company("acme").payment_instructions == changes["payment_instructions"]


def test_only_what_is_sent_changes(world: World, api: TestClient) -> None:
    assert api.patch(PATH, json={"secret_key": SECRET_KEY, "gateway": "stripe"}).status_code == 200
    before = audit_trail(world)
    unchanged = api.patch(PATH, json={})
    assert unchanged.status_code == 200
    assert unchanged.json()["secret_key_set"] is True
    assert audit_trail(world) == before  # nothing sent, nothing written
    answer = api.patch(PATH, json={"allow_saved_methods": False})
    assert (answer.json()["allow_saved_methods"], answer.json()["gateway"]) == (False, "stripe")
    assert stored_secret(world, "secret_key") == SECRET_KEY
    # A short secret is stored, but shows no hint: its last 4 would be too much of it.
    short = api.patch(PATH, json={"webhook_secret": "whsec_B"}).json()
    assert (short["webhook_secret_set"], short["webhook_secret_hint"]) == (True, None)


def test_the_test_gateway_needs_test_mode(world: World, api: TestClient) -> None:
    refused = api.patch(PATH, json={"gateway": "test"})
    error(refused, 422, "test_mode_required", "gateway")
    assert api.get(PATH).json()["gateway"] == "none"
    assert settings_changes(world) == []
    answer = api.patch(PATH, json={"gateway": "test", "test_mode": True})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["gateway"], answer.json()["test_mode"]) == ("test", True)
    error(api.patch(PATH, json={"test_mode": False}), 422, "test_mode_required", "gateway")


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"gateway": "paypal"}, "invalid_field", "gateway"),
        ({"test_mode": "yes"}, "invalid_field", "test_mode"),
        ({"allow_autopay": 1}, "invalid_field", "allow_autopay"),
        ({"autopay_retry_days": "7,3"}, "invalid_setting", "autopay_retry_days"),
        ({"autopay_retry_days": "1,2,3,4,5,6"}, "invalid_setting", "autopay_retry_days"),
        ({"api_base": "ftp://example.com"}, "invalid_setting", "api_base"),
        ({"api_base": "http://127.0.0.1:8420/?x=1"}, "invalid_setting", "api_base"),
        ({"publishable_key": "pk\nline"}, "invalid_field", "publishable_key"),
        ({"secret_key": ""}, "invalid_field", "secret_key"),
        ({"secret_key": "   "}, "invalid_setting", "secret_key"),
        ({"secret_key": "sk_test_with a space inside_0123"}, "invalid_setting", "secret_key"),
        ({"webhook_secret": "whsec_" + "x" * 600}, "invalid_field", "webhook_secret"),
        ({"webhook_secret": 42}, "invalid_field", "webhook_secret"),
        ({"secret_key_sealed": "x"}, "unknown_field", "secret_key_sealed"),
        ({"secret_key_set": True}, "unknown_field", "secret_key_set"),
        ({"payment_instructions": "a\u0000b"}, "invalid_field", "payment_instructions"),
        ({"payment_instructions": "x" * 5001}, "invalid_field", "payment_instructions"),
    ],
)
def test_bad_input_gets_a_stable_code_and_changes_nothing(
    world: World, api: TestClient, changes: dict[str, Any], code: str, field: str
) -> None:
    answer = api.patch(PATH, json={"allow_partial": True, **changes})
    body = error(answer, 422 if code == "invalid_setting" else 400, code, field)
    for value in changes.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in body["message"]  # a value sent is never quoted back
    assert api.get(PATH).json()["allow_partial"] is False
    assert settings_changes(world) == []


def test_bodies_that_are_not_json_objects_are_refused(api: TestClient) -> None:
    error(api.patch(PATH, content=b"[]"), 400, "invalid_body")
    error(api.patch(PATH, content=b"{"), 400, "invalid_json")
    error(
        api.patch(PATH, content=b"gateway=stripe", headers={"content-type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    error(api.post(PATH, json={}), 405, "method_not_allowed")
    error(api.patch(PATH, json={}, headers={"origin": "https://evil.example"}), 403, "cross_site_request")


def test_keys_without_the_scope_are_refused(world: World) -> None:
    everything_else = tuple(scope for scope in api_keys.SCOPES if scope != "payment_settings")
    assert "payment_settings" not in api_keys.DEFAULT_SCOPES  # a key gets it only when made for it
    for scopes in (everything_else, api_keys.DEFAULT_SCOPES):
        other = dashboard(world, key_for(world, scopes))
        for method in ("GET", "PATCH"):
            answer = other.request(method, PATH, json={"gateway": "stripe", "secret_key": SECRET_KEY})
            refused = error(answer, 403, "insufficient_scope")
            assert "payment_settings" in refused["message"]
    assert run(Payments(world.store).settings(world.acme.id)).gateway == "none"
    error(dashboard(world).get(PATH), 401, "unauthorized")
    error(dashboard(world, "bp_live_unknown").patch(PATH, json={"gateway": "stripe"}), 401, "unauthorized")


def test_each_company_sees_and_changes_only_its_own(world: World) -> None:
    acme = dashboard(world, key_for(world, ("payment_settings",)))
    globex = dashboard(world, key_for(world, ("payment_settings",), "globex"))
    assert acme.patch(PATH, json={"gateway": "stripe", "secret_key": SECRET_KEY}).status_code == 200
    theirs = globex.get(PATH).json()
    assert (theirs["gateway"], theirs["secret_key_set"]) == ("none", False)
    assert run(Payments(world.store).settings(world.globex.id)).gateway == "none"


def test_the_portal_takes_payments_as_the_api_set_them(world: World, api: TestClient) -> None:
    assert api.patch(PATH, json={"gateway": "test", "test_mode": True, "allow_partial": True}).status_code == 200
    page = text_of(signed_in(world).get("/pay").text)
    assert "Test mode" in page


def test_the_openapi_document_describes_both_operations(world: World) -> None:
    spec = dashboard(world).get("/api/v1/openapi.json").json()
    operations = spec["paths"]["/payment_settings"]
    assert operations["get"]["security"] == [{"basicAuth": ["payment_settings"]}, {"bearerAuth": ["payment_settings"]}]
    assert operations["patch"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PaymentSettingsUpdate"
    }
    assert "test_mode_required" in operations["patch"]["responses"]["422"]["description"]
    answer = spec["components"]["schemas"]["PaymentSettings"]["properties"]
    assert "secret_key" not in answer
    assert {"secret_key_set", "secret_key_hint", "webhook_secret_set", "webhook_secret_hint"} <= set(answer)
    assert "/payment_settings" in dashboard(world).get("/api/v1/docs").text


def test_the_dashboard_and_the_cli_refuse_the_secret_the_api_refuses(world: World, api: TestClient, cli: Any) -> None:
    bad = "sk_test_with a space inside_0123"
    error(api.patch(PATH, json={"secret_key": bad}), 422, "invalid_setting", "secret_key")
    dashboard = admin_of_acme(world)
    page = dashboard.post("/settings/payments/secrets", {"secret_key": bad, "password": PASSWORD})
    assert page.status_code == 400
    assert "without spaces" in text_of(page.text)
    assert bad not in page.text
    status, out, err = cli("payments", "configure", "--tenant", "acme", "--secrets-stdin", stdin=f"{bad}\n\n")
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert "without spaces" in err
    assert bad not in err
    assert run(Payments(world.store).settings(world.acme.id)).secret_key_sealed == ""
