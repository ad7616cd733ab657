"""A customer reaches only their own documents: another's, in any company, is the same 404 as none."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from billportal.storage.documents import Scope
from tests.conftest import World, run
from tests.functional.portal_world import Docs, add_documents, csrf_token, signed_in

# (kind, path template, the signed-in customer's own document, another customer's in Acme, Globex's 1234's)
DOCUMENTS = [
    ("invoices", "/invoices/{id}", "INV-0001", "INV-0003", "GLX-0001"),
    ("invoices", "/invoices/{id}/pdf", "INV-0001", "INV-0003", "GLX-0001"),
    ("payments", "/payments/{id}", "PAY-1001", "PAY-2001", "GLX-PAY-1"),
    ("payments", "/payments/{id}/pdf", "PAY-1001", "PAY-2001", "GLX-PAY-1"),
    ("credit_notes", "/credit-notes/{id}", "CN-2", "CN-3", "GLX-CN-1"),
    ("credit_notes", "/credit-notes/{id}/pdf", "CN-2", "CN-3", "GLX-CN-1"),
    ("estimates", "/estimates/{id}", "EST-1", "EST-3", "GLX-EST-1"),
    ("estimates", "/estimates/{id}/pdf", "EST-1", "EST-3", "GLX-EST-1"),
]


@pytest.fixture
def docs(world: World) -> Docs:
    return add_documents(world)


@pytest.fixture
def client(world: World, docs: Docs) -> TestClient:
    return signed_in(world)


@pytest.mark.parametrize(("kind", "path", "mine", "neighbour", "foreign"), DOCUMENTS, ids=[d[1] for d in DOCUMENTS])
def test_another_customers_document_is_the_same_404_as_none(
    client: TestClient, docs: Docs, *, kind: str, path: str, mine: str, neighbour: str, foreign: str
) -> None:
    ids = getattr(docs, kind)
    assert client.get(path.format(id=ids[mine])).status_code == 200
    missing = client.get(path.format(id=987654))
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    for other in (neighbour, foreign):
        response = client.get(path.format(id=ids[other]))
        assert response.status_code == 404, other
        assert response.text == missing.text
        assert other not in response.text
    # An id no database can hold is no different.
    assert client.get(path.format(id=9999999999999999999)).status_code == 404


def test_the_other_company_sees_its_own_customer_1234_only(world: World, docs: Docs) -> None:
    # Customer 1234 exists in both companies: Globex's 1234 must not see Acme's 1234's documents.
    globex = signed_in(world, "globex", 1234)
    assert globex.get(f"/payments/{docs.payments['GLX-PAY-1']}").status_code == 200
    assert globex.get(f"/payments/{docs.payments['PAY-1001']}").status_code == 404
    listing = globex.get("/payments").text
    assert "GLX-PAY-1" in listing
    assert "PAY-1001" not in listing
    statement = globex.get("/statements/balance-forward").text
    assert "GLX-0001" in statement
    assert "INV-0001" not in statement


@pytest.mark.parametrize("other", ["EST-3", "GLX-EST-1", "missing"])
def test_approving_another_customers_estimate_is_a_404_and_changes_nothing(
    world: World, client: TestClient, docs: Docs, other: str
) -> None:
    token = csrf_token(client.get("/estimates").text)
    estimate_id = docs.estimates.get(other, 987654)
    response = client.post(f"/estimates/{estimate_id}/approve", data={"csrf_token": token, "approved_by": "Wile"})
    assert response.status_code == 404
    assert response.text == client.get("/estimates/987654").text
    for company, customer_id in ((world.acme, 1235), (world.globex, 1234)):
        estimates, _ = run(world.billing.documents("estimate", Scope(company.id, customer_id)))
        assert {e.status for e in estimates} == {"sent"}
    assert run(world.billing.customer_events(world.acme.id)) == []
    assert run(world.billing.customer_events(world.globex.id)) == []


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/invoices",
        "/invoices/1",
        "/invoices/1/pdf",
        "/payments",
        "/payments/1",
        "/payments/1/pdf",
        "/credit-notes",
        "/credit-notes/1",
        "/credit-notes/1/pdf",
        "/estimates",
        "/estimates/1",
        "/estimates/1/pdf",
        "/statements/balance-forward",
        "/statements/balance-forward/pdf",
        "/statements/open-item",
        "/statements/open-item/pdf",
        "/billing-info",
        "/pay",
    ],
)
def test_nothing_is_shown_without_a_session(world: World, docs: Docs, path: str) -> None:
    response = world.client().get(path)
    assert response.status_code == 401
    assert response.headers["cache-control"] == "no-store"
    assert "Please sign in" in response.text
    assert "Wile" not in response.text


@pytest.mark.parametrize("path", ["/billing-info", "/estimates/1/approve"])
def test_no_change_without_a_session(world: World, docs: Docs, path: str) -> None:
    response = world.client().post(path, data={"csrf_token": "x", "name": "Mallory", "approved_by": "Mallory"})
    assert response.status_code == 401
    assert run(world.billing.customer_events(world.acme.id)) == []


def test_a_csrf_token_of_another_session_is_refused(world: World, docs: Docs) -> None:
    theirs = signed_in(world, "acme", 1235)
    their_token = csrf_token(theirs.get("/billing-info").text)
    mine = signed_in(world)
    response = mine.post("/billing-info", data={"csrf_token": their_token, "name": "Mallory"})
    assert response.status_code == 403
    customer = run(world.billing.customer(world.acme.id, 1234))
    assert customer is not None
    assert customer.name == "Wile E. Coyote"
