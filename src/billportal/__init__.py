"""billportal: sign customers into their billing portal with a signed link.

The SDK needs only PyJWT and httpx: ``billportal.sign_in_url(sso_key, company, customer_id)``
makes a link with the SSO key; ``billportal.Client(api_key, base_url)`` drives the REST API.
The server lives in the subpackages and needs ``pip install 'billportal[server]'``.
"""

from __future__ import annotations

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
