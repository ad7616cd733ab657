"""The REST API over HTTP on a real database: every endpoint, auth failures, pagination, idempotency, bad input."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from billportal.api.errors import ERROR_CODES
from billportal.app import build_app
from billportal.services import api_keys
from billportal.services.api_keys import LAST_USED_RESOLUTION
from billportal.services.audit import CLI
from billportal.sso.pages import SEED_PAGE_IDS
from billportal.storage.schema import customers
from tests import factories
from tests.conftest import World, run

DASHBOARD = "https://dashboard.localhost"
LINES = [{"description": "Rocket skates", "quantity": "2", "unit_price": 12500}]


def dashboard(world: World, key: str | None = None, *, bearer: bool = False) -> TestClient:
    """A client of the dashboard host, with the key as Basic user name (or as a Bearer token)."""
    client = TestClient(build_app(world.settings, world.store, world.clock), base_url=DASHBOARD)
    client.headers["Content-Type"] = "application/json"  # what a backend sends with a body (raw content= too)
    if key is not None and bearer:
        client.headers["Authorization"] = f"Bearer {key}"
    elif key is not None:
        client.auth = (key, "")
    return client


def new_key(world: World, company: str = "acme") -> str:
    owner = world.acme if company == "acme" else world.globex
    return run(factories.api_key(world.store, owner, name=f"{company} test", now=world.clock.now)).key


@pytest.fixture
def api(world: World) -> TestClient:
    return dashboard(world, new_key(world))


def error(response: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()["error"]
    assert body["code"] == code, body
    assert ERROR_CODES[code][0] == status
    assert body["message"]
    if field is not None:
        assert body["field"] == field, body
    return body


def create(api: TestClient, path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = api.post(f"/api/v1/{path}", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def invoice(api: TestClient, customer_id: int = 1234, **fields: Any) -> dict[str, Any]:
    return create(api, "invoices", {"customer_id": customer_id, "issued_on": "2026-11-01", "lines": LINES, **fields})


# -- authentication ------------------------------------------------------------------------------


def test_basic_and_bearer_both_authenticate(world: World) -> None:
    key = new_key(world)
    for client in (dashboard(world, key), dashboard(world, key, bearer=True)):
        response = client.get("/api/v1/customers")
        assert response.status_code == 200
        assert [c["id"] for c in response.json()["data"]] == [1234, 1235, 1234567890]
    # curl -u KEY: sends exactly this header.
    raw = dashboard(world).get(
        "/api/v1/customers", headers={"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    )
    assert raw.status_code == 200


def test_no_key_wrong_key_and_revoked_key_are_refused_alike(world: World) -> None:
    key = new_key(world)
    revoked = new_key(world)
    run(api_keys.revoke(world.store, world.acme, revoked[:16], CLI, world.clock.now))
    answers = [
        dashboard(world).get("/api/v1/customers"),
        dashboard(world, key[:-1] + ("A" if key[-1] != "A" else "B")).get("/api/v1/customers"),
        dashboard(world, "not-a-key").get("/api/v1/customers"),
        dashboard(world, revoked).get("/api/v1/customers"),
        dashboard(world, revoked, bearer=True).get("/api/v1/customers"),
        dashboard(world).get("/api/v1/customers", headers={"Authorization": "Basic %%%"}),
        dashboard(world).get("/api/v1/customers", headers={"Authorization": f"Token {key}"}),
    ]
    bodies = {a.text for a in answers}
    assert len(bodies) == 1  # nothing tells the cases apart
    for answer in answers:
        error(answer, 401, "unauthorized")
        assert answer.headers["www-authenticate"] == 'Bearer realm="billportal API"'
    assert dashboard(world, key).get("/api/v1/customers").status_code == 200


def test_another_companys_objects_are_not_found(world: World) -> None:
    acme, globex = dashboard(world, new_key(world)), dashboard(world, new_key(world, "globex"))
    acme_invoice = invoice(acme)
    globex_invoice = invoice(globex, 77)
    # Customer 1234 exists in both companies: each key sees its own.
    assert acme.get("/api/v1/customers/1234").json()["name"] == "Wile E. Coyote"
    assert globex.get("/api/v1/customers/1234").json()["name"] == "Hank Scorpio"
    missing_invoice = acme.get("/api/v1/invoices/999999").json()
    missing_customer = acme.get("/api/v1/customers/999999").json()
    for response, missing in (
        (acme.get(f"/api/v1/invoices/{globex_invoice['id']}"), missing_invoice),
        (acme.patch(f"/api/v1/invoices/{globex_invoice['id']}", json={"notes": "x"}), missing_invoice),
        (acme.post(f"/api/v1/invoices/{globex_invoice['id']}/void", json={}), missing_invoice),
        (acme.delete(f"/api/v1/invoices/{globex_invoice['id']}"), missing_invoice),
        (globex.get(f"/api/v1/invoices/{acme_invoice['id']}"), missing_invoice),
        (acme.get("/api/v1/customers/77"), missing_customer),
        (acme.post("/api/v1/customers/77/sign_in_links", json={}), missing_customer),
    ):
        error(response, 404, "not_found")
        assert response.json() == missing  # just as if it did not exist
    assert [i["id"] for i in globex.get("/api/v1/invoices").json()["data"]].count(acme_invoice["id"]) == 0
    error(
        acme.post("/api/v1/invoices", json={"customer_id": 77, "issued_on": "2026-11-01", "lines": LINES}),
        422,
        "customer_not_found",
        "customer_id",
    )
    assert globex.get(f"/api/v1/invoices/{globex_invoice['id']}").json()["status"] == "open"


def test_last_used_is_recorded_at_most_once_a_minute(world: World) -> None:
    created = run(factories.api_key(world.store, world.acme, name="sync", now=world.clock.now))
    client = dashboard(world, created.key)
    assert created.info.last_used_at is None
    client.get("/api/v1/customers")
    first = run(api_keys.keys_of(world.store, world.acme.id))[0].last_used_at
    assert first == world.clock.now
    world.clock.advance(LAST_USED_RESOLUTION - 1)
    client.get("/api/v1/customers")
    assert run(api_keys.keys_of(world.store, world.acme.id))[0].last_used_at == first
    world.clock.advance(1)
    client.get("/api/v1/customers")
    assert run(api_keys.keys_of(world.store, world.acme.id))[0].last_used_at == world.clock.now


def test_keys_are_stored_hashed_and_never_logged(world: World, caplog: pytest.LogCaptureFixture) -> None:
    created = run(factories.api_key(world.store, world.acme, name="sync", now=world.clock.now))
    assert created.key.startswith("bp_live_")
    assert created.key not in repr(created)

    def stored(conn: Any) -> list[Any]:
        return list(conn.exec_driver_sql("SELECT prefix, key_hash, name FROM api_keys").all())

    rows = run(world.store.read(stored))
    assert all(created.key not in str(row) for row in rows)
    caplog.set_level(logging.DEBUG)
    dashboard(world, created.key + "x").get("/api/v1/customers")
    dashboard(world, created.key).get("/api/v1/customers/1234")
    assert created.key not in caplog.text


# -- customers ---------------------------------------------------------------------------------------


def test_customer_create_read_update_delete(api: TestClient) -> None:
    made = create(api, "customers", {"name": "Marvin Martian", "email": "marvin@mars.example", "country": "US"})
    assert made["id"] == 1234567891  # the next free id
    assert made["object"] == "customer"
    assert made["number"] == "CUST-1234567891"
    assert made["currency"] == "USD"
    chosen = create(api, "customers", {"id": 42, "name": "Daffy", "currency": "EUR", "number": "D-1"})
    assert (chosen["id"], chosen["number"], chosen["currency"]) == (42, "D-1", "EUR")
    error(api.post("/api/v1/customers", json={"id": 42, "name": "Again"}), 409, "customer_exists", "id")

    assert api.get("/api/v1/customers/42").json() == chosen
    changed = api.patch("/api/v1/customers/42", json={"city": "Burbank", "email": ""})
    assert changed.status_code == 200
    assert changed.json()["city"] == "Burbank"
    assert changed.json()["name"] == "Daffy"
    error(api.patch("/api/v1/customers/42", json={"id": 43}), 400, "unknown_field", "id")

    deleted = api.delete("/api/v1/customers/42")
    assert deleted.json() == {"object": "customer", "id": 42, "deleted": True}
    error(api.get("/api/v1/customers/42"), 404, "not_found")
    error(api.delete("/api/v1/customers/42"), 404, "not_found")
    # A customer with documents stays: its history is never deleted with it.
    error(api.delete("/api/v1/customers/1234"), 409, "customer_has_documents")
    assert api.get("/api/v1/customers/1234").status_code == 200


def test_customer_country_is_iso_3166_and_the_state_one_of_its_subdivisions(api: TestClient) -> None:
    error(api.post("/api/v1/customers", json={"name": "Nowhere", "country": "XX"}), 400, "invalid_field", "country")
    error(api.post("/api/v1/customers", json={"name": "Lower", "country": "us"}), 400, "invalid_field", "country")
    made = create(api, "customers", {"id": 50, "name": "Marvin", "country": "US", "state": "New Mexico"})
    assert (made["country"], made["state"], made["tax_id"]) == ("US", "NM", "")  # kept as the ISO 3166-2 code
    error(api.patch("/api/v1/customers/50", json={"state": "Ontario"}), 422, "state_not_in_country", "state")
    # A new country with the old state that is not one of its own is refused: send both.
    error(api.patch("/api/v1/customers/50", json={"country": "CA"}), 422, "state_not_in_country", "state")
    moved = api.patch("/api/v1/customers/50", json={"country": "CA", "state": "CA-ON", "tax_id": "123456789RT0001"})
    assert (moved.json()["country"], moved.json()["state"], moved.json()["tax_id"]) == ("CA", "ON", "123456789RT0001")
    # Where ISO 3166-2 lists no subdivisions, the state is free text.
    assert api.patch("/api/v1/customers/50", json={"country": "AQ", "state": "Ross"}).json()["state"] == "Ross"
    error(api.patch("/api/v1/customers/50", json={"tax_id": "12;34"}), 400, "invalid_field", "tax_id")


def test_a_customer_saved_before_the_country_rules_can_still_be_changed(world: World, api: TestClient) -> None:
    # A country and state written straight into the table, as releases before ISO 3166 checks left them.
    def legacy(conn: Any) -> None:
        conn.execute(
            customers.update()
            .where(customers.c.company_id == world.acme.id, customers.c.id == 1235)
            .values(country="XX", state="Somewhere")
        )

    run(world.store.write(legacy))
    changed = api.patch("/api/v1/customers/1235", json={"email": "road@runner.example"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["country"], changed.json()["state"]) == ("XX", "Somewhere")
    error(api.patch("/api/v1/customers/1235", json={"country": "XY"}), 400, "invalid_field", "country")


def test_customer_list_pages_with_a_cursor_and_filters_by_update_time(api: TestClient, world: World) -> None:
    for n in range(5):
        create(api, "customers", {"id": 2000 + n, "name": f"Customer {n}"})
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/v1/customers", params=query).json()
        pages += 1
        seen += [c["id"] for c in page["data"]]
        assert page["object"] == "list"
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert pages == 3
    assert seen == [1234, 1235, 2000, 2001, 2002, 2003, 2004, 1234567890]

    since = world.clock.now
    world.clock.advance(10)
    api.patch("/api/v1/customers/2003", json={"phone": "+1 555 0100"})
    changed = api.get("/api/v1/customers", params={"updated_after": str(since)}).json()["data"]
    assert [c["id"] for c in changed] == [2003]


# -- invoices ------------------------------------------------------------------------------------------


def test_invoice_lines_make_the_totals(api: TestClient) -> None:
    made = invoice(
        api,
        due_on="2026-12-01",
        notes="Thanks",
        lines=[
            {"description": "Rocket skates", "quantity": "2", "unit_price": 12500, "discount": 500},
            {"description": "Giant magnet", "quantity": "1.5", "unit_price": 9900, "tax": 990},
        ],
    )
    assert made["object"] == "invoice"
    assert made["number"].startswith("INV-")
    assert made["status"] == "open"
    assert (made["subtotal"], made["discount"], made["tax"], made["total"]) == (39850, 500, 990, 40340)
    assert made["balance"] == 40340
    assert [line["amount"] for line in made["lines"]] == [24500, 15840]
    assert [line["position"] for line in made["lines"]] == [1, 2]
    assert api.get(f"/api/v1/invoices/{made['id']}").json() == made
    # The portal shows it to the customer.
    assert made["currency"] == "USD"


def test_invoice_update_void_and_delete(api: TestClient) -> None:
    draft = invoice(api, status="draft", number="Q-1")
    relined = api.patch(
        f"/api/v1/invoices/{draft['id']}",
        json={"lines": [{"description": "Anvil", "quantity": "3", "unit_price": 1000}], "status": "open"},
    ).json()
    assert (relined["status"], relined["total"], relined["balance"], len(relined["lines"])) == ("open", 3000, 3000, 1)
    error(api.patch(f"/api/v1/invoices/{draft['id']}", json={"status": "draft"}), 409, "invalid_status_change")
    error(api.delete(f"/api/v1/invoices/{draft['id']}"), 409, "not_a_draft")
    error(
        api.post(
            "/api/v1/invoices", json={"customer_id": 1234, "issued_on": "2026-11-01", "lines": LINES, "number": "Q-1"}
        ),
        409,
        "number_taken",
        "number",
    )

    voided = api.post(f"/api/v1/invoices/{draft['id']}/void", json={})
    assert voided.status_code == 200
    assert (voided.json()["status"], voided.json()["balance"]) == ("voided", 0)
    error(api.post(f"/api/v1/invoices/{draft['id']}/void", json={}), 409, "not_voidable")
    error(api.patch(f"/api/v1/invoices/{draft['id']}", json={"due_on": "2027-01-01"}), 409, "invoice_not_editable")
    assert api.patch(f"/api/v1/invoices/{draft['id']}", json={"notes": "void: duplicate"}).status_code == 200

    other = invoice(api, status="draft")
    assert api.delete(f"/api/v1/invoices/{other['id']}").json() == {
        "object": "invoice",
        "id": other["id"],
        "deleted": True,
    }
    error(api.get(f"/api/v1/invoices/{other['id']}"), 404, "not_found")


def test_invoice_list_filters(api: TestClient) -> None:
    mine = invoice(api, 1235, status="draft")
    drafts = api.get("/api/v1/invoices", params={"status": "draft"}).json()["data"]
    assert [i["id"] for i in drafts] == [mine["id"]]
    of_1235 = api.get("/api/v1/invoices", params={"customer_id": "1235"}).json()["data"]
    assert {i["customer_id"] for i in of_1235} == {1235}
    assert len(of_1235) == 2
    assert all(len(i["lines"]) >= 1 for i in of_1235)


# -- payments and credit notes keep invoice balances -----------------------------------------------------


def test_payment_pays_invoices_and_deleting_it_gives_the_balance_back(api: TestClient) -> None:
    owed = invoice(api)
    paid = create(
        api,
        "payments",
        {
            "customer_id": 1234,
            "received_on": "2026-11-15",
            "method": "check",
            "reference": "1042",
            "amount": 30000,
            "applications": [{"invoice_id": owed["id"], "amount": 25000}],
        },
    )
    assert paid["object"] == "payment"
    assert paid["unapplied"] == 5000
    assert paid["applications"] == [{"invoice_id": owed["id"], "amount": 25000}]
    settled = api.get(f"/api/v1/invoices/{owed['id']}").json()
    assert (settled["status"], settled["balance"], settled["amount_paid"]) == ("paid", 0, 25000)
    error(api.post(f"/api/v1/invoices/{owed['id']}/void", json={}), 409, "not_voidable")

    renamed = api.patch(f"/api/v1/payments/{paid['id']}", json={"reference": "1043", "method": "ach"}).json()
    assert (renamed["reference"], renamed["method"], renamed["amount"]) == ("1043", "ach", 30000)
    error(api.patch(f"/api/v1/payments/{paid['id']}", json={"amount": 1}), 400, "unknown_field", "amount")

    assert api.delete(f"/api/v1/payments/{paid['id']}").json()["deleted"] is True
    again = api.get(f"/api/v1/invoices/{owed['id']}").json()
    assert (again["status"], again["balance"], again["amount_paid"]) == ("open", 25000, 0)


def test_payment_rules(api: TestClient) -> None:
    owed = invoice(api)
    base: dict[str, Any] = {"customer_id": 1234, "received_on": "2026-11-15", "method": "card", "amount": 1000}
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"applications": [{"invoice_id": owed["id"], "amount": 2000}]}, "overapplied", "applications"),
        (
            {"amount": 100000, "applications": [{"invoice_id": owed["id"], "amount": 99999}]},
            "amount_exceeds_balance",
            "applications[0].amount",
        ),
        ({"applications": [{"invoice_id": 999999, "amount": 10}]}, "invoice_not_open", "applications[0].invoice_id"),
        (
            {"currency": "EUR", "applications": [{"invoice_id": owed["id"], "amount": 10}]},
            "currency_mismatch",
            "applications[0].invoice_id",
        ),
        (
            {"applications": [{"invoice_id": owed["id"], "amount": 10}, {"invoice_id": owed["id"], "amount": 10}]},
            "duplicate_invoice",
            "applications[1].invoice_id",
        ),
    ]
    for change, code, field in cases:
        error(api.post("/api/v1/payments", json=base | change), 422, code, field)
    error(api.post("/api/v1/payments", json={**base, "method": "barter"}), 400, "invalid_field", "method")
    assert api.get(f"/api/v1/invoices/{owed['id']}").json()["balance"] == 25000  # nothing half-applied


def test_credit_note_applied_then_voided(api: TestClient) -> None:
    owed = invoice(api)
    note = create(
        api,
        "credit_notes",
        {
            "customer_id": 1234,
            "issued_on": "2026-11-20",
            "invoice_id": owed["id"],
            "lines": [{"description": "Damaged skate", "quantity": "1", "unit_price": 5000}],
        },
    )
    assert (note["object"], note["status"], note["total"]) == ("credit_note", "applied", 5000)
    credited = api.get(f"/api/v1/invoices/{owed['id']}").json()
    assert (credited["amount_credited"], credited["balance"]) == (5000, 20000)
    error(api.patch(f"/api/v1/credit_notes/{note['id']}", json={"lines": LINES}), 409, "credit_note_not_editable")
    assert api.post(f"/api/v1/credit_notes/{note['id']}/void", json={}).json()["status"] == "voided"
    restored = api.get(f"/api/v1/invoices/{owed['id']}").json()
    assert (restored["amount_credited"], restored["balance"]) == (0, 25000)

    draft = create(
        api, "credit_notes", {"customer_id": 1234, "issued_on": "2026-11-20", "status": "draft", "lines": LINES}
    )
    assert api.patch(f"/api/v1/credit_notes/{draft['id']}", json={"status": "open"}).json()["status"] == "open"
    error(api.delete(f"/api/v1/credit_notes/{draft['id']}"), 409, "not_a_draft")
    kept = create(
        api, "credit_notes", {"customer_id": 1234, "issued_on": "2026-11-20", "status": "draft", "lines": LINES}
    )
    assert api.delete(f"/api/v1/credit_notes/{kept['id']}").json()["deleted"] is True
    listed = api.get("/api/v1/credit_notes", params={"status": "open"}).json()["data"]
    assert [n["id"] for n in listed] == [draft["id"]]


def test_estimate_lifecycle(api: TestClient) -> None:
    quote = create(
        api, "estimates", {"customer_id": 1235, "issued_on": "2026-11-01", "expires_on": "2026-12-01", "lines": LINES}
    )
    assert (quote["object"], quote["status"], quote["approved_by"]) == ("estimate", "sent", None)
    error(
        api.patch(f"/api/v1/estimates/{quote['id']}", json={"expires_on": "2026-10-01"}),
        422,
        "date_order",
        "expires_on",
    )
    declined = api.patch(f"/api/v1/estimates/{quote['id']}", json={"status": "declined"}).json()
    assert declined["status"] == "declined"
    assert api.post(f"/api/v1/estimates/{quote['id']}/void", json={}).json()["status"] == "voided"
    error(api.patch(f"/api/v1/estimates/{quote['id']}", json={"status": "sent"}), 409, "estimate_not_editable")
    draft = create(
        api, "estimates", {"customer_id": 1235, "issued_on": "2026-11-01", "status": "draft", "lines": LINES}
    )
    error(api.post(f"/api/v1/estimates/{draft['id']}/void", json={}), 409, "not_voidable")
    assert api.delete(f"/api/v1/estimates/{draft['id']}").status_code == 200
    assert [e["id"] for e in api.get("/api/v1/estimates").json()["data"]] == [quote["id"]]


# -- idempotency --------------------------------------------------------------------------------------------


def test_the_same_idempotency_key_twice_makes_one_invoice(api: TestClient, world: World) -> None:
    body = {"customer_id": 1234, "issued_on": "2026-11-01", "lines": LINES}
    first = api.post("/api/v1/invoices", json=body, headers={"Idempotency-Key": "order-7781"})
    world.clock.advance(30)
    second = api.post("/api/v1/invoices", json=body, headers={"Idempotency-Key": "order-7781"})
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    invoices = api.get("/api/v1/invoices", params={"customer_id": "1234"}).json()["data"]
    assert [i["id"] for i in invoices].count(first.json()["id"]) == 1
    assert len(invoices) == 3  # the two seeded, and one made here

    other_body = api.post("/api/v1/invoices", json={**body, "notes": "x"}, headers={"Idempotency-Key": "order-7781"})
    error(other_body, 422, "idempotency_key_reused", "Idempotency-Key")
    other_path = api.post("/api/v1/customers", json={"name": "X"}, headers={"Idempotency-Key": "order-7781"})
    error(other_path, 422, "idempotency_key_reused")
    assert len(api.get("/api/v1/invoices", params={"customer_id": "1234"}).json()["data"]) == 3
    # Without a key every POST is a new invoice.
    assert api.post("/api/v1/invoices", json=body).json()["id"] != first.json()["id"]
    # A key is per company: globex may use the same one.
    globex = dashboard(world, new_key(world, "globex"))
    assert (
        globex.post(
            "/api/v1/invoices", json={**body, "customer_id": 77}, headers={"Idempotency-Key": "order-7781"}
        ).status_code
        == 201
    )


def test_idempotency_covers_every_post(api: TestClient, world: World) -> None:
    owed = invoice(api)
    void_once = api.post(f"/api/v1/invoices/{owed['id']}/void", json={}, headers={"Idempotency-Key": "v1"})
    void_again = api.post(f"/api/v1/invoices/{owed['id']}/void", json={}, headers={"Idempotency-Key": "v1"})
    assert void_once.status_code == void_again.status_code == 200
    assert void_once.content == void_again.content

    link_once = api.post("/api/v1/customers/1234/sign_in_links", json={"ttl": 60}, headers={"Idempotency-Key": "l1"})
    world.clock.advance(5)
    link_again = api.post("/api/v1/customers/1234/sign_in_links", json={"ttl": 60}, headers={"Idempotency-Key": "l1"})
    assert link_once.json()["url"] == link_again.json()["url"]

    rotated = api.post("/api/v1/sso_keys/rotate", json={"grace_period": "1h"}, headers={"Idempotency-Key": "r1"})
    rotated_again = api.post("/api/v1/sso_keys/rotate", json={"grace_period": "1h"}, headers={"Idempotency-Key": "r1"})
    assert rotated.status_code == rotated_again.status_code == 201
    assert rotated.json() == rotated_again.json()
    assert len(api.get("/api/v1/sso_keys").json()["data"]) == 2  # one rotation, not two

    def stored_bodies(conn: Any) -> list[str]:
        return [row[0] for row in conn.exec_driver_sql("SELECT response_body FROM idempotency_keys").all()]

    stored = " ".join(run(world.store.read(stored_bodies)))
    assert rotated.json()["key"] not in stored  # sealed: the SSO key is not readable in the database
    assert link_once.json()["url"].split("/login/")[1].split("?")[0] not in stored

    error(
        api.post("/api/v1/customers", json={"name": "X"}, headers={"Idempotency-Key": "has space"}),
        400,
        "invalid_parameter",
        "Idempotency-Key",
    )
    error(
        api.post("/api/v1/customers", json={"name": "X"}, headers={"Idempotency-Key": "k" * 256}),
        400,
        "invalid_parameter",
        "Idempotency-Key",
    )


def test_an_expired_idempotency_key_may_be_used_again(api: TestClient, world: World) -> None:
    body = {"customer_id": 1234, "issued_on": "2026-11-01", "lines": LINES}
    first = api.post("/api/v1/invoices", json=body, headers={"Idempotency-Key": "daily"}).json()
    world.clock.advance(24 * 3600 + 1)
    second = api.post("/api/v1/invoices", json=body, headers={"Idempotency-Key": "daily"}).json()
    assert first["id"] != second["id"]


# -- sign-in links ---------------------------------------------------------------------------------------------


def test_a_sign_in_link_from_the_api_signs_the_customer_in(api: TestClient, world: World) -> None:
    made = api.post("/api/v1/customers/1234/sign_in_links", json={"redirect_to": "invoices", "ttl": 600})
    assert made.status_code == 201
    link = made.json()
    assert link["object"] == "sign_in_link"
    assert link["url"].startswith("https://acme.localhost/login/")
    assert link["url"].endswith("?redirect_to=invoices")
    assert link["expires_at"] == world.clock.now + 600
    assert link["kid"] == world.acme.sso_keys[0].kid
    portal = world.client("acme")
    landed = portal.get(link["url"].removeprefix("https://acme.localhost"))
    assert landed.status_code == 303
    assert landed.headers["location"] == "/invoices"
    assert portal.get("/").status_code == 200
    events = api.get("/api/v1/sign_in_events").json()["data"]
    assert (events[0]["result"], events[0]["reason"], events[0]["customer_id"]) == ("success", "ok", 1234)
    assert events[0]["issuer"] == "billportal-api"


def test_a_single_use_link_works_once(api: TestClient, world: World) -> None:
    link = api.post("/api/v1/customers/1235/sign_in_links", json={"single_use": True, "issuer": "Ruby Backend"})
    path = link.json()["url"].removeprefix("https://acme.localhost")
    assert world.client("acme").get(path).status_code == 303
    assert world.client("acme").get(path).status_code == 401
    failures = api.get("/api/v1/sign_in_events", params={"result": "failure"}).json()["data"]
    assert [e["reason"] for e in failures] == ["jti_replayed"]


def test_sign_in_links_follow_the_company_policy(api: TestClient, world: World) -> None:
    error(api.post("/api/v1/customers/999/sign_in_links", json={}), 404, "not_found")
    error(
        api.post("/api/v1/customers/1234/sign_in_links", json={"redirect_to": "nowhere"}),
        400,
        "invalid_field",
        "redirect_to",
    )
    run(
        factories.company_settings(
            world.store, world.acme, sso_max_lifetime_seconds=120, sso_allowed_issuers="billing-app"
        )
    )
    world.store.forget_company("acme")
    error(
        api.post("/api/v1/customers/1234/sign_in_links", json={"ttl": 300, "issuer": "billing-app"}),
        422,
        "ttl_too_long",
        "ttl",
    )
    error(api.post("/api/v1/customers/1234/sign_in_links", json={"ttl": 60}), 422, "issuer_not_allowed", "issuer")
    made = api.post("/api/v1/customers/1234/sign_in_links", json={"ttl": 60, "issuer": "billing-app"})
    assert made.status_code == 201
    run(factories.company_settings(world.store, world.acme, sso_enabled=False))
    world.store.forget_company("acme")
    error(api.post("/api/v1/customers/1234/sign_in_links", json={}), 409, "sso_disabled")
    assert set(SEED_PAGE_IDS) >= {"invoices", "my_account"}


# -- SSO keys and the sign-in log ----------------------------------------------------------------------------------


def test_rotate_without_downtime_then_revoke_the_old_key(api: TestClient, world: World) -> None:
    old_kid = world.acme.sso_keys[0].kid
    rotated = api.post("/api/v1/sso_keys/rotate", json={"grace_period": "24h"}).json()
    assert rotated["previous_kid"] == old_kid
    assert rotated["retiring_until"] == world.clock.now + 86400
    world.store.forget_company("acme")
    # Links signed with the old key (backends not yet redeployed) and the new one both work.
    assert world.client("acme").get(f"/login/{world.token()}").status_code == 303
    new_token = world.token(key=rotated["key"])
    assert world.client("acme").get(f"/login/{new_token}").status_code == 303
    keys = {k["kid"]: k for k in api.get("/api/v1/sso_keys").json()["data"]}
    assert (keys[old_kid]["state"], keys[rotated["kid"]]["state"]) == ("retiring", "active")
    assert all("key" not in k for k in keys.values())

    error(api.post(f"/api/v1/sso_keys/{rotated['kid']}/revoke", json={}), 409, "key_not_retiring")
    error(api.post("/api/v1/sso_keys/sso_000000000000/revoke", json={}), 404, "not_found")
    revoked = api.post(f"/api/v1/sso_keys/{old_kid}/revoke", json={})
    assert revoked.status_code == 200
    assert revoked.json()["state"] == "revoked"
    world.store.forget_company("acme")
    assert world.client("acme").get(f"/login/{world.token()}").status_code == 401
    error(api.post("/api/v1/sso_keys/rotate", json={"grace_period": "1y"}), 400, "invalid_field", "grace_period")


def test_sign_in_events_page_newest_first(api: TestClient, world: World) -> None:
    for n in range(5):
        world.client("acme").get(f"/login/{world.token({'sub': 1234, 'exp': world.clock.now + 60, 'n': n})}")
    world.client("acme").get("/login/garbage")
    first = api.get("/api/v1/sign_in_events", params={"limit": "4"}).json()
    assert first["has_more"] is True
    assert first["data"][0]["reason"] == "token_malformed"
    rest = api.get("/api/v1/sign_in_events", params={"limit": "4", "cursor": first["next_cursor"]}).json()
    assert rest["has_more"] is False
    ids = [e["id"] for e in first["data"] + rest["data"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 6
    only_1234 = api.get("/api/v1/sign_in_events", params={"customer_id": "1234", "result": "success"}).json()
    assert len(only_1234["data"]) == 5


# -- bad input ----------------------------------------------------------------------------------------------------


def _invoice_body(line: dict[str, Any] | None = None, **fields: Any) -> bytes:
    body = {
        "customer_id": 1234,
        "issued_on": "2026-11-01",
        "lines": [line or {"description": "x", "quantity": "1", "unit_price": 1}],
        **fields,
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"{", "invalid_json", None),
        (b"\xff\xfe", "invalid_json", None),
        (b'{"name": NaN}', "invalid_json", None),
        (b"", "invalid_body", None),
        (b"[]", "invalid_body", None),
        (b'{"customer_id": 1234}', "missing_field", "issued_on"),
        (_invoice_body(customer_id="1234"), "invalid_field", "customer_id"),
        (_invoice_body(customer_id=True), "invalid_field", "customer_id"),
        (_invoice_body(customer_id=10**20), "invalid_field", "customer_id"),
        (_invoice_body(issued_on="2026-13-01"), "invalid_field", "issued_on"),
        (_invoice_body(issued_on="20261101"), "invalid_field", "issued_on"),
        (_invoice_body(lines=[]), "invalid_field", "lines"),
        (_invoice_body({"description": "x", "quantity": 2, "unit_price": 1}), "invalid_field", "lines[0].quantity"),
        (_invoice_body({"description": "x", "quantity": "1e3", "unit_price": 1}), "invalid_field", "lines[0].quantity"),
        (
            _invoice_body({"description": "x", "quantity": "1", "unit_price": -1}),
            "invalid_field",
            "lines[0].unit_price",
        ),
        (
            _invoice_body({"description": " ", "quantity": "1", "unit_price": 1}),
            "invalid_field",
            "lines[0].description",
        ),
        (
            _invoice_body({"description": "x", "quantity": "1", "unit_price": 1, "colour": "red"}),
            "unknown_field",
            "lines[0].colour",
        ),
        (_invoice_body(currency="usd"), "invalid_field", "currency"),
        (_invoice_body(status="paid"), "invalid_field", "status"),
        (_invoice_body(notes="\u0000"), "invalid_field", "notes"),
        (_invoice_body(notes="\ud800"), "invalid_field", "notes"),
    ],
)
def test_bad_invoice_bodies_are_refused_with_the_field(
    api: TestClient, body: bytes, code: str, field: str | None
) -> None:
    response = api.post("/api/v1/invoices", content=body, headers={"Content-Type": "application/json"})
    error(response, 400, code, field)
    assert body.decode("utf-8", "replace")[:20] not in response.json()["error"]["message"] or len(body) < 3


def test_business_rules_answer_422(api: TestClient) -> None:
    lines = [{"description": "x", "quantity": "1", "unit_price": 100, "discount": 101}]
    error(
        api.post("/api/v1/invoices", json={"customer_id": 1234, "issued_on": "2026-11-01", "lines": lines}),
        422,
        "discount_too_large",
        "lines[0].discount",
    )
    huge = [{"description": "x", "quantity": "999999999", "unit_price": 10**12}]
    error(
        api.post("/api/v1/invoices", json={"customer_id": 1234, "issued_on": "2026-11-01", "lines": huge}),
        422,
        "amount_too_large",
        "lines[0]",
    )
    error(
        api.post(
            "/api/v1/invoices",
            json={"customer_id": 1234, "issued_on": "2026-11-01", "due_on": "2026-10-01", "lines": LINES},
        ),
        422,
        "date_order",
        "due_on",
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "abc"}, "cursor"),
        ({"updated_after": "-1"}, "updated_after"),
        ({"status": "lost"}, "status"),
        ({"customer_id": "0"}, "customer_id"),
    ],
)
def test_bad_list_parameters(api: TestClient, query: dict[str, str], field: str) -> None:
    error(api.get("/api/v1/invoices", params=query), 400, "invalid_parameter", field)


def test_a_body_over_one_mebibyte_is_refused(api: TestClient) -> None:
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    error(api.post("/api/v1/customers", content=big), 413, "request_too_large")


def test_everything_under_the_api_answers_json(api: TestClient) -> None:
    error(api.get("/api/v1/nothing-here"), 404, "not_found")
    error(api.get("/api/v1/invoices/abc"), 404, "not_found")
    error(api.get("/api/v1/invoices/99999999999999999999"), 404, "not_found")
    error(api.post("/api/v1/sso_keys/x%0Ay/revoke", json={}), 404, "not_found")
    error(api.get("/api/v1/x%0Ay"), 404, "not_found")
    put = api.put("/api/v1/invoices")
    error(put, 405, "method_not_allowed")
    assert put.headers["allow"] == "GET, HEAD, POST"
    error(api.post("/api/v1/openapi.json"), 405, "method_not_allowed")
    assert api.head("/api/v1/customers").status_code == 200


def test_the_openapi_document_and_the_docs_are_served(world: World) -> None:
    client = dashboard(world)  # no key needed to read the docs
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200
    spec = document.json()
    assert spec["openapi"] == "3.1.0"
    assert "/customers/{id}/sign_in_links" in spec["paths"]
    assert set(spec["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"]) == set(ERROR_CODES)
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    csp = docs.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp
    html = docs.text
    assert "<script" not in html
    assert "http://" not in html.replace("http://testserver", "")
    assert 'href="/api/v1/docs.css"' in html
    for code in ERROR_CODES:
        assert f"<code>{code}</code>" in html
    for path in spec["paths"]:
        assert f"/api/v1{path}" in html
    assert client.get("/api/v1/docs.css").headers["content-type"].startswith("text/css")
