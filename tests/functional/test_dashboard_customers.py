"""Customers in the dashboard: the list with search, what each owes and keyset paging; a customer's page."""

from __future__ import annotations

import re

from tests import factories
from tests.conftest import World, run
from tests.functional.dashboard_support import admin_of_acme
from tests.functional.portal_world import Docs, add_documents, text_of


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
