"""The portal in every shipped language, over HTTP, and how its language is chosen."""

from __future__ import annotations

import io
import re
from importlib import resources

import pytest
from babel.messages.pofile import read_po
from pypdf import PdfReader
from starlette.testclient import TestClient

from billportal.core import i18n
from billportal.services import companies as profile
from billportal.services.audit import Actor
from tests import factories
from tests.conftest import World, run
from tests.functional.portal_world import Docs, add_documents, csrf_token, hidden_fields, signed_in, text_of

PAGES = [
    "/",
    "/invoices",
    "/payments",
    "/credit-notes",
    "/estimates",
    "/statements/balance-forward",
    "/statements/open-item",
    "/billing-info",
    "/pay",
    "/payment-methods",
    "/security",
    "/accounts",
    "/contacts",
]
# The pages before signing in when the company turns email sign-in on (the link's own page needs a mailed link).
EMAIL_SIGN_IN_PAGES = ["/login", "/login/email/not-a-live-link"]
# Words the language writes as English does (and "balance âgée"): not a sign of a missing translation.
_SAME: dict[str, frozenset[str]] = {
    "de": frozenset({"Status", "Saldo", "Portal", "Menu", "Datum", "Land"}),
    "fr": frozenset({"Actions", "Date", "Total", "Document", "Pages", "Menu", "Devis", "Balance", "Page", "minutes"}),
    "es": frozenset({"Total", "Subtotal", "Portal", "Error", "Saldo"}),
    "pt_BR": frozenset({"Total", "Subtotal", "Portal", "Menu", "Saldo"}),
    "nl": frozenset({"Status", "Saldo", "Menu", "Datum", "Land", "Document", "Credit"}),
}


def _english_phrases(code: str) -> list[str]:
    """The English text of every catalog entry whose translation differs, placeholders cut out."""
    path = resources.files("billportal") / "locale" / code / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=code)
    phrases = []
    for message in catalog:
        if not isinstance(message.id, str) or not message.id or message.id == message.string:
            continue
        for piece in re.split(r"%\([a-z_]+\)[sd]", message.id):
            phrase = piece.strip(" .,:;()←")
            if len(phrase) > 3 and phrase not in _SAME.get(code, frozenset()):
                phrases.append(phrase)
    return phrases


@pytest.fixture
def docs(world: World) -> Docs:
    return add_documents(world)


def open_everything(world: World) -> None:
    """Email sign-in and the customers' Contacts page on for acme, and a contact to list, so every page shows."""

    async def go() -> None:
        await factories.company_settings(world.store, world.acme, email_sign_in=True, contacts_page=True)
        await factories.contact(
            world.store, world.acme, 1234, now=world.clock.now, name="Wile E. Coyote", email="wile@coyote.example.com"
        )

    run(go())
    world.store.forget_company("acme")


@pytest.fixture
def client(world: World, docs: Docs) -> TestClient:
    open_everything(world)
    return signed_in(world)


def _set_default_locale(world: World, locale: str) -> None:
    async def go() -> None:
        company = await world.store.company("acme")
        assert company is not None
        await profile.update_profile(world.store, company, {"default_locale": locale}, Actor("test"), world.clock.now)

    run(go())
    world.clock.now += 2  # past the one-second company cache


@pytest.mark.parametrize("code", [code for code in i18n.LOCALES if code != "en"])
def test_every_page_speaks_the_language_asked_for(client: TestClient, docs: Docs, code: str) -> None:
    english = _english_phrases(code)
    pages = [*PAGES, f"/invoices/{min(docs.invoices.values())}", f"/estimates/{min(docs.estimates.values())}"]
    pages += [f"/payments/{min(docs.payments.values())}", f"/credit-notes/{min(docs.credit_notes.values())}"]
    for path in pages:
        response = client.get(path, params={"locale": code})
        assert response.status_code == 200, path
        assert f'<html lang="{i18n.html_lang(code)}">' in response.text
        text = text_of(response.text)
        left = [phrase for phrase in english if re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", text)]
        assert not left, (code, path, left)
    # Before signing in, the browser's language is the one known.
    visitor = TestClient(
        client.app, base_url=str(client.base_url), follow_redirects=False, headers={"Accept-Language": code}
    )
    answers = [visitor.get(path) for path in EMAIL_SIGN_IN_PAGES]
    answers.append(visitor.post("/login/email", data={"email": "nobody@example.com"}))
    answers.append(visitor.post("/login/code", data={"email": "nobody@example.com", "code": "123456"}))
    for response in answers:
        assert response.status_code in (200, 401), response.url
        text = text_of(response.text)
        left = [phrase for phrase in english if re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", text)]
        assert not left, (code, response.url, left)


def test_german_money_and_dates_on_the_invoice(client: TestClient, docs: Docs) -> None:
    page = client.get(f"/invoices/{min(docs.invoices.values())}", headers={"Accept-Language": "de"})
    text = text_of(page.text)
    assert re.search(r"\b\d{2}\.\d{2}\.\d{4}\b", text)
    assert re.search(r"\d+,\d{2}\s(€|\$)", text)
    assert "Rechnung" in text


def test_accept_language_then_the_company_default(world: World, docs: Docs) -> None:
    client = signed_in(world)
    assert "Mein Konto" in client.get("/", headers={"Accept-Language": "de-DE,de;q=0.9"}).text
    unknown = client.get("/", headers={"Accept-Language": "ja"})
    assert "My account" in unknown.text
    assert '<html lang="en">' in unknown.text
    _set_default_locale(world, "nl")
    assert "Mijn account" in client.get("/", headers={"Accept-Language": "ja"}).text
    assert "Mein Konto" in client.get("/", headers={"Accept-Language": "de"}).text


def test_query_beats_the_browser_and_is_kept_in_the_session(client: TestClient) -> None:
    assert "Mon compte" in client.get("/", params={"locale": "fr"}, headers={"Accept-Language": "de"}).text
    # Kept: the next pages stay French whatever the browser says (and a later ?locale= ranks below it).
    assert "Factures" in client.get("/invoices", headers={"Accept-Language": "de"}).text
    assert "Mon compte" in client.get("/", params={"locale": "es"}).text


def test_the_token_claim_beats_the_query_and_the_browser(world: World, docs: Docs) -> None:
    client = world.client("acme")
    claims = {"sub": 1234, "iss": "Ruby Backend", "exp": world.clock.now + 3600, "locale": "pt-BR"}
    signed = client.get(f"/login/{world.token(claims)}")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/?locale=pt_BR"  # the landing page keeps it for the session
    client.get(signed.headers["location"])
    page = client.get("/", params={"locale": "de"}, headers={"Accept-Language": "fr"})
    assert "Minha conta" in page.text
    assert '<html lang="pt-BR">' in page.text


def test_an_unknown_locale_claim_signs_in_and_is_ignored(world: World, docs: Docs) -> None:
    client = world.client("acme")
    claims = {"sub": 1234, "iss": "Ruby Backend", "exp": world.clock.now + 3600, "locale": ["x" * 50]}
    assert client.get(f"/login/{world.token(claims)}").status_code == 303
    assert "Mein Konto" in client.get("/", headers={"Accept-Language": "de"}).text


def test_the_saved_preference_beats_everything(world: World, docs: Docs) -> None:
    client = world.client("acme")
    claims = {"sub": 1234, "iss": "Ruby Backend", "exp": world.clock.now + 3600, "locale": "fr"}
    signed = client.get(f"/login/{world.token(claims)}")
    assert signed.status_code == 303
    client.get(signed.headers["location"])
    page = client.get("/invoices")
    assert "Factures" in page.text
    form = hidden_fields(page.text, "/locale")
    assert form["next"] == "/invoices"
    switched = client.post("/locale", data={**form, "locale": "nl"})
    assert switched.status_code == 303
    assert switched.headers["location"] == "/invoices"
    assert "Facturen" in client.get("/invoices", params={"locale": "de"}, headers={"Accept-Language": "es"}).text
    # The billing details page shows and saves the same preference.
    details = client.get("/billing-info")
    assert '<option value="nl" lang="nl" selected>' in details.text
    values = dict.fromkeys(("email", "phone", "address_line2", "state", "postal_code", "tax_id"), "")
    values |= {"name": "Acme Buyer", "address_line1": "1 Main St", "city": "Springfield", "country": "US"}
    saved = client.post("/billing-info", data={**values, "csrf_token": csrf_token(details.text), "locale": "es"})
    assert saved.status_code == 303
    assert "Mi cuenta" in client.get("/").text


def test_the_switcher_refuses_a_foreign_page_and_a_stale_form(client: TestClient) -> None:
    form = hidden_fields(client.get("/").text, "/locale")
    away = client.post("/locale", data={**form, "locale": "de", "next": "https://evil.example/"})
    assert away.headers["location"] == "/"
    assert client.post("/locale", data={"csrf_token": "stale", "locale": "de"}).status_code == 403


def test_error_and_signed_out_pages_follow_the_browser_and_offer_links(world: World, docs: Docs) -> None:
    missing = signed_in(world).get("/invoices/987654", headers={"Accept-Language": "fr"})
    assert missing.status_code == 404
    assert "Page introuvable" in missing.text
    client = world.client("acme")
    needed = client.get("/invoices", headers={"Accept-Language": "de"})
    assert "Bitte melden Sie sich an" in needed.text
    out = client.get("/signed-out", params={"locale": "nl"})
    assert "U bent uitgelogd" in out.text
    assert 'href="?locale=de"' in out.text
    assert 'lang="pt-BR"' in out.text
    failed = client.get("/login/not-a-token", headers={"Accept-Language": "es"})
    assert failed.status_code == 401
    assert "Este enlace de inicio de sesión no es válido" in failed.text


def test_pdfs_follow_the_language(client: TestClient, docs: Docs) -> None:
    invoice = client.get(f"/invoices/{min(docs.invoices.values())}/pdf", headers={"Accept-Language": "de"})
    assert invoice.status_code == 200
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(invoice.content)).pages).split())
    assert "RECHNUNGSEMPFÄNGER" in text
    assert "Zwischensumme" in text
    assert re.search(r"\d,\d{2} (€|\$)", text)
    statement = client.get("/statements/open-item/pdf", headers={"Accept-Language": "fr"})
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(statement.content)).pages).split())
    assert "Éléments ouverts" in text
    assert "Balance âgée" in text


def test_paying_in_spanish_a_declined_card_and_a_wrong_field(world: World, docs: Docs) -> None:
    run(factories.payment_settings(world.store, world.acme, gateway="test", test_mode=True, now=world.clock.now))
    client = signed_in(world)
    page = client.get("/pay", params={"locale": "es"}).text  # kept in the session from here on
    assert "Pagar con tarjeta" in page
    token = re.search(r'name="attempt" value="([^"]+)"', page)
    assert token is not None
    form = {"csrf_token": csrf_token(page), "attempt": token[1], "what": "balance", "method": "new"}
    form |= {"card_number": "4000 0000 0000 0002", "card_expiry": "12 / 30", "card_cvc": "123"}
    paid = client.post("/pay", data=form)
    assert paid.status_code == 303
    text = text_of(client.get(paid.headers["location"]).text)
    assert "Su pago no se ha realizado" in text
    assert "Su tarjeta ha sido rechazada. No se ha cobrado nada." in text
    again = client.get("/pay").text
    token = re.search(r'name="attempt" value="([^"]+)"', again)
    assert token is not None
    wrong = client.post("/pay", data=form | {"attempt": token[1], "card_cvc": "x", "csrf_token": csrf_token(again)})
    assert wrong.status_code == 400
    assert "Escriba el código de seguridad de 3 o 4 dígitos" in text_of(wrong.text)
