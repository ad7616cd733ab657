"""customer search: the customers list's search index and the index of what customers owe

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02

SQLite: an FTS5 table (trigram tokenizer) over each customer's id, number, name and email,
kept in step by triggers, filled here for the customers there are (in one transaction: the
write lock is held for about 25 seconds per million customers). PostgreSQL: pg_trgm and a GIN
index over the same fields, built concurrently. Both: a partial index of open invoices with a
balance. The statements are those of storage/schema.py at this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from billportal.storage.migrate import create_index_online

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_SQLITE = (
    (
        "CREATE VIRTUAL TABLE customer_search USING fts5("
        "company, id, number, name, email, content='', tokenize='trigram')"
    ),
    (
        "CREATE TRIGGER customer_search_insert AFTER INSERT ON customers BEGIN"
        " INSERT INTO customer_search (rowid, company, id, number, name, email)"
        " VALUES (new.rowid, '~' || new.company_id || '~', new.id, new.number, new.name, new.email);"
        " END"
    ),
    (
        "CREATE TRIGGER customer_search_delete AFTER DELETE ON customers BEGIN"
        " INSERT INTO customer_search (customer_search, rowid, company, id, number, name, email)"
        " VALUES ('delete', old.rowid, '~' || old.company_id || '~', old.id, old.number, old.name, old.email);"
        " END"
    ),
    (
        "CREATE TRIGGER customer_search_update AFTER UPDATE OF company_id, id, number, name, email ON customers"
        " BEGIN"
        " INSERT INTO customer_search (customer_search, rowid, company, id, number, name, email)"
        " VALUES ('delete', old.rowid, '~' || old.company_id || '~', old.id, old.number, old.name, old.email);"
        " INSERT INTO customer_search (rowid, company, id, number, name, email)"
        " VALUES (new.rowid, '~' || new.company_id || '~', new.id, new.number, new.name, new.email);"
        " END"
    ),
    # The customers there are: in the same transaction as the triggers, so none is missed or indexed twice.
    (
        "INSERT INTO customer_search (rowid, company, id, number, name, email)"
        " SELECT rowid, '~' || company_id || '~', id, number, name, email FROM customers"
    ),
)
_SEARCH_TEXT = "lower(id::text || chr(31) || number || chr(31) || name || chr(31) || email)"


def upgrade() -> None:
    create_index_online(
        "ix_invoices_owed",
        "invoices",
        ["company_id", "customer_id", "due_on", "balance"],
        where="status = 'open' AND balance > 0",
    )
    if op.get_bind().dialect.name != "postgresql":
        for statement in _SQLITE:
            op.execute(statement)
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # An index of existing rows: built concurrently, so writes go on meanwhile.
    create_index_online("ix_customers_search", "customers", [sa.text(f"({_SEARCH_TEXT}) gin_trgm_ops")], using="gin")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for trigger in ("customer_search_update", "customer_search_delete", "customer_search_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS customer_search")
    else:
        op.drop_index("ix_customers_search", table_name="customers")
    op.drop_index("ix_invoices_owed", table_name="invoices")
