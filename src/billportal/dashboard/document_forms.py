"""Reading the dashboard's document forms into the values the one write model takes (services/billing.py).

Only the form's own shapes are read here (an amount typed as 12.50, an id, the line rows); what is typed is
then checked by the API's shapes (web/objects.py) and Books, whose messages are shown beside the field they name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from billportal.core import i18n
from billportal.core.errors import Refused
from billportal.core.i18n import N_
from billportal.core.money import exponent, parse_money
from billportal.dashboard.forms import customer_id_field
from billportal.storage.document_lists import DocumentFilters
from billportal.storage.records import LineItem
from billportal.web.forms import Form
from billportal.web.shapes import Invalid

LINE_ROWS: Final = 10  # line rows of a new document's form (no JavaScript adds more)
MAX_ROWS: Final = 100  # as many as a document has lines (services.billing.MAX_LINES)
LINE_FIELDS: Final = ("description", "quantity", "unit_price", "discount", "tax")
MONEY_HINT: Final = N_("Enter an amount such as 12.50.")
ID_HINT: Final = N_("Enter an id, a positive whole number.")
_LINE_FIELD: Final = re.compile(r"lines\[(\d+)\](?:\.(\w+))?")
_APPLICATION_FIELD: Final = re.compile(r"applications\[(\d+)\]\.(\w+)")


def form_fields(rows: int) -> int:
    """How many fields a document's form with ``rows`` line rows may post."""
    return 16 + rows * len(LINE_FIELDS)


def money_text(amount: int, currency: str) -> str:
    """An amount as a form shows it and a CSV writes it: 1234.50 (no symbol, no grouping)."""
    places = exponent(currency)
    whole, fraction = divmod(abs(amount), 10**places)
    sign = "-" if amount < 0 else ""
    return f"{sign}{whole}" + (f".{fraction:0{places}d}" if places else "")


def amount_of(text: str, currency: str) -> int:
    """An amount typed (12.50) in minor units of ``currency``; ValueError if it is not one."""
    try:
        return parse_money(text, currency)
    except (ValueError, ArithmeticError):
        raise ValueError("not an amount") from None


@dataclass
class Typed:
    """A submitted form: what was typed (shown again), what Books gets, and a message per form field."""

    shown: dict[str, str]
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    rows: list[int] = field(default_factory=list)  # the form row of each line sent, in order
    applied: list[int] = field(default_factory=list)  # the invoice id of each application sent, in order

    def refused(self, refused: Refused | Invalid) -> None:
        """Put the API's message (its shape's, or Books') beside the form field it names (the whole form's, if none)."""
        self.errors[self.field_of(refused.field)] = refused.message

    def field_of(self, name: str | None) -> str:
        if not name:
            return "form"
        line = _LINE_FIELD.fullmatch(name)
        if line and int(line[1]) < len(self.rows):
            row = self.rows[int(line[1])]
            return f"line{row}_{line[2]}" if line[2] in LINE_FIELDS else f"line{row}_description"
        application = _APPLICATION_FIELD.fullmatch(name)
        if application and int(application[1]) < len(self.applied):
            return f"apply_{self.applied[int(application[1])]}"
        return {"lines": "lines", "applications": "form"}.get(name, name)


def line_values(lines: tuple[LineItem, ...], currency: str) -> dict[str, str]:
    """A document's lines as the form's rows show them."""
    shown: dict[str, str] = {}
    for row, line in enumerate(lines, start=1):
        shown[f"line{row}_description"] = line.description
        shown[f"line{row}_quantity"] = line.quantity
        shown[f"line{row}_unit_price"] = money_text(line.unit_price, currency)
        shown[f"line{row}_discount"] = money_text(line.discount, currency) if line.discount else ""
        shown[f"line{row}_tax"] = money_text(line.tax, currency) if line.tax else ""
    return shown


def read_lines(form: Form, typed: Typed, rows: int, currency: str) -> list[dict[str, Any]]:
    """The filled line rows (an empty row is left out), amounts in minor units of ``currency``."""
    lines: list[dict[str, Any]] = []
    for row in range(1, rows + 1):
        texts = {name: form.text(f"line{row}_{name}", 600).strip() for name in LINE_FIELDS}
        typed.shown.update({f"line{row}_{name}": text for name, text in texts.items()})
        if not any(texts.values()):
            continue
        line: dict[str, Any] = {"description": texts["description"], "quantity": texts["quantity"] or "1"}
        for name in ("unit_price", "discount", "tax"):
            if not texts[name] and name != "unit_price":
                line[name] = 0
                continue
            try:
                line[name] = amount_of(texts[name], currency)
            except ValueError:
                typed.errors[f"line{row}_{name}"] = i18n.gettext(MONEY_HINT)
        lines.append(line)
        typed.rows.append(row)
    return lines


def optional_day(text: str) -> str | None:
    return text or None


def id_of(text: str) -> int | None:
    """An id typed (digits only), or None."""
    return customer_id_field(text)


def line_inputs(lines: tuple[LineItem, ...]) -> list[tuple[object, ...]]:
    return [(li.description, li.quantity, li.unit_price, li.discount, li.tax) for li in lines]


def same_lines(typed: list[dict[str, Any]], lines: tuple[LineItem, ...]) -> bool:
    sent = [tuple(li.get(name) for name in LINE_FIELDS) for li in typed]
    return sent == line_inputs(lines)


# -- the lists' filters ----------------------------------------------------------------------------


def _day(text: str) -> str | None:
    try:
        return date.fromisoformat(text).isoformat() if len(text) == 10 else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A list's filters from the query string, with a message for what cannot be read."""

    filters: DocumentFilters
    shown: dict[str, str]
    error: str = ""

    @classmethod
    def parse(cls, params: dict[str, str], statuses: tuple[str, ...], kind: str, today: str) -> ListQuery:
        shown = {name: params.get(name, "").strip()[:64] for name in ("status", "customer", "from", "to", "q")}
        shown["overdue"] = "1" if kind == "invoice" and params.get("overdue") == "1" else ""
        shown["kind"] = params.get("kind", "") if kind == "payment" else ""
        if shown["kind"] not in ("", "online", "offline"):
            shown["kind"] = ""
        if shown["status"] not in statuses:
            shown["status"] = ""
        problems = []
        customer_id = customer_id_field(shown["customer"]) if shown["customer"] else None
        if shown["customer"] and customer_id is None:
            problems.append(i18n.gettext("The customer must be a customer id, a positive whole number."))
        days = {name: _day(shown[name]) if shown[name] else None for name in ("from", "to")}
        if any(shown[name] and days[name] is None for name in days):
            problems.append(i18n.gettext("Write dates as YYYY-MM-DD."))
        filters = DocumentFilters(
            status=shown["status"] or None,
            customer_id=customer_id,
            date_from=days["from"],
            date_to=days["to"],
            overdue_on=today if shown["overdue"] else None,
            online={"online": True, "offline": False}.get(shown["kind"]),
            number=shown["q"],
        )
        return cls(filters, shown, " ".join(problems))

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for the next page and the CSV)."""
        return {name: value for name, value in self.shown.items() if value}
