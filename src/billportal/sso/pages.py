"""The seed product's ``redirect_to`` page ids, and where each lands."""

from __future__ import annotations

import re
from typing import Final

from billportal.core.i18n import N_

DEFAULT_PAGE: Final = "my_account"

# page id -> path in the portal. Only these fixed paths are ever used: no URL
# from the request is followed; an unknown id lands on My Account.
PAGE_PATHS: Final[dict[str, str]] = {
    "my_account": "/",
    "invoices": "/invoices",
    "credit_notes": "/credit-notes",
    "estimates": "/estimates",
    "payments": "/payments",
    "balance_forward_statement": "/statements/balance-forward",
    "open_item_statement": "/statements/open-item",
    "pay": "/pay",
    "add_payment_method": "/payment-methods",
    "update_billing_info": "/billing-info",
    "security": "/security",
}

# Every page id the seed product documents; redirect_to accepts exactly these.
SEED_PAGE_IDS: Final = (
    "my_account",
    "invoices",
    "credit_notes",
    "estimates",
    "payments",
    "balance_forward_statement",
    "open_item_statement",
    "pay",
    "add_payment_method",
    "update_billing_info",
)

# What each page is called in the portal, for people choosing one (the dashboard's Try it).
PAGE_NAMES: Final[dict[str, str]] = {
    "my_account": N_("My account"),
    "invoices": N_("Invoices"),
    "credit_notes": N_("Credit notes"),
    "estimates": N_("Estimates"),
    "payments": N_("Payments"),
    "balance_forward_statement": N_("Statement, balance forward"),
    "open_item_statement": N_("Statement, open items"),
    "pay": N_("Pay"),
    "add_payment_method": N_("Saved payment methods"),
    "update_billing_info": N_("Billing details"),
    "security": N_("Security (where you are signed in)"),
}


# Other names the seed product's own code accepts for a page.
PAGE_ALIASES: Final[dict[str, str]] = {"account": "my_account"}

# A document's own page: the one kind of exact path ``redirect_to`` may name besides the pages above.
# Matched whole, from a fixed list of prefixes and digits only, so that no URL can lead off the portal.
_DOCUMENT_PATH = re.compile(r"/(?:invoices|payments|credit-notes|estimates)/[1-9][0-9]{0,18}")
_PAGE_PATH_SET: Final = frozenset(PAGE_PATHS.values())


# The same rule as :func:`is_landing`, as a JSON Schema (ECMA-262) pattern for the API.
LANDING_PATTERN: Final = (
    "^(?:"
    + "|".join([*PAGE_PATHS, *PAGE_ALIASES, *sorted(_PAGE_PATH_SET)])
    + "|/(?:invoices|payments|credit-notes|estimates)/[1-9][0-9]{0,18})$"
)
LANDING_HINT: Final = "must be a page id (" + ", ".join(SEED_PAGE_IDS) + ") or a document's path, such as /invoices/3"


def portal_path(value: str) -> str | None:
    """``value`` if it is exactly one of the portal's own pages (``/invoices/3``, ``/pay``), else None."""
    if value in _PAGE_PATH_SET or _DOCUMENT_PATH.fullmatch(value):
        return value
    return None


def is_landing(value: str) -> bool:
    """Whether ``redirect_to`` may be ``value``: a page id, an alias of one, or a portal path."""
    return value in PAGE_PATHS or value in PAGE_ALIASES or portal_path(value) is not None


def landing_path(page_id: str | None, remembered: str | None = None) -> str:
    """Where a sign-in lands: the ``redirect_to`` page (an id or an exact portal path); anything unknown is
    My Account.

    ``remembered`` is the page a signed-out visitor asked for. It wins when the link names no page, or
    names the list it belongs to (``invoices`` for ``/invoices/3``): that is the link a company's remote
    sign-in makes when sent back with the page id.
    """
    page = PAGE_ALIASES.get(page_id, page_id) if page_id is not None else None
    asked = PAGE_PATHS.get(page) if page is not None else None
    if asked is None and page is not None:
        asked = portal_path(page)
    remembered = portal_path(remembered) if remembered else None
    if remembered is not None and (asked is None or (asked != "/" and remembered.startswith(asked + "/"))):
        return remembered
    return asked or PAGE_PATHS[DEFAULT_PAGE]
