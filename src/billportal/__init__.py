"""billportal: sign customers into their billing portal with a signed link.

The SDK needs only PyJWT and httpx: ``billportal.sign_in_url(sso_key, company, customer_id)``
makes a link with the SSO key; ``billportal.Client(api_key, base_url)`` drives the REST API.
The server lives in the subpackages and needs ``pip install 'billportal[server]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
        Refund,
        ServiceUnavailableError,
        SignInEvent,
        SignInLink,
        SsoKey,
        SsoKeyRotation,
    )
    from billportal._links import make_token, parse_duration, sign_in_url

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
    "Refund",
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
    # Each half of the SDK loads on first use: the API client (and httpx) is not needed to make links,
    # nor are PyJWT and cryptography by a command that only prints its help.
    if name in _LINKS:
        from billportal import _links

        return getattr(_links, name)
    if name in __all__:
        from billportal import _client

        return getattr(_client, name)
    raise AttributeError(f"module 'billportal' has no attribute {name!r}")
