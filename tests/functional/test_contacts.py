"""A customer's contacts: managed in the dashboard, the API and the portal's Contacts page; their email sign-in.

The real app over HTTP on a real database; email sign-in's mail goes through a real SMTP server.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from billportal.api.openapi import openapi_document
from billportal.storage import schema as t
from tests import factories
from tests.conftest import World, run
from tests.functional.dashboard_support import admin_of_acme, form_token
from tests.functional.test_api import api, dashboard, error, new_key
from tests.functional.test_email_sign_in import Mail, _button, _signed_in, cli, mail, smtp
from tests.functional.test_signin import COOKIE as SSO_COOKIE

__all__ = ["api", "cli", "mail", "smtp"]  # fixtures, imported so that they are found here

HOSTILE = ["", " ", "\x00", "a" * 5000, "\u202e", "<script>", "9" * 30, "-1", "manage\x00", "x@", "@x", "a@b@c"]


def audit_rows(world: World) -> list[tuple[str, str, str]]:
    a = t.audit_events.c
    rows = run(
        world.store.read(
            lambda conn: conn.execute(
                select(a.actor, a.action, a.detail).where(a.company_id == world.acme.id).order_by(a.id)
            ).all()
        )
    )
    return [(row.actor, row.action, row.detail) for row in rows]


def contacts_of(world: World, customer_id: int = 1234) -> list[tuple[str, str, str]]:
    c = t.contacts.c
    rows = run(
        world.store.read(
            lambda conn: conn.execute(
                select(c.name, c.email, c.role)
                .where(c.company_id == world.acme.id, c.customer_id == customer_id)
                .order_by(c.id)
            ).all()
        )
    )
    return [(row.name, row.email, row.role) for row in rows]


def sign_in_by_email(mail: Mail, address: str) -> tuple[TestClient, Any]:
    """A browser signed in through the emailed link's confirmation button; and the button's answer."""
    browser = mail.client()
    assert mail.ask(browser, address).status_code == 200
    path, _code = mail.newest(address.lower())
    answer = browser.post("/login/email/confirm", data=_button(browser.get(path).text))
    assert _signed_in(answer), answer.text
    return browser, answer


def sso_browser(world: World, customer_id: int = 1234) -> TestClient:
    browser = world.client()
    token = world.token({"sub": customer_id, "iss": "Ruby Backend", "exp": world.clock.now + 600})
    assert browser.get(f"/login/{token}").status_code == 303
    assert browser.cookies.get(SSO_COOKIE)
    return browser


def csrf(browser: TestClient) -> str:
    return form_token(browser.get("/").text)


# -- the dashboard ---------------------------------------------------------------------------------------


def test_admins_add_change_and_remove_a_customers_contacts_in_the_audit_trail(world: World) -> None:
    admin = admin_of_acme(world)
    page = admin.get("/customers/1234")
    assert page.status_code == 200
    assert 'href="/customers/1234/contacts"' in page.text
    assert admin.get("/customers/1234/contacts").status_code == 200

    added = admin.post("/customers/1234/contacts", {"name": "Pat Payer", "email": "Pat@Example.com", "role": "pay"})
    assert added.status_code == 303
    assert contacts_of(world) == [("Pat Payer", "pat@example.com", "pay")]
    listed = admin.get(added.headers["location"])
    assert "Pat Payer" in listed.text
    assert "pat@example.com" in listed.text

    again = admin.post("/customers/1234/contacts", {"name": "Pat Again", "email": "pat@example.com", "role": "view"})
    assert again.status_code == 400
    assert "already has a contact with that email" in again.text
    assert len(contacts_of(world)) == 1

    contact_id = re.search(r'name="contact" value="(\d+)"', listed.text)
    assert contact_id is not None
    changed = admin.post("/customers/1234/contacts/change", {"contact": contact_id[1], "role": "manage"})
    assert changed.status_code == 303
    assert contacts_of(world) == [("Pat Payer", "pat@example.com", "manage")]
    removed = admin.post("/customers/1234/contacts/change", {"contact": contact_id[1], "action": "remove"})
    assert removed.status_code == 303
    assert contacts_of(world) == []

    trail = [(action, detail) for _actor, action, detail in audit_rows(world) if action.startswith("contact.")]
    assert trail == [
        ("contact.added", "customer 1234: Pat Payer <pat@example.com>, Pay"),
        ("contact.changed", "customer 1234: Pat Payer <pat@example.com>, Manage billing"),
        ("contact.removed", "customer 1234: Pat Payer <pat@example.com>, Manage billing"),
    ]
    assert "Contact added" in admin.get("/audit").text


def test_the_dashboard_refuses_bad_input_with_a_page_never_a_500(world: World) -> None:
    admin = admin_of_acme(world)
    for value in HOSTILE:
        for field in ("name", "email", "role"):
            fields = {"name": "Pat", "email": "pat@example.com", "role": "view", field: value}
            answer = admin.post("/customers/1234/contacts", fields)
            assert answer.status_code in (303, 400), (field, value, answer.status_code)
        answer = admin.post("/customers/1234/contacts/change", {"contact": value, "role": value})
        assert answer.status_code in (303, 400, 404), (value, answer.status_code)
    assert admin.get("/customers/999999/contacts").status_code == 404
    assert (
        admin.post("/customers/999999/contacts", {"name": "P", "email": "p@x.example", "role": "view"}).status_code
        == 404
    )
    # globex's customer 77 is not acme's
    assert admin.get("/customers/77/contacts").status_code == 404
    assert all(role in ("view", "pay", "manage") for _n, _e, role in contacts_of(world))


def test_the_company_turns_its_customers_contacts_page_on_and_off(world: World) -> None:
    admin = admin_of_acme(world)
    assert not world.company("acme").contacts_page
    assert admin.post("/settings/contacts-page", {"enabled": "on", "back": "1234"}).status_code == 303
    assert world.company("acme").contacts_page
    assert admin.post("/settings/contacts-page", {"back": "1234"}).status_code == 303
    assert not world.company("acme").contacts_page
    actions = [(action, detail) for _a, action, detail in audit_rows(world) if action == "company.contacts_page"]
    assert actions == [("company.contacts_page", "on"), ("company.contacts_page", "off")]


# -- the API ---------------------------------------------------------------------------------------------


def test_contacts_through_the_api(world: World, api: TestClient) -> None:
    body = {"name": "Ann Accounts", "email": "Ann@Example.com", "role": "view"}
    first = api.post("/api/v1/customers/1234/contacts", json=body, headers={"Idempotency-Key": "contact-1"})
    assert first.status_code == 201, first.text
    contact = first.json()
    assert contact["object"] == "contact"
    assert contact["email"] == "ann@example.com"
    assert contact["customer_id"] == 1234
    replay = api.post("/api/v1/customers/1234/contacts", json=body, headers={"Idempotency-Key": "contact-1"})
    assert replay.status_code == 201
    assert replay.json() == contact
    assert replay.headers.get("idempotent-replayed") == "true"
    error(api.post("/api/v1/customers/1234/contacts", json=body), 409, "contact_exists", "email")

    listed = api.get("/api/v1/customers/1234/contacts").json()
    assert [c["id"] for c in listed["data"]] == [contact["id"]]
    assert api.get(f"/api/v1/contacts/{contact['id']}").json() == contact
    changed = api.patch(f"/api/v1/contacts/{contact['id']}", json={"role": "manage"})
    assert changed.status_code == 200
    assert changed.json()["role"] == "manage"
    gone = api.delete(f"/api/v1/contacts/{contact['id']}")
    assert gone.json() == {"object": "contact", "id": contact["id"], "deleted": True}
    error(api.get(f"/api/v1/contacts/{contact['id']}"), 404, "not_found")
    error(api.get("/api/v1/customers/999999/contacts"), 404, "not_found")
    error(api.post("/api/v1/customers/999999/contacts", json=body), 404, "not_found")
    actors = {actor for actor, action, _d in audit_rows(world) if action.startswith("contact.")}
    assert len(actors) == 1
    assert next(iter(actors)).startswith("api:")

    # globex's key sees none of acme's contacts
    theirs = dashboard(world, new_key(world, "globex"))
    error(theirs.get(f"/api/v1/contacts/{contact['id']}"), 404, "not_found")
    error(theirs.get("/api/v1/customers/1235/contacts"), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "A", "email": "a@example.com"},
        {"name": "A", "email": "a@example.com", "role": "owner"},
        {"name": "A", "email": "not an address", "role": "view"},
        {"name": "", "email": "a@example.com", "role": "view"},
        {"name": "A\x00", "email": "a@example.com", "role": "view"},
        {"name": "A" * 201, "email": "a@example.com", "role": "view"},
        {"name": 7, "email": "a@example.com", "role": "view"},
        {"name": "A", "email": "a@example.com", "role": "view", "customer_id": 1235},
        {"name": "A", "email": "a@example.com", "role": "view", "id": 5},
    ],
)
def test_the_api_refuses_bad_contacts_with_a_stable_code(api: TestClient, body: dict[str, Any]) -> None:
    answer = api.post("/api/v1/customers/1234/contacts", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] in ("missing_field", "invalid_field", "unknown_field")


def test_the_openapi_document_describes_contacts() -> None:
    paths = openapi_document()["paths"]
    assert set(paths["/customers/{id}/contacts"]) == {"get", "post"}
    assert set(paths["/contacts/{id}"]) == {"get", "patch", "delete"}
    post = paths["/customers/{id}/contacts"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])


# -- the portal's Contacts page -------------------------------------------------------------------------


def test_the_contacts_page_is_read_only_until_the_company_allows_it(world: World) -> None:
    run(
        factories.contact(
            world.store, world.acme, 1234, now=world.clock.now, name="Ann Accounts", email="ann@x.example"
        )
    )
    browser = sso_browser(world)
    page = browser.get("/contacts")
    assert page.status_code == 200
    assert "Ann Accounts" in page.text
    assert "Add a contact" not in page.text
    assert 'href="/contacts"' not in browser.get("/").text
    token = csrf(browser)
    refused = browser.post("/contacts", data={"csrf_token": token, "name": "M", "email": "m@x.example", "role": "view"})
    assert refused.status_code == 404
    assert len(contacts_of(world)) == 1


def test_the_customer_and_a_managing_contact_manage_contacts_in_the_portal(world: World, mail: Mail) -> None:
    run(factories.company_settings(world.store, world.acme, contacts_page=True))
    world.store.forget_company("acme")
    browser = sso_browser(world)
    assert 'href="/contacts"' in browser.get("/").text
    token = csrf(browser)
    added = browser.post(
        "/contacts", data={"csrf_token": token, "name": "Mia Manager", "email": "mia@x.example", "role": "manage"}
    )
    assert added.status_code == 303
    for value in HOSTILE:
        bad = browser.post("/contacts", data={"csrf_token": token, "name": value, "email": value, "role": value})
        assert bad.status_code == 400, value
        odd = browser.post("/contacts/change", data={"csrf_token": token, "contact": value, "role": value})
        assert odd.status_code in (400, 404), value
    assert browser.post("/contacts", data={"name": "N", "email": "n@x.example", "role": "view"}).status_code == 403

    mia, _answer = sign_in_by_email(mail, "mia@x.example")
    assert "Mia Manager" in mia.get("/").text
    token = csrf(mia)
    assert (
        mia.post(
            "/contacts", data={"csrf_token": token, "name": "Vic Viewer", "email": "vic@x.example", "role": "view"}
        ).status_code
        == 303
    )
    assert contacts_of(world) == [("Mia Manager", "mia@x.example", "manage"), ("Vic Viewer", "vic@x.example", "view")]
    actors = [actor for actor, action, _d in audit_rows(world) if action == "contact.added"]
    assert actors == ["customer Wile E. Coyote (#1234)", "contact Mia Manager <mia@x.example>"]


def test_a_german_session_reads_the_contact_forms_errors_in_german(world: World) -> None:
    run(factories.company_settings(world.store, world.acme, contacts_page=True))
    world.store.forget_company("acme")
    browser = world.client()
    token = world.token({"sub": 1234, "iss": "Ruby Backend", "exp": world.clock.now + 600, "locale": "de"})
    landing = browser.get(f"/login/{token}")
    assert browser.get(landing.headers["location"]).status_code == 200  # the session speaks German from here
    token = csrf(browser)
    fine = {"csrf_token": token, "name": "Pat Payer", "email": "pat@x.example", "role": "pay"}
    for change, german in [
        ({"email": "keine Adresse"}, "Geben Sie eine gültige E-Mail-Adresse ein."),
        ({"name": " "}, "Der Name muss 1 bis 200 Zeichen lang sein."),
        ({"name": "P" * 201}, "Der Name muss 1 bis 200 Zeichen lang sein."),
        ({"role": "owner"}, "Wählen Sie als Rolle „Nur ansehen“, „Bezahlen“ oder „Abrechnung verwalten“."),
    ]:
        refused = browser.post("/contacts", data=fine | change)
        assert refused.status_code == 400, change
        assert '<html lang="de">' in refused.text
        assert f'<p class="notice error" role="alert">{german}</p>' in refused.text, change
    assert browser.post("/contacts", data=fine).status_code == 303
    twice = browser.post("/contacts", data=fine)
    assert "Für diese E-Mail-Adresse gibt es bei diesem Kunden bereits einen Kontakt." in twice.text
    contact_id = re.search(r'name="contact" value="(\d+)"', twice.text)
    assert contact_id is not None
    odd = browser.post("/contacts/change", data={"csrf_token": token, "contact": contact_id[1], "role": "boss"})
    assert odd.status_code == 400
    assert "Wählen Sie als Rolle" in odd.text
    assert contacts_of(world) == [("Pat Payer", "pat@x.example", "pay")]


# -- a contact signs in by email -------------------------------------------------------------------------


def test_a_contact_signs_in_by_email_as_that_contact_and_the_log_names_them(world: World, mail: Mail) -> None:
    contact = run(
        factories.contact(world.store, world.acme, 1235, now=world.clock.now, name="Bea Payer", email="bea@x.example")
    )
    browser, answer = sign_in_by_email(mail, "BEA@x.example")
    assert answer.headers["location"] == "/"
    home = browser.get("/")
    assert home.status_code == 200
    assert "Bea Payer, Road Runner" in home.text  # the contact, of customer 1235
    session = run(
        world.store.read(lambda conn: conn.execute(select(t.sessions.c.customer_id, t.sessions.c.contact_id)).all())
    )
    assert [tuple(row) for row in session] == [(1235, contact.id)]
    events = run(world.store.sign_in_events(world.acme.id, limit=5))
    assert (events[0].method, events[0].result, events[0].customer_id, events[0].contact_id) == (
        "email",
        "success",
        1235,
        contact.id,
    )
    admin = admin_of_acme(world)
    assert "contact: Bea Payer &lt;bea@x.example&gt;" in admin.get("/settings/developers/sso/log").text
    api = dashboard(world, new_key(world))
    listed = api.get("/api/v1/sign_in_events").json()["data"]
    assert listed[0]["contact_id"] == contact.id


def test_a_removed_contacts_link_and_session_stop_working(world: World, mail: Mail) -> None:
    contact = run(factories.contact(world.store, world.acme, 1235, now=world.clock.now, email="gone@x.example"))
    browser, _answer = sign_in_by_email(mail, "gone@x.example")
    assert browser.get("/").status_code == 200
    later = mail.client()
    mail.ask(later, "gone@x.example")
    path, _code = mail.newest("gone@x.example")
    page = later.get(path)
    api = dashboard(world, new_key(world))
    assert api.delete(f"/api/v1/contacts/{contact.id}").status_code == 200
    assert browser.get("/").status_code in (303, 401)  # signed out
    assert not _signed_in(later.post("/login/email/confirm", data=_button(page.text)))
