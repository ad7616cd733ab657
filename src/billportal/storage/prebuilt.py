"""Reads built once: a SELECT made once per process, compiled once per dialect, run on the driver's cursor.

A portal page runs the same few statements on every view. Building them with
SQLAlchemy's expression language, generating their cache keys and wrapping
their results cost more than the queries themselves, so the hot reads are made
once (with ``bindparam`` for what varies), compiled once for each database, and
executed on the connection's own DBAPI cursor inside the read's transaction.
Only columns that the drivers return as they are (integers and text) may be
selected this way: nothing would convert the others.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, Integer, Select, String, Text, bindparam, literal
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect

_PLAIN_TYPES = (Integer, BigInteger, String, Text)


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    positions: tuple[str, ...] | None  # the parameters' order for a positional driver (SQLite); None: named
    defaults: dict[str, Any]  # the values bound when the statement was built (literals)


def one_of(column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN (values)`` for a prebuilt statement: the code's own constants, one bound literal each."""
    return column.in_([literal(value, column.type) for value in values])


def any_of(column: ColumnElement[Any], count: int, name: str = "id") -> ColumnElement[bool]:
    """``column IN (:id_0, ...)`` for a prebuilt statement made for ``count`` values (see :func:`listed`)."""
    return column.in_([bindparam(f"{name}_{i}", type_=column.type) for i in range(count)])


def list_size(values: Sequence[Any]) -> int:
    """The IN list's size to prebuild for ``values``: the next power of two, so that few statements serve every size."""
    return 1 << max(0, len(values) - 1).bit_length()


def listed(values: Sequence[Any], name: str = "id") -> dict[str, Any]:
    """The parameters of an :func:`any_of` list of ``list_size(values)``, the last value repeated to fill it."""
    size = list_size(values)
    return {f"{name}_{i}": values[min(i, len(values) - 1)] for i in range(size)}


class Prebuilt:
    """One SELECT, built once; ``rows(conn, params)`` runs it and returns its rows as tuples."""

    __slots__ = ("_compiled", "_named", "_statement", "columns")

    def __init__(self, statement: Select[Any]) -> None:
        for column in statement.selected_columns:
            if not isinstance(column.type, _PLAIN_TYPES):
                raise TypeError(f"a prebuilt read returns {column.key!r} unconverted: {column.type!r} is not plain")
        self._statement = statement
        self.columns: tuple[str, ...] = tuple(str(column.key) for column in statement.selected_columns)
        self._compiled: dict[str, _Compiled] = {}
        self._named: Any = namedtuple("Row", self.columns, rename=True)  # type: ignore[misc]  # its fields are known at run time

    def _compile(self, dialect: Dialect) -> _Compiled:
        # An IN list must be of literal() values (one_of), which compile to one parameter each: an
        # "expanding" parameter would need its values at each execution, as SQLAlchemy's own path gives them.
        compiled = self._statement.compile(dialect=dialect)
        positions = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        done = _Compiled(str(compiled), positions, dict(compiled.params))
        self._compiled[dialect.name] = done
        return done

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The statement's rows, in the read's transaction (begun here if nothing else has begun it)."""
        compiled = self._compiled.get(conn.dialect.name) or self._compile(conn.dialect)
        values = {**compiled.defaults, **params}
        args: Any = tuple(values[name] for name in compiled.positions) if compiled.positions is not None else values
        dbapi = conn.dialect.loaded_dbapi
        try:
            raw: Any = conn.connection.dbapi_connection
            if isinstance(raw, sqlite3.Connection):
                # SQLite: the read's snapshot begun on the driver's connection, as its BEGIN is issued anyway
                # (storage.sqlite.engine_for); SQLAlchemy's transaction bookkeeping cost more than the query.
                # The backend's read ends it; a Core statement later in the same read joins it.
                if not conn.in_transaction() and not raw.in_transaction:
                    raw.execute("BEGIN")
                return raw.execute(compiled.sql, args).fetchall()
            if not conn.in_transaction():
                conn.begin()
            cursor = conn.connection.cursor()
            try:
                cursor.execute(compiled.sql, args)
                return list(cursor.fetchall())
            finally:
                cursor.close()
        except dbapi.Error as exc:
            # As SQLAlchemy would raise it, so that the backends tell "unavailable" from a bug as for any read.
            raise sa_exc.DBAPIError.instance(
                compiled.sql, None, exc, dbapi.Error, hide_parameters=True, dialect=conn.dialect
            ) from exc

    def named_rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """The rows as named tuples (``row.id``)."""
        make = self._named._make
        return [make(row) for row in self.rows(conn, params)]
