"""The API's errors: ``{"error": {"code", "message", "field"}}`` with a stable code.

Codes are a public contract, listed in the OpenAPI document and the API docs
with their status: add codes, never rename or reuse one. Messages never quote
a key, a token or the value that was sent.
"""

from __future__ import annotations

import json
from typing import Any, Final

from starlette.responses import Response

# code: (HTTP status, what it means and what to do)
ERROR_CODES: Final[dict[str, tuple[int, str]]] = {
    "invalid_json": (400, "The body is not JSON in UTF-8."),
    "invalid_body": (400, "The body is not a JSON object, or is empty: every POST and PATCH sends one ({} at least)."),
    "invalid_field": (400, "A field's value does not fit its schema; field names it (such as lines[0].quantity)."),
    "missing_field": (400, "A required field is missing; field names it."),
    "unknown_field": (400, "A field that this object does not have was sent (check the spelling)."),
    "invalid_parameter": (400, "A query parameter or header has a bad value; field names it."),
    "unauthorized": (
        401,
        "No API key, or one that is unknown or revoked. Send it as the Basic user name or as a Bearer token.",
    ),
    "insufficient_scope": (403, "The API key lacks the scope this operation needs (the message names it)."),
    "cross_site_request": (403, "The request came from a web page of another site: call the API from a backend."),
    "not_found": (404, "Nothing at this address, or no such object in this company."),
    "method_not_allowed": (405, "The address does not take this method; the Allow header lists those it takes."),
    "request_too_large": (413, "The body is larger than 1 MiB."),
    "unsupported_media_type": (415, "A body must be JSON, sent with Content-Type: application/json."),
    "customer_exists": (409, "A customer with this id already exists."),
    "customer_id_required": (409, "No id above the company's largest customer id is free: send the customer's id."),
    "contact_exists": (409, "The customer already has a contact with this email."),
    "too_many_contacts": (409, "The customer has the most contacts it may have (50); remove one first."),
    "customer_has_documents": (409, "The customer has documents; only customers without any can be deleted."),
    "number_taken": (409, "Another document of this kind already has this number."),
    "invoice_not_editable": (409, "The invoice is paid, voided or has payments; only some fields may change."),
    "credit_note_not_editable": (
        409,
        "The credit note is no longer a draft (or is voided); only some fields may change.",
    ),
    "estimate_not_editable": (409, "The estimate is approved or voided; only its notes may change."),
    "invalid_status_change": (409, "The document cannot move from its status to the one asked for."),
    "not_a_draft": (409, "Only drafts are deleted; void the document instead."),
    "not_voidable": (409, "The document cannot be voided in its state (the message says why)."),
    "sso_disabled": (409, "Single sign-on is off for the company; turn it on in the dashboard."),
    "no_active_key": (409, "The company has no active SSO key; rotate to make one."),
    "key_not_retiring": (409, "Only a retiring SSO key can be revoked; rotate to replace the active one."),
    "conflict": (409, "The change conflicts with the data as it is now, or with another made at the same time."),
    "payment_has_refunds": (409, "The payment has refunds, so it is kept; refund what is left of it instead."),
    "refund_pending": (409, "The gateway has not answered the refund yet; retry with the same Idempotency-Key."),
    "refund_exceeds_payment": (422, "The refund is more than what is left of the payment to refund."),
    "payment_fully_refunded": (422, "The whole payment is refunded already."),
    "refund_failed": (422, "The payment gateway refused the refund (the message says why); nothing was given back."),
    "gateway_unavailable": (
        422,
        "The payment was taken by a payment gateway that is not connected now, or cannot be reached; retry later.",
    ),
    "customer_not_found": (422, "customer_id names no customer of the company."),
    "invoice_not_open": (422, "The invoice is not an open invoice of this customer."),
    "currency_mismatch": (422, "The invoice is in another currency than the payment or credit note."),
    "amount_exceeds_balance": (422, "More would be applied to an invoice than its balance."),
    "overapplied": (422, "The applications add up to more than the payment."),
    "duplicate_invoice": (422, "One invoice is listed twice in the applications."),
    "discount_too_large": (422, "A line's discount is larger than quantity times unit price."),
    "amount_too_large": (422, "A line's quantity times unit price is above 10^12 minor units."),
    "date_order": (422, "The due or expiry date is before the issue date."),
    "state_not_in_country": (
        422,
        "The state is not one of the country's ISO 3166-2 subdivisions: send its code (NM), US-NM or its name.",
    ),
    "invalid_country": (422, "The country is not an ISO 3166-1 alpha-2 code (such as US or DE)."),
    "region_not_in_country": (422, "The region is not one of the country's ISO 3166-2 subdivisions."),
    "invalid_email": (422, 'The e-mail address is not one (such as billing@example.com); send "" for none.'),
    "invalid_phone": (422, "The phone number holds more than digits, spaces, +, (, ), . and -."),
    "invalid_time_zone": (422, "The time zone is not an IANA time zone name (such as America/Denver or UTC)."),
    "invalid_currency": (422, "The currency is not an ISO 4217 code in capitals (such as USD or EUR)."),
    "invalid_color": (422, "The accent colour is not written #rrggbb."),
    "low_contrast": (422, "White text on the accent colour would be below WCAG AA's 4.5:1: choose a darker colour."),
    "invalid_status": (422, "The status does not go with the other fields sent."),
    "ttl_too_long": (422, "The link would outlive the company's maximum link lifetime."),
    "issuer_not_allowed": (422, "The issuer is not in the company's list of allowed issuers."),
    "invalid_setting": (
        422,
        "A payment setting fits its schema but breaks a rule (a retry schedule must increase); field names it.",
    ),
    "test_mode_required": (422, "The built-in test gateway can only be chosen in test mode: send test_mode true."),
    "idempotency_key_reused": (
        422,
        "The Idempotency-Key came before with another request (method, path or body); use a new key.",
    ),
    "invalid_url": (422, "The webhook URL is not an https URL (http only to loopback, in test mode)."),
    "private_address": (422, "The webhook URL names a private or loopback address."),
    "invalid_event_types": (422, "event_types names no event type, or one that does not exist."),
    "invalid_redelivery": (
        422,
        "A redelivery names one event (event_id) or a time (failed_since), not both or neither.",
    ),
    "too_many_endpoints": (409, "The company has as many webhook endpoints as it may have (20)."),
    "internal_error": (500, "Something went wrong on our side; it has been logged. Retry later."),
    "unavailable": (503, "The service is busy or restarting; retry after Retry-After seconds."),
}

JSON_HEADERS: Final = {"Cache-Control": "no-store"}


def encode_json(value: Any) -> str:
    """JSON text as the API sends it."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class ApiError(Exception):
    """An error answer: raise it from a view, and the API answers it as JSON."""

    def __init__(
        self, code: str, message: str | None = None, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        status, default = ERROR_CODES[code]
        super().__init__(message or default)
        self.status_code = status
        self.code = code
        self.message = message or default
        self.field = field
        self.headers = headers

    def response(self) -> Response:
        return error_response(self.code, self.message, self.field, self.headers)


def error_response(
    code: str,
    message: str | None = None,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    status_code: int | None = None,
) -> Response:
    status, default = ERROR_CODES[code]
    body = encode_json({"error": {"code": code, "message": message or default, "field": field}})
    return Response(
        body,
        status_code=status_code or status,
        media_type="application/json",
        headers={**JSON_HEADERS, **(headers or {})},
    )


_BY_STATUS: Final = {
    400: "invalid_body",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    414: "request_too_large",
    431: "request_too_large",
    503: "unavailable",
}


def status_error(status_code: int, message: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """The JSON counterpart of the HTML error pages, for :class:`~billportal.web.errors.ErrorGuard`."""
    del message  # the HTML pages' wording; the code's own message fits an API better
    code = _BY_STATUS.get(status_code, "invalid_parameter" if status_code < 500 else "internal_error")
    return error_response(code, headers=headers, status_code=status_code)
