"""``/api/v1/webhook_endpoints``: endpoints, their secrets (answered once), the delivery log and redelivery."""

from __future__ import annotations

import dataclasses

import pytest
from starlette.testclient import TestClient

from billportal.api.openapi import openapi_document
from billportal.app import build_app
from billportal.services.events import EVENT_TYPES
from billportal.services.webhooks import Deliverer
from tests import factories
from tests.conftest import World, run
from tests.webhook_receiver import receiving


def _api(world: World, scopes: tuple[str, ...] = ("webhooks",), *, test_mode: bool = True) -> TestClient:
    key = run(factories.api_key(world.store, world.acme, now=world.clock.now, scopes=scopes)).key
    settings = dataclasses.replace(world.settings, webhooks_test_mode=test_mode)
    api = TestClient(build_app(settings, world.store, world.clock), base_url="https://dashboard.localhost")
    api.headers["Authorization"] = f"Bearer {key}"
    return api


def test_add_list_rotate_log_redeliver_and_remove(world: World) -> None:
    api = _api(world)
    with receiving() as receiver:
        created = api.post("/api/v1/webhook_endpoints", json={"url": receiver.url, "event_types": ["customer.created"]})
        assert created.status_code == 201, created.text
        endpoint = created.json()
        assert endpoint["secret"].startswith("whsec_")
        receiver.secrets.append(endpoint["secret"])
        one = f"/api/v1/webhook_endpoints/{endpoint['id']}"
        listed = api.get("/api/v1/webhook_endpoints").json()["data"]
        assert [e["id"] for e in listed] == [endpoint["id"]]
        assert "secret" not in listed[0]
        assert endpoint["secret"] not in api.get(one).text

        rotated = api.post(f"{one}/rotate_secret", json={"overlap": 600})
        assert rotated.status_code == 201
        assert rotated.json()["previous_secret_until"] == world.clock.now + 600
        receiver.secrets.append(rotated.json()["secret"])

        run(factories.customer(world.store, world.acme.id, id=80, now=world.clock.now))
        run(Deliverer(world.store, test_mode=True).run_until_idle(world.clock.now))
        assert receiver.received[0].verified_by == [0, 1]

        (delivery,) = api.get(f"{one}/deliveries").json()["data"]
        assert delivery["type"] == "customer.created"
        assert delivery["state"] == "delivered"
        assert delivery["attempts"][0]["status_code"] == 200
        assert delivery["attempts"][0]["response_head"].startswith('{"received"')

        again = api.post(f"{one}/redeliver", json={"event_id": delivery["event_id"]})
        assert again.json() == {"object": "webhook_redelivery", "count": 1}
        assert api.post(f"{one}/redeliver", json={}).json()["error"]["code"] == "invalid_redelivery"
        run(Deliverer(world.store, test_mode=True).run_until_idle(world.clock.now))
        assert receiver.counts()[delivery["event_id"]] == 2

        off = api.patch(one, json={"enabled": False, "event_types": ["customer.created", "invoice.paid"]})
        assert off.json()["enabled"] is False
        assert off.json()["event_types"] == ["customer.created", "invoice.paid"]
        assert api.delete(one).json() == {"object": "webhook_endpoint", "id": endpoint["id"], "deleted": True}
        assert api.get(one).status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "http://hooks.example/in", "event_types": ["invoice.paid"]}, "invalid_url"),
        ({"url": "https://10.0.0.8/in", "event_types": ["invoice.paid"]}, "private_address"),
        ({"url": "https://127.0.0.1/in", "event_types": ["invoice.paid"]}, "private_address"),
        ({"url": "https://hooks.example/in", "event_types": ["invoice.exploded"]}, "invalid_field"),
        ({"url": "https://hooks.example/in", "event_types": []}, "invalid_field"),
        ({"url": "https://hooks.example/in"}, "missing_field"),
    ],
)
def test_bad_endpoints_are_refused_with_a_stable_code(world: World, body: dict[str, object], code: str) -> None:
    answer = _api(world, test_mode=False).post("/api/v1/webhook_endpoints", json=body)
    assert answer.status_code in (400, 422)
    assert answer.json()["error"]["code"] == code


def test_the_webhooks_scope_is_needed(world: World) -> None:
    answer = _api(world, ("documents:read",)).get("/api/v1/webhook_endpoints")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "insufficient_scope"


def test_the_openapi_document_describes_every_event() -> None:
    hooks = openapi_document()["webhooks"]
    assert set(hooks) == set(EVENT_TYPES)
    schema = hooks["invoice.paid"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["version"] == {"const": 1, "description": "This body's version."}
    assert schema["properties"]["data"]["properties"]["object"] == {"$ref": "#/components/schemas/Invoice"}


def test_the_embedded_server_delivers_in_the_background(world: World) -> None:
    """No extra process: the app's lifespan runs the deliverer (a change made through the API arrives by itself)."""
    key = run(factories.api_key(world.store, world.acme, now=world.clock.now)).key
    settings = dataclasses.replace(world.settings, webhooks_test_mode=True)
    with receiving() as receiver:
        shown = run(factories.webhook_endpoint(world.store, world.acme.id, now=world.clock.now, url=receiver.url))
        receiver.secrets.append(shown.secret)
        app = build_app(settings, world.store, world.clock)
        with TestClient(app, base_url="https://dashboard.localhost") as api:
            api.headers["Authorization"] = f"Bearer {key}"
            assert api.post("/api/v1/customers", json={"name": "Background"}).status_code == 201
            receiver.wait_for(1)
        (got,) = receiver.received
        assert got.body["type"] == "customer.created"
        assert got.verified_by == [0]
