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

from collections import namedtuple
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, Integer, Select, String, Text, literal
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
        if not conn.in_transaction():
            conn.begin()
        dbapi = conn.dialect.loaded_dbapi
        cursor = conn.connection.cursor()
        try:
            cursor.execute(compiled.sql, args)
            return list(cursor.fetchall())
        except dbapi.Error as exc:
            # As SQLAlchemy would raise it, so that the backends tell "unavailable" from a bug as for any read.
            raise sa_exc.DBAPIError.instance(
                compiled.sql, None, exc, dbapi.Error, hide_parameters=True, dialect=conn.dialect
            ) from exc
        finally:
            cursor.close()

    def named_rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """The rows as named tuples (``row.id``)."""
        make = self._named._make
        return [make(row) for row in self.rows(conn, params)]
