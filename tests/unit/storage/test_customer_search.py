"""Migration 0022 indexes the customers there are; a short search reads a bounded window a page at a time.

Each test runs on SQLite, and on PostgreSQL too when BILLPORTAL_TEST_DATABASE_URL names one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from billportal.storage import customer_lists
from billportal.storage.customer_lists import customer_page
from billportal.storage.migrate import upgrade, upgrade_postgres
from tests.conftest import SCALE_OUT_DATABASE, drop_postgres_database, new_postgres_database

BACKENDS = ["sqlite", "postgresql"] if SCALE_OUT_DATABASE else ["sqlite"]
COMPANIES = "INSERT INTO companies (id, username, name, created_at, updated_at) VALUES (1, 'acme', 'Acme', 0, 0), (2, 'globex', 'Globex', 0, 0)"  # noqa: E501
CUSTOMER = (
    "INSERT INTO customers (company_id, id, number, name, email, created_at, updated_at)"
    " VALUES (:company, :id, :number, :name, :email, 0, 0)"
)
INVOICE = (
    "INSERT INTO invoices (company_id, customer_id, number, currency, status, issued_on, due_on, total, balance,"
    " created_at, updated_at) VALUES (1, :customer, :number, 'USD', :status, '2026-10-01', :due, 100, :balance, 0, 0)"
)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = create_engine(f"sqlite:///{tmp_path / 'search.db'}")
        yield made
        made.dispose()
        return
    url = new_postgres_database(SCALE_OUT_DATABASE)
    made = create_engine(url, poolclass=NullPool)
    try:
        yield made
    finally:
        made.dispose()
        drop_postgres_database(SCALE_OUT_DATABASE, url)


def _migrate(engine: Engine, revision: str) -> None:
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            upgrade_postgres(connection, revision)
        else:
            with connection.begin():
                upgrade(connection, revision)


def _ids(conn: Connection, search: str = "", owing: str = "") -> list[int]:
    page = customer_page(conn, 1, limit=25, search=search, owing=owing, today="2026-11-28")
    return [row.customer.id for row in page.rows]


def test_the_migration_indexes_the_customers_there_are(engine: Engine) -> None:
    _migrate(engine, "0021")
    with engine.begin() as conn:
        conn.execute(text(COMPANIES))
        for company, customer_id, number, name, email in (
            (1, 17, "K-4471", "Margarethe Oyelaran", "mo@lagoon.test"),
            (1, 18, "K-4472", "Tobiah Fenwright", "tf@quarry.test"),
            (2, 17, "K-4471", "Margarethe Oyelaran", "mo@lagoon.test"),
        ):
            values = {"company": company, "id": customer_id, "number": number, "name": name, "email": email}
            conn.execute(text(CUSTOMER), values)
        conn.execute(
            text(INVOICE), {"customer": 17, "number": "I-1", "status": "open", "due": "2026-10-31", "balance": 100}
        )
        conn.execute(
            text(INVOICE), {"customer": 18, "number": "I-2", "status": "paid", "due": "2026-10-31", "balance": 0}
        )
    _migrate(engine, "head")
    with engine.begin() as conn:
        assert _ids(conn, "garethe oye") == [17]  # in Acme only: Globex's 17 is another company's
        assert _ids(conn, "4472") == [18]
        assert _ids(conn, "QUARRY.") == [18]
        assert _ids(conn, "K-44") == [17, 18]
        assert _ids(conn, "Fe") == [18]
        assert _ids(conn, owing="past_due") == [17]
        assert _ids(conn, "K-44", owing="balance") == [17]
        # What the migration's triggers (SQLite) or index (PostgreSQL) keep up to date from now on.
        conn.execute(text("UPDATE customers SET name = 'Tobiah Wrenfield' WHERE company_id = 1 AND id = 18"))
        conn.execute(text(CUSTOMER), {"company": 1, "id": 19, "number": "K-9", "name": "Fenna Vos", "email": ""})
        conn.execute(text("DELETE FROM customers WHERE company_id = 1 AND id = 17"))
        assert _ids(conn, "fenwright") == []
        assert _ids(conn, "wrenfield") == [18]
        assert _ids(conn, "fenna") == [19]
        assert _ids(conn, "Oyelaran") == []
        assert _ids(conn, "K-44") == [18]


def _every_page(conn: Connection, search: str, *, limit: int, window: int) -> tuple[list[int], int]:
    """Every page of a search, followed to its end: the ids in order, and how many pages ended a window."""
    seen: list[int] = []
    after = None
    windows = 0
    while True:
        page = customer_page(conn, 1, limit=limit, after=after, search=search, window=window)
        seen.extend(row.customer.id for row in page.rows)
        windows += page.window_ended
        if page.next_after is None:
            return seen, windows
        after = page.next_after


def test_a_short_search_reads_a_window_at_a_time_and_reaches_every_match(engine: Engine) -> None:
    _migrate(engine, "head")
    with engine.begin() as conn:
        conn.execute(text(COMPANIES))
        for n in range(1, 31):
            name = "Quill" if n % 7 == 0 else "Other"
            conn.execute(text(CUSTOMER), {"company": 1, "id": n, "number": "", "name": name, "email": ""})
        seen, windows = _every_page(conn, "qu", limit=2, window=10)
        assert seen == [7, 14, 21, 28]
        assert windows == 2  # customers 1-10 (7 found) and 11-20 (14 found); the third window is the last


def test_a_search_past_the_first_thousand_customers_pages_in_order(engine: Engine) -> None:
    """PostgreSQL reads 1,000 customers in id order before its trigram index: both give every match once."""
    _migrate(engine, "head")
    with engine.begin() as conn:
        conn.execute(text(COMPANIES))
        rows = [
            {"company": 1, "id": n, "number": f"N-{n}", "name": "Rare Osprey" if n % 97 == 0 else "Plain", "email": ""}
            for n in range(1, 2501)
        ]
        conn.execute(text(CUSTOMER), rows)
        for search, expected in (("osprey", [n for n in range(1, 2501) if n % 97 == 0]), ("plain", None)):
            seen: list[int] = []
            after = None
            while True:
                page = customer_page(conn, 1, limit=10, after=after, search=search)
                seen.extend(row.customer.id for row in page.rows)
                if page.next_after is None or len(seen) > 3000:
                    break
                after = page.next_after
            assert seen == (expected or [n for n in range(1, 2501) if n % 97]), search


def test_a_search_every_part_of_which_is_common_reads_windows_and_reaches_every_match(engine: Engine) -> None:
    """PostgreSQL: a search whose every part is in much of the table (the index would return most of it) reads
    windows of customers in id order, as a short search does; SQLite's index answers it at once."""
    _migrate(engine, "head")
    with engine.begin() as conn:
        conn.execute(text(COMPANIES))
        rows = [
            {"company": 1, "id": n, "number": f"N-{n}", "name": "Alpha" if n <= 1500 else "Common Heron", "email": ""}
            for n in range(1, 3001)
        ]
        conn.execute(text(CUSTOMER), rows)
        seen, windows = _every_page(conn, "heron", limit=500, window=1000)
        assert seen == list(range(1501, 3001))
        # Customers 1-1000 hold no heron (the first window ends empty); 1001-2000 hold 500, a page that
        # ends its window too; from 2001 on, the probe of the next 1,000 fills each page.
        assert windows == (2 if conn.dialect.name == "postgresql" else 0)
        # A rare part among common ones goes through the index: "N-2999" is the only one with "999".
        assert [row.customer.id for row in customer_page(conn, 1, limit=5, search="heron n-2999").rows] == []
        assert [row.customer.id for row in customer_page(conn, 1, limit=5, search="n-2999").rows] == [2999]


def test_a_kept_sample_that_is_out_of_date_changes_the_path_not_the_answer(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL keeps a large table's sample for a while: a part it judged rare may since have become
    common. The index then hands back more rows, and the answer is the same. (SQLite samples nothing.)"""
    monkeypatch.setattr(customer_lists, "SAMPLE_KEPT_FROM", 1)  # this small table kept as a large one is
    postgresql = engine.dialect.name == "postgresql"
    _migrate(engine, "head")
    with engine.begin() as conn:
        conn.execute(text(COMPANIES))
        alpha = [{"company": 1, "id": n, "number": f"N-{n}", "name": "Alpha", "email": ""} for n in range(1, 1501)]
        conn.execute(text(CUSTOMER), alpha)
        conn.execute(text("ANALYZE customers"))
        assert _every_page(conn, "heron", limit=500, window=1000) == ([], 0)  # sampled: heron is rare
        herons = [{"company": 1, "id": n, "number": f"N-{n}", "name": "Heron", "email": ""} for n in range(1501, 3001)]
        conn.execute(text(CUSTOMER), herons)
        conn.execute(text("ANALYZE customers"))
        # The kept sample still calls heron rare: through the index, no window, every match once.
        assert _every_page(conn, "heron", limit=500, window=1000) == (list(range(1501, 3001)), 0)
        monkeypatch.setattr(customer_lists, "SAMPLE_SECONDS", 0.0)  # sampled again: heron is common now
        windows = 2 if postgresql else 0
        assert _every_page(conn, "heron", limit=500, window=1000) == (list(range(1501, 3001)), windows)
