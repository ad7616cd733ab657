"""The database's input rules, read off the schema: both databases refuse the same values, by name."""

from __future__ import annotations

import pytest
from sqlalchemy import Table

from billportal.core.errors import Refused
from billportal.storage import schema as t
from billportal.storage.bounds import check_row, fits


@pytest.mark.parametrize(
    ("table", "values", "field"),
    [
        (t.customers, {"name": "x" * 201}, "name"),
        (t.customers, {"email": "a\x00b@example.com"}, "email"),
        (t.customers, {"id": 2**63}, "id"),
        (t.invoices, {"id": 2**31}, "id"),
        (t.invoices, {"total": -(2**63) - 1}, "total"),
        (t.line_items, {"description": "\ud800"}, "description"),
    ],
)
def test_a_value_its_column_cannot_hold_is_refused(table: Table, values: dict[str, object], field: str) -> None:
    with pytest.raises(Refused) as refused:
        check_row(table, values)
    assert (refused.value.code, refused.value.field) == ("invalid_field", field)


def test_values_that_fit_pass() -> None:
    check_row(t.customers, {"name": "x" * 200, "id": 2**63 - 1, "email": ""})
    check_row(t.invoices, {"id": 2**31 - 1, "notes": "n" * 100_000, "total": 0})


def test_an_id_past_its_column_names_no_row() -> None:
    assert fits(t.invoices.c.id, 2**31 - 1)
    assert not fits(t.invoices.c.id, 2**31)
    assert fits(t.customers.c.id, 2**63 - 1)
    assert not fits(t.customers.c.id, 0)
