"""Every string an admin reads is marked for translation (the dashboard domain, core/i18n.py): each dashboard
page, rendered in a pseudo-locale that brackets every translated string, shows no words outside the brackets
but the data it is about. The dashboard itself stays English (tests/functional/test_dashboard.py)."""

from __future__ import annotations

import pytest

from billportal.core import countries, i18n
from billportal.dashboard.admins import ADMINS
from billportal.dashboard.customers import CUSTOMERS
from billportal.dashboard.imports import IMPORTS
from billportal.dashboard.mail import EMAIL
from billportal.dashboard.views import API_KEYS, COMPANY, PAYMENTS, SSO
from billportal.dashboard.webhooks import WEBHOOKS
from billportal.sso.pages import PAGE_NAMES
from billportal.sso.reasons import Reason
from tests import factories
from tests.conftest import World, run
from tests.functional.dashboard_support import ADMIN_EMAIL, admin_of_acme, form_token
from tests.functional.portal_world import add_documents
from tests.functional.pseudo_locale import data_words, pseudo, unmarked

__all__ = ["pseudo"]  # a fixture, imported so that it is found here

# The dashboard's data beside the shared world's: the admin, the other customers, the documents' lines, the
# hosts; and the codes an admin types or reads in the API: countries, currencies, locales, time zones, the
# sign-in log's reason codes and the portal's page ids.
_DATA: tuple[str, ...] = (
    ADMIN_EMAIL,
    "Road Runner",
    "Seed Sample",
    "Dehydrated boulders",
    "https://hooks.example/in",
    "USD EUR",
)
_DATA += (
    "https://dashboard.localhost",
    "https://acme.localhost",
    "testclient",
    "cli",
    "Europe/Paris",
    "America/Denver",
)
_DATA += (*(name for _code, name in countries.countries()), *i18n.LOCALES, *Reason, *PAGE_NAMES)
# Verbatim in <code>: claims, headers, ids, keys' prefixes, URLs; never translated.
_LITERAL = ("code", "pre")
PAGES = (
    "/",
    "/account",
    COMPANY,
    PAYMENTS,
    EMAIL,
    CUSTOMERS,
    f"{CUSTOMERS}/new",
    f"{CUSTOMERS}/1234",
    f"{CUSTOMERS}/1234/edit",
    f"{CUSTOMERS}/1234/contacts",
    "/invoices",
    "/invoices/new",
    "/payments",
    "/payments/new",
    "/credit-notes",
    "/credit-notes/new",
    "/estimates",
    "/estimates/new",
    IMPORTS,
    ADMINS,
    SSO,
    f"{SSO}/policy",
    f"{SSO}/try",
    f"{SSO}/log",
    f"{SSO}/revoke",
    API_KEYS,
    WEBHOOKS,
    f"{WEBHOOKS}/deliveries",
    "/audit",
)


@pytest.mark.usefixtures("pseudo")
def test_every_dashboard_page_marks_every_string(world: World) -> None:
    docs = add_documents(world)
    run(factories.webhook_endpoint(world.store, world.acme.id, now=world.clock.now, url="https://hooks.example/in"))
    dashboard = admin_of_acme(world)
    invoice = min(docs.invoices.values())
    pages = [*PAGES, f"/invoices/{invoice}", f"/invoices/{invoice}/edit"]
    pages += [f"/estimates/{min(docs.estimates.values())}", f"/credit-notes/{min(docs.credit_notes.values())}"]
    pages += [f"/payments/{min(docs.payments.values())}", f"/payments/{min(docs.payments.values())}/edit"]
    data = data_words(_DATA)
    left: dict[str, list[str]] = {}
    for path in pages:
        response = dashboard.get(path)
        assert response.status_code == 200, path
        words = unmarked(response.text, data, _LITERAL)
        if words:
            left[path] = words
    assert not left, "\n".join(f"{path}: {' '.join(words)}" for path, words in left.items())


@pytest.mark.usefixtures("pseudo")
def test_the_sign_in_page_and_its_answers_mark_every_string(world: World) -> None:
    visitor = world.client("dashboard")
    page = visitor.get("/sign-in")
    assert page.status_code == 200
    wrong = visitor.post("/sign-in", data={"csrf_token": form_token(page.text), "email": ADMIN_EMAIL, "password": "x"})
    assert wrong.status_code == 401
    for response in (page, wrong, visitor.get("/customers", follow_redirects=True)):
        assert not unmarked(response.text, data_words(), _LITERAL), (response.url, response.text)
