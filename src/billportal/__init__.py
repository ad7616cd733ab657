"""billportal: sign customers into their billing portal with a signed link.

The SDK needs only PyJWT and httpx: ``billportal.sign_in_url(sso_key, company, customer_id)``
makes a link with the SSO key; ``billportal.Client(api_key, base_url)`` drives the REST API.
The server lives in the subpackages and needs ``pip install 'billportal[server]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from billportal._links import make_token, parse_duration, sign_in_url

if TYPE_CHECKING:
    from billportal._client import (
        APIConnectionError,
        APIError,
        AuthenticationError,
        BillportalError,
        Client,
        ConflictError,
        CreditNote,
        Customer,
        Deleted,
        Estimate,
        InvalidRequestError,
        Invoice,
        LineItem,
        LineItemInput,
        NotFoundError,
        Page,
        Payment,
        PaymentApplication,
        PermissionDeniedError,
        RateLimitError,
        ServiceUnavailableError,
        SignInEvent,
        SignInLink,
        SsoKey,
        SsoKeyRotation,
    )

__all__ = [
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "BillportalError",
    "Client",
    "ConflictError",
    "CreditNote",
    "Customer",
    "Deleted",
    "Estimate",
    "InvalidRequestError",
    "Invoice",
    "LineItem",
    "LineItemInput",
    "NotFoundError",
    "Page",
    "Payment",
    "PaymentApplication",
    "PermissionDeniedError",
    "RateLimitError",
    "ServiceUnavailableError",
    "SignInEvent",
    "SignInLink",
    "SsoKey",
    "SsoKeyRotation",
    "make_token",
    "parse_duration",
    "sign_in_url",
]
__version__ = "0.1.0"

_LINKS = frozenset({"make_token", "parse_duration", "sign_in_url"})


def __getattr__(name: str) -> Any:
    # The API client (and httpx) loads on first use: making sign-in links, and the server, need neither.
    if name in __all__ and name not in _LINKS:
        from billportal import _client

        return getattr(_client, name)
    raise AttributeError(f"module 'billportal' has no attribute {name!r}")
