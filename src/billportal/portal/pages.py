"""The seed product's ``redirect_to`` page ids, and where each lands."""

from __future__ import annotations

from typing import Final

DEFAULT_PAGE: Final = "my_account"

# page id -> path in the portal. A page id that is not listed (unknown, or a page
# that needs something billportal does not have yet, such as a card gateway for
# add_payment_method) lands on My Account. Only these fixed paths are ever used:
# no URL from the request is followed.
PAGE_PATHS: Final[dict[str, str]] = {
    "my_account": "/",
    "invoices": "/invoices",
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


def landing_path(page_id: str | None) -> str:
    """The portal path for a ``redirect_to`` value; anything unknown is My Account."""
    if page_id is None:
        return PAGE_PATHS[DEFAULT_PAGE]
    return PAGE_PATHS.get(page_id, PAGE_PATHS[DEFAULT_PAGE])
