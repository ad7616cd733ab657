"""The seed product's ``redirect_to`` page ids, and where each lands."""

from __future__ import annotations

from typing import Final

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
    "my_account": "My account",
    "invoices": "Invoices",
    "credit_notes": "Credit notes",
    "estimates": "Estimates",
    "payments": "Payments",
    "balance_forward_statement": "Statement, balance forward",
    "open_item_statement": "Statement, open items",
    "pay": "Pay",
    "add_payment_method": "Saved payment methods",
    "update_billing_info": "Billing details",
}


def landing_path(page_id: str | None) -> str:
    """The portal path for a ``redirect_to`` value; anything unknown is My Account."""
    if page_id is None:
        return PAGE_PATHS[DEFAULT_PAGE]
    return PAGE_PATHS.get(page_id, PAGE_PATHS[DEFAULT_PAGE])
