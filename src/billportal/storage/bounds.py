"""The database's input rules, read off the schema: every row storage writes is checked against its columns.

PostgreSQL refuses a NUL in text, a string longer than its ``VARCHAR(n)`` and an
integer past its column; SQLite accepts them all. Checking each written value
here, once, makes both databases refuse the same values in the same way: a
:class:`~billportal.core.errors.Refused` naming the field, never a driver error.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Final

from sqlalchemy import BigInteger, Column, Integer, String, Table

from billportal.core.bounds import MAX_ID, MAX_SERIAL_ID, storable_text
from billportal.core.errors import Refused

_INTEGER_RANGES: Final[dict[type, int]] = {BigInteger: MAX_ID, Integer: MAX_SERIAL_ID}


@cache
def _rules(table: Table) -> dict[str, tuple[int | None, int | None]]:
    """Per column: (longest text, largest integer), None where the column sets no such bound."""
    rules: dict[str, tuple[int | None, int | None]] = {}
    for column in table.columns:
        length = column.type.length if isinstance(column.type, String) else None
        largest = next((high for kind, high in _INTEGER_RANGES.items() if type(column.type) is kind), None)
        rules[column.name] = (length, largest)
    return rules


def check_row(table: Table, values: Mapping[str, Any]) -> None:
    """Refuse a value its column cannot hold (Refused ``invalid_field``, naming the column)."""
    rules = _rules(table)
    for name, value in values.items():
        length, largest = rules[name]
        if isinstance(value, str):
            if not storable_text(value):
                raise Refused("invalid_field", f"{name} holds a character that cannot be stored (NUL)", name)
            if length is not None and len(value) > length:
                raise Refused("invalid_field", f"{name} is longer than {length} characters", name)
        elif isinstance(value, int) and not isinstance(value, bool) and largest is not None and abs(value) > largest:
            raise Refused("invalid_field", f"{name} is out of range", name)


def fits(column: Column[Any], value: int) -> bool:
    """Whether an id can name a row of ``column`` at all (larger ones cannot even be compared on PostgreSQL)."""
    largest = _INTEGER_RANGES.get(type(column.type))
    return largest is None or 0 < value <= largest
