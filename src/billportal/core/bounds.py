"""What the database can hold, in one place: id ranges, amounts, and text.

The edges (path convertors, the form reader, the API's schemas, the CLI's
arguments) refuse what falls outside these bounds before it reaches a query, and
storage checks every row it writes against its columns (storage/bounds.py), so
that PostgreSQL never meets a NUL, an id past its column, or an amount past
:data:`MAX_AMOUNT`.
"""

from __future__ import annotations

from typing import Final

MAX_ID: Final = 2**63 - 1  # customer ids (the ``sub`` of a token) and every BIGINT column
MAX_SERIAL_ID: Final = 2**31 - 1  # document, key and admin ids: INTEGER columns on PostgreSQL
MAX_AMOUNT: Final = 10**12  # minor units: ten billion dollars is the largest amount anywhere, totals included
# A customer's tax or VAT id (up to 64 characters): DE123456789, 12-3456789, GB 123 4567 89.
TAX_ID: Final = r"[A-Za-z0-9][A-Za-z0-9 ./-]*"


def storable_text(value: str) -> bool:
    """Whether text can be stored as it is: no NUL (PostgreSQL refuses it) and no lone surrogate."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
