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
    form = hidden_fields(client.get(action).text, action)  # the customer confirms $1,047.90
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
    again = hidden_fields(client.get(action).text, action)
    assert again.get("version") != form.get("version")
    assert client.post(action, data={**again, "approved_by": "Wile E. Coyote"}).status_code == 303
    assert _status(world, estimate_id) == "approved"


def test_an_approval_without_the_version_is_not_taken(world: World, client: TestClient, docs: Docs) -> None:
    estimate_id = docs.estimates["EST-1"]
    action = f"/estimates/{estimate_id}/approve"
    form = hidden_fields(client.get(action).text, action)
    for version in ("", "0" * 32, form.get("version", "").upper()):
        response = client.post(action, data={**form, "version": version, "approved_by": "Wile"})
        assert response.status_code == 409
        assert "This estimate changed; review it again." in text_of(response.text)
    assert _status(world, estimate_id) == "sent"


def test_a_decline_is_refused_when_the_estimate_changed_while_the_form_was_open(
    world: World, client: TestClient, docs: Docs
) -> None:
    estimate_id = docs.estimates["EST-1"]
    action = f"/estimates/{estimate_id}/decline"
    form = hidden_fields(client.get(f"/estimates/{estimate_id}").text, action)
    api = dashboard(world, new_key(world))
    assert api.patch(f"/api/v1/estimates/{estimate_id}", json={"expires_on": "2027-06-30"}).status_code == 200
    response = client.post(action, data={**form, "reason": "Too dear"})
    assert response.status_code == 409
    assert "This estimate changed; review it again." in text_of(response.text)
    assert _status(world, estimate_id) == "sent"
    assert run(world.billing.customer_events(world.acme.id)) == []


# -- approving: a confirmation that shows the total ------------------------------------------------


def test_approving_asks_for_a_confirmation_that_shows_the_total(world: World, client: TestClient, docs: Docs) -> None:
    estimate_id = docs.estimates["EST-1"]
    detail = client.get(f"/estimates/{estimate_id}").text
    assert f'<a class="button" href="/estimates/{estimate_id}/approve">Approve estimate…</a>' in detail
    confirm = client.get(f"/estimates/{estimate_id}/approve")
    assert confirm.status_code == 200
    page = text_of(confirm.text)
    assert "Approve estimate EST-1" in page
    assert "Total $1,047.90" in page
    assert "Of which tax $49.90" in page
    assert "Approve for $1,047.90" in page
    assert _status(world, estimate_id) == "sent"  # looking at the confirmation changes nothing
    # A blank name is asked for again on the confirmation, with the total still shown.
    form = hidden_fields(confirm.text, f"/estimates/{estimate_id}/approve")
    blank = client.post(f"/estimates/{estimate_id}/approve", data={**form, "approved_by": " "})
    assert blank.status_code == 400
    assert "Approve for $1,047.90" in text_of(blank.text)
    assert 'id="approved_by-error">Enter your full name.</p>' in blank.text


def test_there_is_no_confirmation_for_an_estimate_that_takes_no_answer(client: TestClient, docs: Docs) -> None:
    expired = docs.estimates["EST-2"]
    response = client.get(f"/estimates/{expired}/approve")
    assert response.status_code == 303
    assert response.headers["location"] == f"/estimates/{expired}"
    assert client.get(f"/estimates/{docs.estimates['EST-3']}/approve").status_code == 404  # another customer's


# -- declining, with a reason the company sees -----------------------------------------------------


def test_a_declined_estimate_and_its_reason_reach_the_company(world: World, client: TestClient, docs: Docs) -> None:
    estimate_id = docs.estimates["EST-1"]
    action = f"/estimates/{estimate_id}/decline"
    form = hidden_fields(client.get(f"/estimates/{estimate_id}").text, action)
    response = client.post(action, data={**form, "reason": "  Found a  cheaper hole <elsewhere> "})
    assert response.status_code == 303
    assert response.headers["location"] == f"/estimates/{estimate_id}"
    page = client.get(f"/estimates/{estimate_id}").text
    assert "Declined on Nov 28, 2026, 12:00 UTC. Your reason: Found a cheaper hole <elsewhere>" in text_of(page)
    assert "&lt;elsewhere&gt;" in page
    assert "/approve" not in page
    assert "/decline" not in page
    # The company sees it: the API's estimate, and the customer's event.
    api = dashboard(world, new_key(world))
    seen = api.get(f"/api/v1/estimates/{estimate_id}").json()
    assert (seen["status"], seen["decline_reason"], seen["declined_at"]) == (
        "declined",
        "Found a cheaper hole <elsewhere>",
        world.clock.now,
    )
    (event,) = run(world.billing.customer_events(world.acme.id, customer_id=1234))
    assert event.kind == "estimate.declined"
    assert "Found a cheaper hole" in event.detail
    # Answered: neither a second decline nor an approval is taken.
    again = client.post(action, data={**form, "reason": ""})
    assert again.status_code == 409
    assert "This estimate can no longer be declined." in text_of(again.text)
    approve = client.post(f"/estimates/{estimate_id}/approve", data={**form, "approved_by": "Wile"})
    assert approve.status_code == 409
    assert _status(world, estimate_id) == "declined"
    # Sent again by the company, it can be answered again; the old reason is history (the event).
    assert api.patch(f"/api/v1/estimates/{estimate_id}", json={"status": "sent"}).json()["decline_reason"] == ""


def test_the_reason_is_optional_and_checked(world: World, client: TestClient, docs: Docs) -> None:
    estimate_id = docs.estimates["EST-1"]
    action = f"/estimates/{estimate_id}/decline"
    form = hidden_fields(client.get(f"/estimates/{estimate_id}").text, action)
    for bad, message in (("x" * 1001, "at most 1000 characters"), ("evil\u202ename", "cannot be saved")):
        response = client.post(action, data={**form, "reason": bad})
        assert response.status_code == 400
        assert message in text_of(response.text)
        assert '<details class="decline" open>' in response.text
        assert 'id="reason" name="reason"' in response.text
    assert _status(world, estimate_id) == "sent"
    assert client.post(action, data=form).status_code == 303
    page = text_of(client.get(f"/estimates/{estimate_id}").text)
    assert "Declined on" in page
    assert "Your reason" not in page
