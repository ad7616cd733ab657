"""Every string a customer reads goes through gettext: each portal page, rendered in a pseudo-locale
that brackets every translated string, shows no words outside the brackets but the data it is about."""

from __future__ import annotations

import pytest

from tests.conftest import World
from tests.functional.portal_world import Docs, add_documents, signed_in
from tests.functional.pseudo_locale import data_words, pseudo, unmarked
from tests.functional.test_portal_locales import EMAIL_SIGN_IN_PAGES, PAGES, open_everything

__all__ = ["pseudo"]  # a fixture, imported so that it is found here


@pytest.mark.usefixtures("pseudo")
def test_every_portal_page_marks_every_string(world: World) -> None:
    docs: Docs = add_documents(world)
    open_everything(world)
    client = signed_in(world)
    pages = [*PAGES, f"/invoices/{min(docs.invoices.values())}", f"/estimates/{min(docs.estimates.values())}"]
    pages += [f"/payments/{min(docs.payments.values())}", f"/credit-notes/{min(docs.credit_notes.values())}"]
    left: dict[str, list[str]] = {}
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        words = unmarked(response.text, data_words())
        if words:
            left[path] = words
    assert not left


@pytest.mark.usefixtures("pseudo")
def test_the_sign_in_and_error_pages_mark_every_string(world: World) -> None:
    docs: Docs = add_documents(world)
    open_everything(world)
    visitor = world.client("acme")
    answers = [
        *(visitor.get(path) for path in EMAIL_SIGN_IN_PAGES),
        visitor.post("/login/email", data={"email": "nobody@example.com"}),
        visitor.post("/login/code", data={"email": "nobody@example.com", "code": "123456"}),
        visitor.get("/signed-out"),
        visitor.get("/invoices"),  # sign-in needed
        visitor.get("/login/not-a-token"),
        signed_in(world).get(f"/invoices/{max(docs.invoices.values()) + 1000}"),  # not found
    ]
    for response in answers:
        assert not unmarked(response.text, data_words()), response.url
