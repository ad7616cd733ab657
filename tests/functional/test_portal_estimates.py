"""A customer's answer to an estimate, over HTTP: it is taken only for the version they saw."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from billportal.storage.documents import Scope
from tests.conftest import World, run
from tests.functional.portal_world import Docs, add_documents, hidden_fields, signed_in, text_of
from tests.functional.test_api import dashboard, new_key


@pytest.fixture
def docs(world: World) -> Docs:
    return add_documents(world)


@pytest.fixture
def client(world: World, docs: Docs) -> TestClient:
    return signed_in(world)


def _status(world: World, estimate_id: int) -> str:
    estimate = run(world.billing.get("estimate", Scope(world.acme.id, 1234), estimate_id))
    assert estimate is not None
    return str(estimate.status)


def test_an_approval_is_refused_when_the_estimate_changed_while_the_form_was_open(
    world: World, client: TestClient, docs: Docs
) -> None:
    estimate_id = docs.estimates["EST-1"]
    action = f"/estimates/{estimate_id}/approve"
    form = hidden_fields(client.get(f"/estimates/{estimate_id}").text, action)  # the customer reads $1,047.90
    # Meanwhile the company's program raises the price a hundred thousand times.
    api = dashboard(world, new_key(world))
    lines = [{"description": "Portable hole", "quantity": "2", "unit_price": 5_000_000_000}]
    changed = api.patch(f"/api/v1/estimates/{estimate_id}", json={"lines": lines})
    assert changed.status_code == 200, changed.text
    response = client.post(action, data={**form, "approved_by": "Wile E. Coyote"})
    assert response.status_code == 409
    page = text_of(response.text)
    assert "This estimate changed; review it again." in page
    assert "$100,000,000.00" in page  # the page shows the estimate as it is now
    assert _status(world, estimate_id) == "sent"
    assert run(world.billing.customer_events(world.acme.id)) == []
    # Reviewed again, the new version can be approved.
    again = hidden_fields(response.text, action)
    assert again.get("version") != form.get("version")
    assert client.post(action, data={**again, "approved_by": "Wile E. Coyote"}).status_code == 303
    assert _status(world, estimate_id) == "approved"


def test_an_approval_without_the_version_is_not_taken(world: World, client: TestClient, docs: Docs) -> None:
    estimate_id = docs.estimates["EST-1"]
    action = f"/estimates/{estimate_id}/approve"
    form = hidden_fields(client.get(f"/estimates/{estimate_id}").text, action)
    for version in ("", "0" * 32, form.get("version", "").upper()):
        response = client.post(action, data={**form, "version": version, "approved_by": "Wile"})
        assert response.status_code == 409
        assert "This estimate changed; review it again." in text_of(response.text)
    assert _status(world, estimate_id) == "sent"
