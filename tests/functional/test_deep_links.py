"""Deep links: a document's page survives sign-in, and ``redirect_to`` may name one, never another site."""

from __future__ import annotations

import pytest

from billportal.sso.pages import LANDING_HINT
from tests import factories
from tests.conftest import World, run
from tests.functional.portal_world import Docs, add_documents
from tests.functional.test_api import dashboard, new_key

# kind in Docs, portal path, the number of one of Acme's 1234's documents
DOCUMENT_PAGES = [
    ("invoices", "/invoices/{id}", "INV-0001"),
    ("payments", "/payments/{id}", "PAY-1001"),
    ("credit_notes", "/credit-notes/{id}", "CN-2"),
    ("estimates", "/estimates/{id}", "EST-1"),
]
NEXT = "__Host-bp_next"  # https portal: the __Host- prefix, Secure, host-only


@pytest.fixture
def docs(world: World) -> Docs:
    return add_documents(world)


def path_of(docs: Docs, kind: str, path: str, number: str) -> str:
    return path.format(id=getattr(docs, kind)[number])


@pytest.mark.parametrize(("kind", "path", "number"), DOCUMENT_PAGES, ids=[p[1] for p in DOCUMENT_PAGES])
def test_a_signed_out_visit_comes_back_to_the_same_document_after_sign_in(
    world: World, docs: Docs, kind: str, path: str, number: str
) -> None:
    wanted = path_of(docs, kind, path, number)
    browser = world.client()
    asked = browser.get(wanted)
    assert asked.status_code == 401
    cookie = next(c for c in asked.headers.get_list("set-cookie") if c.startswith(f"{NEXT}="))
    assert cookie == f"{NEXT}={wanted}; Path=/; Max-Age=900; HttpOnly; SameSite=Lax; Secure"

    landed = browser.get(f"/login/{world.token()}")
    assert landed.status_code == 303
    assert landed.headers["location"] == wanted
    assert any(c.startswith(f"{NEXT}=;") and "Max-Age=0" in c for c in landed.headers.get_list("set-cookie"))
    assert browser.get(wanted).status_code == 200
    # Remembered once: the next sign-in lands where its link says.
    assert browser.get(f"/login/{world.token()}").headers["location"] == "/"


@pytest.mark.parametrize(("kind", "path", "number"), DOCUMENT_PAGES, ids=[p[1] for p in DOCUMENT_PAGES])
def test_redirect_to_may_name_a_documents_page(world: World, docs: Docs, kind: str, path: str, number: str) -> None:
    wanted = path_of(docs, kind, path, number)
    landed = world.client().get(f"/login/{world.token()}", params={"redirect_to": wanted})
    assert landed.headers["location"] == wanted


def test_the_seed_products_account_page_id_is_my_account(world: World) -> None:
    assert world.client().get(f"/login/{world.token()}", params={"redirect_to": "account"}).headers["location"] == "/"


@pytest.mark.parametrize(
    "hostile",
    [
        "//evil.example/invoices/3",
        "https://evil.example/invoices/3",
        "/invoices/3/../../evil",
        "/invoices/3?next=//evil.example",
        "/invoices/03",
        "/invoices/0",
        "/invoices/3/pdf",
        "/invoices/99999999999999999999",
        "/\\evil.example",
        "/invoices/3\r\nLocation: //evil.example",
    ],
)
def test_no_remembered_or_named_path_leads_off_the_portal(world: World, docs: Docs, hostile: str) -> None:
    by_link = world.client().get(f"/login/{world.token()}", params={"redirect_to": hostile})
    assert by_link.headers["location"] == "/"
    forged = world.client()
    forged.cookies.set(NEXT, hostile.replace("\r\n", " "), domain="acme.localhost")
    assert forged.get(f"/login/{world.token()}").headers["location"] == "/"


def test_a_link_to_another_page_wins_over_the_remembered_document(world: World, docs: Docs) -> None:
    browser = world.client()
    browser.get(f"/invoices/{docs.invoices['INV-0001']}")
    assert browser.get(f"/login/{world.token()}", params={"redirect_to": "pay"}).headers["location"] == "/pay"


def test_remote_sign_in_gets_the_page_id_and_the_fresh_link_lands_on_the_document(world: World, docs: Docs) -> None:
    run(factories.company_settings(world.store, world.acme, sign_in_url="https://app.acme.example/portal-login"))
    wanted = f"/invoices/{docs.invoices['INV-0001']}"
    browser = world.client()
    sent = browser.get(wanted)
    assert sent.status_code == 303
    # The company's app gets the seed product's page id, as ever, and makes a link with it.
    assert sent.headers["location"] == "https://app.acme.example/portal-login?redirect_to=invoices"
    landed = browser.get(f"/login/{world.token()}", params={"redirect_to": "invoices"})
    assert landed.headers["location"] == wanted


def test_a_post_is_never_remembered(world: World) -> None:
    refused = world.client().post("/pay", data={"csrf_token": "x"})
    assert not any(c.startswith(f"{NEXT}=") for c in refused.headers.get_list("set-cookie"))


def test_the_api_makes_links_to_a_document_and_refuses_other_paths(world: World, docs: Docs) -> None:
    api = dashboard(world, new_key(world))
    wanted = f"/estimates/{docs.estimates['EST-1']}"
    made = api.post("/api/v1/customers/1234/sign_in_links", json={"redirect_to": wanted})
    assert made.status_code == 201, made.text
    link = made.json()["url"].removeprefix("https://acme.localhost")
    assert world.client().get(link).headers["location"] == wanted
    refused = api.post("/api/v1/customers/1234/sign_in_links", json={"redirect_to": "//evil.example"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_field"
    assert refused.json()["error"]["message"] == f"redirect_to {LANDING_HINT}"
