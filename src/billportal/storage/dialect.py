"""The few statements SQLite and PostgreSQL spell differently, written once for both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table

if TYPE_CHECKING:
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
    # Each dialect's module is imported by a process that uses it only: a SQLite worker never loads PostgreSQL's.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).values(**values).on_conflict_do_nothing(index_elements=elements)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=elements)
