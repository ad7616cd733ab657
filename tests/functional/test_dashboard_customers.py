"""Customers in the dashboard: the list, a customer's page, the customer form, delete, and the portal as them."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html import unescape
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from billportal.app import build_app
from billportal.services import sso
from billportal.services.audit import CLI
from billportal.services.billing import Answer, estimate_version
from billportal.services.sso import PolicySettings
from billportal.storage import webhooks as outbox
from billportal.storage.documents import Scope
from billportal.storage.records import AuditEvent
from tests import factories
from tests.conftest import World, run
from tests.functional.dashboard_support import PASSWORD, admin_of_acme
from tests.functional.portal_world import Docs, add_documents, signed_in, text_of


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<a href="/customers/(\d+)">', html)]


def test_the_list_shows_each_customer_and_what_they_owe(world: World) -> None:
    docs: Docs = add_documents(world)  # Acme's 1234 owes on open invoices, some past due (the clock is 2026-11-28)
    dashboard = admin_of_acme(world)
    page = dashboard.get("/customers")
    assert page.status_code == 200
    assert _ids(page.text) == [1234, 1235, 1234567890]  # Acme's only, by id
    row = next(r for r in re.findall(r"<tr>.*?</tr>", page.text, re.DOTALL) if 'href="/customers/1234"' in r)
    assert "Wile E. Coyote" in row
    assert "wile@example.com" in row
    assert docs.invoices  # the documents exist
    assert '<a href="/customers" aria-current="page">Customers</a>' in page.text


def test_search_by_id_name_number_or_email_in_any_case(world: World) -> None:
    dashboard = admin_of_acme(world)
    assert _ids(dashboard.get("/customers", params={"q": "1235"}).text) == [1235]
    assert _ids(dashboard.get("/customers", params={"q": "coyote"}).text) == [1234]
    assert _ids(dashboard.get("/customers", params={"q": "WILE@EXAMPLE"}).text) == [1234]
    assert _ids(dashboard.get("/customers", params={"q": "Homer"}).text) == []  # Globex's customer
    # Wildcards are text, not patterns; an id past any column's range is no error.
    assert _ids(dashboard.get("/customers", params={"q": "%"}).text) == []
    assert _ids(dashboard.get("/customers", params={"q": "_"}).text) == []
    assert dashboard.get("/customers", params={"q": "9" * 40}).status_code == 200
    assert "No customer matches." in text_of(dashboard.get("/customers", params={"q": "nobody"}).text)


def test_filters_for_a_balance_and_for_past_due(world: World) -> None:
    add_documents(world)
    dashboard = admin_of_acme(world)
    owing = _ids(dashboard.get("/customers", params={"owing": "balance"}).text)
    late = _ids(dashboard.get("/customers", params={"owing": "past_due"}).text)
    assert 1234 in owing
    assert 1234567890 not in owing  # no invoices
    assert set(late) <= set(owing)
    assert _ids(dashboard.get("/customers", params={"owing": "nonsense"}).text) == _ids(
        dashboard.get("/customers").text
    )


def test_keyset_paging_reaches_every_customer_once(world: World) -> None:
    for n in range(60):
        run(factories.customer(world.store, world.acme.id, id=5000 + n, name=f"Bulk {n}", now=world.clock.now))
    dashboard = admin_of_acme(world)
    seen: list[int] = []
    url = "/customers?q=bulk"
    while True:
        page = dashboard.get(url).text
        seen.extend(_ids(page))
        found = re.search(r'href="(/customers\?after=\d+[^"]*)" rel="next"', page)
        if found is None:
            break
        url = found[1].replace("&amp;", "&")
    assert seen == [5000 + n for n in range(60)]
    assert dashboard.get("/customers", params={"after": "x" * 30}).status_code == 200


def _search(dashboard: Any, q: str, **params: str) -> list[int]:
    return _ids(dashboard.get("/customers", params={"q": q, **params}).text)


def test_search_finds_any_part_of_a_name_number_or_email_and_follows_every_change(world: World) -> None:
    dashboard = admin_of_acme(world)
    typed = {**BLANK_FORM, "id": "7001", "number": "ZX-88231", "name": "Hildegard Quonset", "email": "hq@tundra.test"}
    assert dashboard.post("/customers/new", typed).status_code == 303
    assert _search(dashboard, "degard QUON") == [7001]  # the middle of a name, across a space, in any case
    assert _search(dashboard, "x-882") == [7001]  # part of the number
    assert _search(dashboard, "@TUNDRA.t") == [7001]  # part of the email
    assert _search(dashboard, "700") == [7001]  # part of the id
    assert _search(dashboard, "Qu") == [7001]  # two characters: read from the customers themselves
    assert _search(dashboard, '"Quonset"') == []  # quotes are text, not the index's syntax
    assert _search(dashboard, "Quonset OR Coyote") == []  # and so are its operators
    assert _search(dashboard, "Quon\x00set") == []  # a NUL, which no database holds, is no error
    current = {name: value for name, value in typed.items() if name != "id"} | {"currency": "USD"}
    edited = dashboard.post("/customers/7001/edit", {**current, "name": "Ottilie Brandvold", "email": "ob@fjord.test"})
    assert edited.status_code == 303, edited.text
    assert _search(dashboard, "Quonset") == []
    assert _search(dashboard, "tundra") == []
    assert _search(dashboard, "brandvold") == [7001]
    assert _search(dashboard, "@fjord") == [7001]
    assert _search(dashboard, "ZX-88") == [7001]  # the number did not change
    assert dashboard.post("/customers/7001/delete", {"confirm": "yes"}).status_code == 303
    assert _search(dashboard, "brandvold") == []
    assert _search(dashboard, "ZX-88") == []


def test_search_stays_in_the_company_and_combines_with_the_filters(world: World) -> None:
    add_documents(world)  # Acme's 1234 (Wile E. Coyote) and 1235 (Road Runner) owe; none of it is past due yet
    late = factories.invoice(
        world.store, world.acme.id, 1235, issued_on="2026-10-01", due_on="2026-10-31", now=world.clock.now
    )
    run(late)
    run(factories.customer(world.store, world.globex.id, id=4321, name="Wile E. Coyote", now=world.clock.now))
    dashboard = admin_of_acme(world)
    assert _search(dashboard, "Coyote") == [1234]  # Acme's, not Globex's customer of the same name
    assert _search(dashboard, "Co") == [1234]
    assert _search(dashboard, "Coyote", owing="balance") == [1234]
    assert _search(dashboard, "Coyote", owing="past_due") == []
    assert _search(dashboard, "Road Runner", owing="past_due") == [1235]
    assert _search(dashboard, "Ro", owing="past_due") == [1235]
    assert _ids(dashboard.get("/customers", params={"owing": "past_due"}).text) == [1235]


def test_paging_through_a_search_and_a_filter_reaches_every_match_once(world: World) -> None:
    # Added out of id order: a page follows the search's index, and every match comes once.
    for n in (*range(30, 60), *range(30)):
        run(factories.customer(world.store, world.acme.id, id=9000 + n, name=f"Pager {n}", now=world.clock.now))
        if n % 2:
            run(factories.invoice(world.store, world.acme.id, 9000 + n, now=world.clock.now))
    dashboard = admin_of_acme(world)
    for query, expected in (
        ("q=pager", set(range(9000, 9060))),
        ("q=90", set(range(9000, 9060))),  # two characters
        ("owing=balance", {9000 + n for n in range(1, 60, 2)}),
        ("q=pager&owing=balance", {9000 + n for n in range(1, 60, 2)}),
    ):
        seen: list[int] = []
        url = f"/customers?{query}"
        while True:
            page = dashboard.get(url).text
            seen.extend(_ids(page))
            found = re.search(r'href="(/customers\?after=\d+[^"]*)" rel="next"', page)
            if found is None:
                break
            url = unescape(found[1])
        assert {i for i in seen if 9000 <= i < 9060} == expected, query
        assert len(seen) == len(set(seen)), query


def test_a_customers_page_shows_details_balance_and_documents(world: World) -> None:
    docs = add_documents(world)
    dashboard = admin_of_acme(world)
    page = dashboard.get("/customers/1234")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Wile E. Coyote" in text
    assert "wile@example.com" in text
    assert "AutoPay Off" in text
    assert "INV-0001" in text
    assert f'href="/payments/{docs.payments["PAY-1001"]}"' in page.text
    # Another company's customer, or none, is the same 404.
    missing = dashboard.get("/customers/987654")
    assert missing.status_code == 404
    assert dashboard.get("/customers/77").status_code == 404
    assert dashboard.get("/customers/77").text == missing.text


# -- create, edit, delete: the API's rules and words, audited, with the API's webhook events ------------

WILE_ID = 1234
BLANK_FORM = {
    "id": "",
    "number": "",
    "name": "",
    "email": "",
    "phone": "",
    "address_line1": "",
    "address_line2": "",
    "city": "",
    "state": "",
    "postal_code": "",
    "country": "",
    "tax_id": "",
    "currency": "",
}


def _outbox(world: World) -> list[tuple[str, dict[str, Any]]]:
    found = run(world.store.read(lambda conn: outbox.events(conn, world.acme.id)))
    return [(event_type, json.loads(payload)) for _, event_type, payload in found]


def _audit(world: World, action: str) -> list[AuditEvent]:
    events = run(world.store.admins.audit_events(world.acme.id, limit=100))
    return [event for event in events if event.action == action]


def _field_error(html: str, name: str) -> str:
    match = re.search(rf'<p class="field-error" id="{name}-error">([^<]*)</p>', html)
    assert match is not None, f"no error beside {name}"
    return unescape(match[1])


def _api_error(world: World, body: dict[str, Any], method: str = "POST", path: str = "/api/v1/customers") -> str:
    key = run(factories.api_key(world.store, world.acme, name="compare", now=world.clock.now)).key
    api = TestClient(build_app(world.settings, world.store, world.clock), base_url="https://dashboard.localhost")
    answer = api.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code in (400, 409, 422), answer.text
    message: str = answer.json()["error"]["message"]
    return message


def test_an_admin_creates_a_customer_audited_with_its_webhook_event(world: World) -> None:
    run(factories.webhook_endpoint(world.store, world.acme.id, now=world.clock.now))
    dashboard = admin_of_acme(world)
    assert 'href="/customers/new"' in dashboard.get("/customers").text
    form_page = dashboard.get("/customers/new")
    assert form_page.status_code == 200
    assert 'name="name"' in form_page.text
    typed = {
        **BLANK_FORM,
        "id": "4242",
        "name": "  ACME Rockets  ",
        "email": "rockets@example.com",
        "country": "US",
        "state": "New Mexico",
        "city": "Albuquerque",
    }
    made = dashboard.post("/customers/new", typed)
    assert made.status_code == 303, made.text
    assert made.headers["location"] == "/customers/4242?notice=created"
    customer = run(world.billing.customer(world.acme.id, 4242))
    assert customer is not None
    assert (customer.name, customer.state, customer.number, customer.currency) == (
        "ACME Rockets",
        "NM",  # the API's rule: kept as the ISO 3166-2 code
        "CUST-04242",
        "USD",
    )
    assert "The customer is created." in text_of(dashboard.get(made.headers["location"]).text)
    (entry,) = _audit(world, "customer.created")
    assert entry.actor == "ada@acme.example"
    assert entry.detail.startswith("customer 4242 ")
    assert json.loads(entry.detail.partition(" ")[2].partition(" ")[2])["email"] == "rockets@example.com"
    ((event_type, body),) = _outbox(world)
    assert event_type == "customer.created"
    assert body["data"]["object"]["id"] == 4242
    # Without an id: the next free one, as the API gives.
    again = dashboard.post("/customers/new", {**BLANK_FORM, "name": "Next"})
    assert again.status_code == 303
    assert again.headers["location"] == "/customers/1234567891?notice=created"


@pytest.mark.parametrize(
    ("typed", "field", "body"),
    [
        ({"name": ""}, "name", {"name": ""}),
        ({"name": "   "}, "name", {"name": ""}),
        ({"name": "Bell\u0007"}, "name", {"name": "Bell\u0007"}),
        ({"name": "x" * 201}, "name", {"name": "x" * 201}),
        ({"name": "N", "email": "not an address"}, "email", {"name": "N", "email": "not an address"}),
        ({"name": "N", "country": "XX"}, "country", {"name": "N", "country": "XX"}),
        ({"name": "N", "currency": "usd"}, "currency", {"name": "N", "currency": "usd"}),
        ({"name": "N", "tax_id": "DE 123!"}, "tax_id", {"name": "N", "tax_id": "DE 123!"}),
        (
            {"name": "N", "country": "US", "state": "Atlantis"},
            "state",
            {"name": "N", "country": "US", "state": "Atlantis"},
        ),
        ({"name": "N", "id": "abc"}, "id", {"name": "N", "id": "abc"}),
        ({"name": "N", "id": "0"}, "id", {"name": "N", "id": 0}),
        ({"name": "N", "id": "9" * 25}, "id", {"name": "N", "id": "9" * 25}),
        ({"name": "N", "phone": "\u0000"}, "phone", {"name": "N", "phone": "\u0000"}),
    ],
)
def test_bad_input_is_said_beside_its_field_in_the_apis_words(
    world: World, typed: dict[str, str], field: str, body: dict[str, Any]
) -> None:
    dashboard = admin_of_acme(world)
    before = _ids(dashboard.get("/customers").text)
    refused = dashboard.post("/customers/new", {**BLANK_FORM, **typed})
    assert refused.status_code == 400, refused.text
    said = _field_error(refused.text, field)
    assert said == _api_error(world, body)
    assert "The customer is not saved" in refused.text
    assert _ids(dashboard.get("/customers").text) == before
    assert _audit(world, "customer.created") == []


def test_an_id_that_is_taken_is_a_conflict(world: World) -> None:
    dashboard = admin_of_acme(world)
    taken = dashboard.post("/customers/new", {**BLANK_FORM, "id": "1235", "name": "Again"})
    assert taken.status_code == 409
    assert _field_error(taken.text, "id") == _api_error(world, {"id": 1235, "name": "Again"})
    assert 'value="Again"' in taken.text  # what was typed is kept
    customer = run(world.billing.customer(world.acme.id, 1235))
    assert customer is not None
    assert customer.name == "Road Runner"


def test_an_admin_edits_a_customer_audited_with_old_and_new_values(world: World) -> None:
    run(factories.webhook_endpoint(world.store, world.acme.id, now=world.clock.now))
    dashboard = admin_of_acme(world)
    page = dashboard.get("/customers/1235/edit")
    assert page.status_code == 200
    assert 'value="Road Runner"' in page.text
    assert 'name="id"' not in page.text  # the id is the sign-in links' sub: it never changes
    current = {name: "" for name in BLANK_FORM if name != "id"} | {"name": "Road Runner", "number": "CUST-01235"}
    current["currency"] = "USD"
    saved = dashboard.post("/customers/1235/edit", {**current, "name": "Road Runner Inc.", "email": "meep@example.com"})
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == "/customers/1235?notice=saved"
    customer = run(world.billing.customer(world.acme.id, 1235))
    assert customer is not None
    assert (customer.name, customer.email) == ("Road Runner Inc.", "meep@example.com")
    (entry,) = _audit(world, "customer.updated")
    assert entry.actor == "ada@acme.example"
    assert json.loads(entry.detail.removeprefix("customer 1235 ")) == {
        "email": {"old": "", "new": "meep@example.com"},
        "name": {"old": "Road Runner", "new": "Road Runner Inc."},
    }
    ((event_type, body),) = _outbox(world)
    assert event_type == "customer.updated"
    assert body["data"]["previous"] == {"email": "", "name": "Road Runner"}
    # The same form again changes nothing, and says so: no audit entry, no event.
    same = dashboard.post("/customers/1235/edit", {**current, "name": "Road Runner Inc.", "email": "meep@example.com"})
    assert same.headers["location"] == "/customers/1235?notice=unchanged"
    assert len(_audit(world, "customer.updated")) == 1
    assert len(_outbox(world)) == 1
    # A wrong field: said beside it, nothing saved.
    wrong = dashboard.post("/customers/1235/edit", {**current, "email": "nope", "name": "Kept out"})
    assert wrong.status_code == 400
    assert _field_error(wrong.text, "email") == _api_error(world, {"email": "nope"}, "PATCH", "/api/v1/customers/1235")
    customer = run(world.billing.customer(world.acme.id, 1235))
    assert customer is not None
    assert customer.name == "Road Runner Inc."


def test_editing_another_companys_customer_or_none_is_not_found(world: World) -> None:
    dashboard = admin_of_acme(world)
    for path in ("/customers/77/edit", "/customers/987654/edit"):
        assert dashboard.get(path).status_code == 404
        assert dashboard.post(path, {"name": "Mine now"}).status_code == 404
        assert dashboard.post(path.replace("edit", "delete"), {"confirm": "yes"}).status_code == 404
        assert dashboard.post(path.replace("edit", "portal"), {"password": PASSWORD}).status_code == 404
    homer = run(world.billing.customer(world.globex.id, 77))
    assert homer is not None
    assert homer.name == "Homer Simpson"


def test_every_customer_form_needs_the_csrf_token(world: World) -> None:
    dashboard = admin_of_acme(world)
    for path in ("/customers/new", "/customers/1235/edit", "/customers/1235/delete", "/customers/1235/portal"):
        forged = dashboard.client.post(path, data={"csrf_token": "forged", "name": "X", "confirm": "yes"})
        assert forged.status_code == 403
    assert run(world.billing.customer(world.acme.id, 1235)) is not None
    assert _audit(world, "customer.updated") == []


def test_delete_asks_first_then_deletes_and_signs_the_customer_out(world: World) -> None:
    dashboard = admin_of_acme(world)
    portal = signed_in(world, customer_id=1234567890)
    assert portal.get("/").status_code == 200
    ask = dashboard.post("/customers/1234567890/delete")
    assert ask.status_code == 200
    assert "Delete Seed Sample?" in text_of(ask.text)
    assert 'name="confirm" value="yes"' in ask.text
    assert '<a href="/customers" aria-current="page">Customers</a>' in ask.text
    assert run(world.billing.customer(world.acme.id, 1234567890)) is not None
    done = dashboard.post("/customers/1234567890/delete", {"confirm": "yes"})
    assert done.status_code == 303
    assert done.headers["location"] == "/customers?notice=deleted"
    listed = dashboard.get(done.headers["location"]).text
    assert "The customer is deleted, and signed out of the portal." in listed
    assert 1234567890 not in _ids(listed)
    assert run(world.billing.customer(world.acme.id, 1234567890)) is None
    assert portal.get("/").status_code != 200  # signed out, as the API's delete does
    (entry,) = _audit(world, "customer.deleted")
    assert json.loads(entry.detail.removeprefix("customer 1234567890 "))["name"] == "Seed Sample"
    assert dashboard.post("/customers/1234567890/delete", {"confirm": "yes"}).status_code == 404


def test_a_customer_with_documents_is_not_deleted(world: World) -> None:
    dashboard = admin_of_acme(world)
    refused = dashboard.post(f"/customers/{WILE_ID}/delete", {"confirm": "yes"})
    assert refused.status_code == 409
    assert _api_error(world, {}, "DELETE", f"/api/v1/customers/{WILE_ID}") in unescape(refused.text)
    assert run(world.billing.customer(world.acme.id, WILE_ID)) is not None
    assert _audit(world, "customer.deleted") == []


# -- the customer's page: sign-ins, their own changes with old and new values, estimate answers ------------


def test_the_page_shows_the_customers_own_changes_sign_ins_and_estimate_answers(world: World) -> None:
    docs = add_documents(world)
    now = world.clock.now
    run(
        world.billing.update_billing_info(
            world.acme.id, WILE_ID, {"email": "wile@acme.test", "city": "Phoenix"}, now=now
        )
    )
    estimate = run(world.billing.get("estimate", Scope(world.acme.id, WILE_ID), docs.estimates["EST-1"]))
    answer = run(
        world.billing.approve_estimate(
            world.acme.id,
            WILE_ID,
            estimate.id,
            approved_by="Wile E. Coyote",
            version=estimate_version(estimate),
            now=now,
            valid_on=None,
        )
    )
    assert answer is Answer.DONE
    signed_in(world, customer_id=WILE_ID)
    dashboard = admin_of_acme(world)
    page = dashboard.get(f"/customers/{WILE_ID}")
    assert page.status_code == 200
    changes = re.search(r'<table class="table" id="billing-changes">.*?</table>', page.text, re.DOTALL)
    assert changes is not None
    rows = [text_of(row) for row in re.findall(r"<tr>.*?</tr>", changes[0], re.DOTALL)]
    assert any("Billing email wile@example.com wile@acme.test" in row for row in rows)
    assert any(row.endswith("City Phoenix") for row in rows)  # it had no city before
    answers = re.search(r'<ul id="estimate-answers">.*?</ul>', page.text, re.DOTALL)
    assert answers is not None
    assert "approved by Wile E. Coyote" in text_of(answers[0])
    sign_ins = re.search(r'<table class="table" id="sign-ins">.*?</table>', page.text, re.DOTALL)
    assert sign_ins is not None
    assert "Signed in Ruby Backend" in text_of(sign_ins[0])
    assert f'href="/settings/developers/sso/log?customer={WILE_ID}"' in page.text
    text = text_of(page.text)
    assert "Estimates" in text
    assert "EST-1" in text
    assert "Credit notes" in text


def test_a_billing_change_keeps_old_and_new_values_in_its_event_row(world: World) -> None:
    now = world.clock.now
    run(world.billing.update_billing_info(world.acme.id, WILE_ID, {"email": "new@example.com"}, now=now))
    (event,) = run(world.billing.customer_events(world.acme.id, customer_id=WILE_ID))
    assert json.loads(event.detail) == {
        "fields": ["email"],
        "changes": {"email": {"old": "wile@example.com", "new": "new@example.com"}},
    }


# -- open the portal as the customer ------------------------------------------------------------------------


def test_the_portal_link_needs_the_password_is_audited_and_signs_in_once(world: World) -> None:
    dashboard = admin_of_acme(world)
    page = dashboard.get("/customers/1235")
    assert 'action="/customers/1235/portal" target="_blank"' in page.text
    # Browsers apply form-action to the redirect to the portal: both pages name its origin.
    assert "form-action 'self' https://acme.localhost;" in page.headers["content-security-policy"]
    asked = dashboard.post("/customers/1235/portal")
    assert asked.status_code == 200
    assert "Confirm your password" in asked.text
    assert "form-action 'self' https://acme.localhost;" in asked.headers["content-security-policy"]
    assert _audit(world, "customer.portal_opened") == []
    wrong = dashboard.post("/customers/1235/portal", {"password": "not it"})
    assert wrong.status_code == 403
    made = dashboard.post("/customers/1235/portal", {"password": PASSWORD})
    assert made.status_code == 303
    link = made.headers["location"]
    assert link.startswith("https://acme.localhost/login/")
    claims = jwt.decode(link.rpartition("/")[2], options={"verify_signature": False})
    assert claims["sub"] == 1235
    assert claims["exp"] - claims["iat"] == 60
    assert claims["iss"] == "billportal dashboard: ada@acme.example"
    (entry,) = _audit(world, "customer.portal_opened")
    assert entry.actor == "ada@acme.example"
    assert claims["jti"] in entry.detail
    assert "eyJ" not in entry.detail  # the link itself is never kept
    portal = world.client()
    first = portal.get(link.removeprefix("https://acme.localhost"))
    assert first.status_code == 303
    assert portal.get("/").status_code == 200
    again = world.client().get(link.removeprefix("https://acme.localhost"))
    assert again.status_code == 401  # single use
    (event,) = run(world.store.sign_in_events(world.acme.id, customer_id=1235, result="success"))
    assert (event.issuer, event.jti) == ("billportal dashboard: ada@acme.example", claims["jti"])
    shown = dashboard.get("/customers/1235").text
    assert "billportal dashboard: ada@acme.example" in unescape(shown)


def test_the_portal_link_lives_a_minute(world: World) -> None:
    dashboard = admin_of_acme(world)
    link = dashboard.post("/customers/1235/portal", {"password": PASSWORD}).headers["location"]
    world.clock.advance(60 + world.acme.policy.leeway + 1)  # a minute, and the clock skew the policy allows
    assert world.client().get(link.removeprefix("https://acme.localhost")).status_code == 401


def test_the_portal_link_follows_the_companys_policy(world: World) -> None:
    dashboard = admin_of_acme(world)
    assert dashboard.post("/customers/1235/portal", {"password": PASSWORD}).status_code == 303  # sudo from now on
    acme = world.company("acme")
    policy = PolicySettings.of(acme)
    run(sso.update_policy(world.store, acme, replace(policy, allowed_issuers=("Ruby Backend",)), CLI, world.clock.now))
    refused = dashboard.post("/customers/1235/portal")
    assert refused.status_code == 409
    assert "billportal dashboard" in unescape(refused.text)
    acme = world.company("acme")
    allowed = ("Ruby Backend", "billportal dashboard")
    run(sso.update_policy(world.store, acme, replace(policy, allowed_issuers=allowed), CLI, world.clock.now))
    link = dashboard.post("/customers/1235/portal").headers["location"]
    assert jwt.decode(link.rpartition("/")[2], options={"verify_signature": False})["iss"] == "billportal dashboard"
    assert world.client().get(link.removeprefix("https://acme.localhost")).status_code == 303
    run(sso.set_enabled(world.store, world.company("acme"), False, CLI, world.clock.now))
    off = dashboard.post("/customers/1235/portal")
    assert off.status_code == 409
    assert "Single sign-on is off" in off.text


def test_a_field_the_form_does_not_send_is_left_as_it_is(world: World) -> None:
    dashboard = admin_of_acme(world)
    saved = dashboard.post(f"/customers/{WILE_ID}/edit", {"phone": "+1 505 555 0134"})
    assert saved.headers["location"] == f"/customers/{WILE_ID}?notice=saved"
    customer = run(world.billing.customer(world.acme.id, WILE_ID))
    assert customer is not None
    assert (customer.name, customer.email, customer.phone) == ("Wile E. Coyote", "wile@example.com", "+1 505 555 0134")
    nameless = dashboard.post("/customers/new", {"email": "x@example.com"})
    assert nameless.status_code == 400
    assert _field_error(nameless.text, "name") == _api_error(world, {"email": "x@example.com"})
