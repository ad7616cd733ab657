"""The Alembic migrations build exactly the schema that ``storage/schema.py`` declares."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from billportal.core.config import Settings
from billportal.storage import open_store
from billportal.storage.schema import CUSTOMER_SEARCH_SQLITE, CUSTOMER_SEARCH_TABLES, declared_name, metadata
from billportal.storage.sqlite import SQLiteBackend
from tests.conftest import MASTER_KEY


def test_a_migrated_database_matches_the_declared_schema(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path, master_key=MASTER_KEY))
    backend = store.backend
    assert isinstance(backend, SQLiteBackend)
    try:
        with backend.engine.connect() as connection:
            differences = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True, "include_name": declared_name}),
                metadata,
            )
            indexes = {ix["name"]: ix for ix in inspect(connection).get_indexes("sign_in_events")}
            owed = {ix["name"]: ix for ix in inspect(connection).get_indexes("invoices")}["ix_invoices_owed"]
            search = connection.execute(
                text("SELECT name, type, sql FROM sqlite_master WHERE name LIKE 'customer_search%' ORDER BY name")
            ).all()
    finally:
        store.close()
    assert differences == []
    # compare_metadata does not look at partial-index conditions: check the dashboard's by hand.
    for name in (
        "ix_sign_in_events_failures",
        "ix_sign_in_events_failure_reason",
    ):
        assert "result = 'failure'" in str(indexes[name]["dialect_options"].get("sqlite_where", "")), name
    assert "status = 'open' AND balance > 0" in str(owed["dialect_options"].get("sqlite_where", ""))
    # The search's FTS5 table and triggers, which metadata cannot hold, are the statements schema.py declares.
    declared = {sql for name, kind, sql in search if kind == "trigger" or name == "customer_search"}
    assert declared == set(CUSTOMER_SEARCH_SQLITE)
    assert {name for name, kind, _ in search if kind == "table"} == CUSTOMER_SEARCH_TABLES
