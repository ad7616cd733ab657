"""Over HTTP: a database that cannot answer is a 503 whose cause is logged; a bug is a 500 logged with its traceback.

Neither ever poses as the other, and neither shows the client anything of the cause.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from billportal.core.config import Settings
from billportal.storage import open_store
from billportal.storage.sqlite import SQLiteBackend
from tests.conftest import MASTER_KEY, Clock, World, seed_world
from tests.functional.portal_world import add_documents, signed_in
from tests.functional.test_api import dashboard, new_key

# Faults are injected into an embedded database file here, in both passes of the suite;
# PostgreSQL's are in tests/scaleout/test_storage_errors.py.


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = Settings(data_dir=tmp_path, master_key=MASTER_KEY)
    store = open_store(settings)
    try:
        yield seed_world(store, Clock(), settings)
    finally:
        store.close()


def sqlite_file(world: World) -> sqlite3.Connection:
    backend = world.store.backend
    assert isinstance(backend, SQLiteBackend)
    return sqlite3.connect(backend.path, isolation_level=None)


def test_a_query_that_is_wrong_is_a_500_logged_with_its_cause_not_an_outage(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    docs = add_documents(world)
    client = signed_in(world)
    api = dashboard(world, new_key(world))
    # A release whose code and schema disagree: the invoice pages' query names a column that is gone.
    sqlite_file(world).execute("ALTER TABLE invoices DROP COLUMN notes")
    caplog.set_level(logging.INFO, logger="billportal")
    page = client.get(f"/invoices/{docs.invoices['INV-0001']}")
    assert page.status_code == 500
    assert "Something went wrong" in page.text
    assert "notes" not in page.text
    answer = api.get(f"/api/v1/invoices/{docs.invoices['INV-0001']}")
    assert (answer.status_code, answer.json()["error"]["code"]) == (500, "internal_error")
    bugs = [r for r in caplog.records if r.name == "billportal.errors" and r.levelno == logging.ERROR]
    assert len(bugs) == 2
    for record in bugs:
        text = record.getMessage()
        assert "OperationalError" in text
        assert "no such column" in text
        assert "Traceback" in text
        assert "documents.py" in text  # the frame of the query at fault
    assert not [r for r in caplog.records if "unavailable" in r.getMessage()]


def test_a_locked_database_is_a_503_with_its_cause_in_the_log(world: World, caplog: pytest.LogCaptureFixture) -> None:
    client = signed_in(world)
    assert isinstance(world.store.backend, SQLiteBackend)
    token = client.get("/billing-info").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    backend = world.store.backend
    holder = sqlite_file(world)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    backend.conn.execute("PRAGMA busy_timeout=100")
    caplog.set_level(logging.WARNING, logger="billportal")
    try:
        form = {
            "csrf_token": token,
            "name": "Wile E. Coyote",
            "address_line1": "1 Mesa Road",
            "city": "Albuquerque",
            "country": "US",
        }
        response = client.post("/billing-info", data=form)
    finally:
        holder.execute("ROLLBACK")
        backend.conn.execute("PRAGMA busy_timeout=5000")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    (record,) = [r for r in caplog.records if r.name == "billportal.errors"]
    assert record.levelno == logging.WARNING
    assert "database is locked" in record.getMessage()
    assert "POST /billing-info" in record.getMessage()
