"""The few statements SQLite and PostgreSQL spell differently, written once for both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_or_nothing(
    conn: Connection, table: Table, values: Mapping[str, Any], conflict: Sequence[str] | None = None
) -> postgresql.Insert | sqlite.Insert:
    """``INSERT ... ON CONFLICT [(conflict)] DO NOTHING``: a row that would break a unique rule is skipped.

    On PostgreSQL a concurrent transaction inserting the same key makes this
    one wait for it to end; then, if it committed, nothing is inserted. Use
    ``RETURNING`` to learn whether the row went in.
    """
    elements = list(conflict) if conflict else None
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).values(**values).on_conflict_do_nothing(index_elements=elements)
    return sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=elements)
