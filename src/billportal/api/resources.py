"""The API's objects: customers, billing documents, sign-in links, SSO keys and sign-in events.

Each is a :class:`~billportal.web.shapes.Shape`; the customer's and the documents' are in
billportal.web.objects, which the dashboard's forms share. Money is an integer of minor
units (cents) beside an ISO 4217 currency; times are UNIX seconds; dates are
``YYYY-MM-DD``; quantities are decimal strings, so that no amount is ever a
binary fraction.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from billportal.api.errors import ERROR_CODES
from billportal.core.bounds import TAX_ID
from billportal.core.i18n import LOCALES
from billportal.services.events import EVENT_TYPES
from billportal.services.gateways import GATEWAYS
from billportal.services.mail import KINDS
from billportal.services.payments import HINT_MIN_LENGTH, MAX_SECRET_LENGTH
from billportal.services.sso import GRACE_PERIODS
from billportal.services.webhooks import MAX_OVERLAP, MAX_URL_LENGTH
from billportal.sso.pages import LANDING_HINT, LANDING_PATTERN
from billportal.web.objects import (
    CONTACT,
    CREDIT_NOTE,
    CREDIT_NOTE_STATUSES,
    CURRENCY,
    CURRENCY_HINT,
    CUSTOMER,
    DATE,
    DATE_HINT,
    EMAIL,
    ESTIMATE,
    ESTIMATE_STATUSES,
    ID,
    INVOICE,
    INVOICE_STATUSES,
    LINE_INPUT,
    LINE_ITEM,
    MAX_LINES,
    MONEY,
    NAME_HINT,
    PAYMENT,
    PAYMENT_APPLICATION,
    REFUND,
    REFUND_STATUSES,
    TEXT,
    TIME,
    const,
    integer,
    nonblank,
    nullable,
    text,
)
from billportal.web.shapes import Field, Shape, read_only

# The customer and the documents are web.objects', which the dashboard's forms share; the rest are here.
__all__ = [
    "CONTACT",
    "CREDIT_NOTE",
    "CREDIT_NOTE_STATUSES",
    "CUSTOMER",
    "DATE",
    "DATE_HINT",
    "ESTIMATE",
    "ESTIMATE_STATUSES",
    "ID",
    "INVOICE",
    "INVOICE_STATUSES",
    "LINE_INPUT",
    "LINE_ITEM",
    "MAX_LINES",
    "MONEY",
    "PAYMENT",
    "PAYMENT_APPLICATION",
    "REFUND",
    "REFUND_STATUSES",
    "TIME",
]

MAX_TTL: Final = 366 * 86400

REFUND_REQUEST: Final = Shape(
    "RefundCreate",
    "What to refund of the payment. Send an Idempotency-Key so that a retry never refunds twice.",
    (
        Field("amount", integer(1), "How much to give back, in minor units (default: all that is left)."),
        Field("reason", text(500), "Why: shown to the customer on the payment's receipt."),
    ),
)

DELETED: Final = Shape(
    "Deleted",
    "What a DELETE answers: the object as it was, gone now.",
    (
        read_only("object", {"type": "string"}, "The kind of object deleted."),
        read_only("id", ID, "Its id."),
        read_only("deleted", {"type": "boolean", "enum": [True]}, "Always true."),
    ),
)

# -- sign-in links, SSO keys, sign-in events ------------------------------------------------------

SIGN_IN_LINK_REQUEST: Final = Shape(
    "SignInLinkRequest",
    "What the link should do.",
    (
        Field(
            "ttl",
            integer(1, MAX_TTL),
            "Seconds the link works for (default 300); at most the company's maximum link lifetime.",
        ),
        Field(
            "redirect_to",
            {"type": "string", "maxLength": 40, "pattern": LANDING_PATTERN},
            "The portal page to land on: a page id (default my_account), or a document's path such as /invoices/3.",
            hint=LANDING_HINT,
        ),
        Field("single_use", {"type": "boolean"}, "Whether the link works only once (adds a jti; default false)."),
        Field("issuer", nonblank(200), 'The iss claim (default "billportal-api").', hint=NAME_HINT),
        Field(
            "locale",
            {"type": "string", "enum": list(LOCALES)},
            "The portal's language for this sign-in (the token's locale claim); the customer's saved preference "
            "still comes first.",
            hint="must be one of " + ", ".join(LOCALES),
        ),
    ),
)

SIGN_IN_LINK: Final = Shape(
    "SignInLink",
    "A signed sign-in URL: send the customer's browser to it before it expires.",
    (
        read_only("object", const("sign_in_link"), 'Always "sign_in_link".'),
        read_only("url", {"type": "string"}, "The sign-in URL (a secret until it expires: never log it)."),
        read_only("customer_id", ID, "Whom it signs in."),
        read_only("expires_at", TIME, "When it stops working (UNIX seconds)."),
        read_only("kid", {"type": "string"}, "The SSO key that signed it."),
        read_only("single_use", {"type": "boolean"}, "Whether it works only once."),
        read_only("redirect_to", nullable({"type": "string"}), "The page it lands on, as asked."),
        read_only("locale", nullable({"type": "string"}), "The language it asks for, as asked."),
    ),
)

SSO_KEY: Final = Shape(
    "SsoKey",
    "One of the company's SSO keys (never the secret itself).",
    (
        read_only("object", const("sso_key"), 'Always "sso_key".'),
        read_only("kid", {"type": "string"}, "The key id: put it in the JWT header as kid to name the key."),
        read_only(
            "state",
            {"type": "string", "enum": ["active", "retiring", "revoked"]},
            "active signs and verifies; retiring verifies until retiring_until; revoked does nothing.",
        ),
        read_only("weak", {"type": "boolean"}, "Whether the key is shorter than 32 bytes (imported)."),
        read_only("created_at", TIME, "When it was made."),
        read_only("last_used_at", nullable(TIME), "When it last verified a sign-in (to the minute)."),
        read_only("retiring_until", nullable(TIME), "When a retiring key stops verifying."),
        read_only("revoked_at", nullable(TIME), "When it was revoked."),
    ),
)


MAIL_SETTINGS: Final = Shape(
    "MailSettings",
    "Which kinds of email the company sends (true: sent). Send only those to change.",
    tuple(
        Field(kind.value, {"type": "boolean"}, info.label + ".") for kind, info in KINDS.items() if info.configurable
    ),
)


def _company_fields() -> tuple[Field, ...]:
    return (
        read_only("object", const("company"), 'Always "company".'),
        read_only("username", {"type": "string"}, "The company's portal subdomain: {username}.{base domain}."),
        Field("name", nonblank(200), "The name customers see in the portal's header.", hint=NAME_HINT),
        Field("legal_name", text(200), "The seller's legal name on documents and PDFs (default: name)."),
        Field("address_line1", text(200), "The seller's address, first line."),
        Field("address_line2", text(200), "The seller's address, second line."),
        Field("city", text(100), "City."),
        Field("postal_code", text(32), "Postal code."),
        Field(
            "region",
            text(100),
            "State or region: one of the country's ISO 3166-2 subdivisions where they are known (NM, US-NM or"
            " New Mexico, kept as NM).",
        ),
        Field(
            "country",
            {"type": "string", "maxLength": 2, "pattern": "^$|^[A-Za-z]{2}$"},
            "ISO 3166-1 alpha-2 country code, such as US.",
            hint="must be an ISO 3166-1 alpha-2 country code such as US, or empty",
        ),
        Field(
            "tax_id",
            {"type": "string", "maxLength": 64, "pattern": f"^$|^{TAX_ID}$"},
            "The seller's tax id (VAT, EIN, ...), on every document.",
            hint="must be letters and digits, with spaces, dots, hyphens or slashes, or empty",
        ),
        Field("support_email", EMAIL, "Where customers write for help.", hint="must be an e-mail address, or empty"),
        Field("support_phone", text(64), "Where customers call for help."),
        Field("time_zone", nonblank(64), "IANA time zone the portal shows times in, such as America/Denver."),
        Field("default_currency", CURRENCY, "ISO 4217 currency of new customers.", hint=CURRENCY_HINT),
        Field(
            "default_locale",
            {"type": "string", "enum": list(LOCALES)},
            "The portal's language when neither the customer, the sign-in link nor the browser names one.",
            hint="must be one of " + ", ".join(LOCALES),
        ),
        Field(
            "accent_color",
            {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
            "The portal's accent colour, #rrggbb: white text on it must reach a 4.5:1 contrast.",
            hint="must be a colour written #rrggbb",
        ),
        Field(
            "payment_instructions",
            text(2000, TEXT),
            "How to pay offline (bank details...): on the Pay page and every invoice and its PDF.",
        ),
        Field("footer_text", text(500, TEXT), "Text at the foot of every portal page."),
        read_only(
            "logo_url",
            nullable({"type": "string"}),
            "The logo's address on the portal (upload it in the dashboard or with billportal company set --logo).",
        ),
        Field("mail_settings", {"shape": MAIL_SETTINGS}, "Which kinds of email the company sends (docs/email.md)."),
        Field(
            "email_sign_in",
            {"type": "boolean"},
            "Whether customers may ask the portal for a sign-in link by email (off by default; docs/integration.md).",
        ),
    )


COMPANY: Final = Shape(
    "Company",
    "The company's settings: what its customers see of it in the portal and on every document.",
    _company_fields(),
)

EMPTY_REQUEST: Final = Shape(
    "EmptyRequest",
    "An empty JSON object, {}: the operation takes no options, and a body of JSON is what no web form can send.",
    (),
)

SSO_KEY_ROTATION_REQUEST: Final = Shape(
    "SsoKeyRotationRequest",
    "How long the current key keeps verifying links after the rotation.",
    (
        Field(
            "grace_period",
            {"type": "string", "enum": list(GRACE_PERIODS)},
            "none, 1h, 24h (default) or 7d: deploy the new key to every backend within it.",
        ),
    ),
)

SSO_KEY_ROTATION: Final = Shape(
    "SsoKeyRotation",
    "A new active SSO key. The key is shown in this answer only: store it in your backend's secrets now.",
    (
        read_only("object", const("sso_key_rotation"), 'Always "sso_key_rotation".'),
        read_only("kid", {"type": "string"}, "The new key's id."),
        read_only("key", {"type": "string"}, "The new SSO key (HS256 secret: sign with its UTF-8 bytes)."),
        read_only("previous_kid", nullable({"type": "string"}), "The key that was active before."),
        read_only("retiring_until", nullable(TIME), "Until when the previous key still verifies links."),
    ),
)

SIGN_IN_EVENT: Final = Shape(
    "SignInEvent",
    "One sign-in attempt: its result and reason code (see docs/integration.md for every code).",
    (
        read_only("object", const("sign_in_event"), 'Always "sign_in_event".'),
        read_only("id", ID, "The event id (newer events have larger ids)."),
        read_only("at", TIME, "When (UNIX seconds)."),
        read_only("result", {"type": "string", "enum": ["success", "failure"]}, "success or failure."),
        read_only("reason", {"type": "string"}, "The reason code: ok, or why it failed."),
        read_only("customer_id", nullable(ID), "The customer named by the token, if it could be read."),
        read_only("contact_id", nullable(ID), "The customer's contact who signed in (by email), if one did."),
        read_only("issuer", nullable({"type": "string"}), "The token's iss claim."),
        read_only("kid", nullable({"type": "string"}), "The key named by, or that verified, the token."),
        read_only("jti", nullable({"type": "string"}), "The token's jti claim."),
        read_only("ip", {"type": "string"}, "The browser's address."),
        read_only("user_agent", {"type": "string"}, "The browser's user agent (first 300 characters)."),
        read_only(
            "method",
            {"type": "string", "enum": ["sso", "email"]},
            "How: sso (a signed link from the company's app) or email (an emailed link or code).",
        ),
    ),
)


# -- payment settings ----------------------------------------------------------------------------

_GATEWAY_DOC: Final = "none (customers pay offline), test (the built-in test gateway: test mode only) or stripe."
_HINT_DOC: Final = (
    f'The last 4 characters, as "…abcd" (null when not set, or shorter than {HINT_MIN_LENGTH} characters).'
)
PAYMENT_SETTINGS: Final = Shape(
    "PaymentSettings",
    "How the company's customers pay online. The gateway's secrets are write-only: only whether each is set, "
    "and its last 4 characters, are ever shown.",
    (
        read_only("object", const("payment_settings"), 'Always "payment_settings".'),
        read_only("gateway", {"type": "string", "enum": list(GATEWAYS)}, _GATEWAY_DOC),
        read_only("test_mode", {"type": "boolean"}, "Test mode: test cards only, no real money; the portal says so."),
        read_only("allow_partial", {"type": "boolean"}, "Whether customers may pay an amount of their choice."),
        read_only("allow_saved_methods", {"type": "boolean"}, "Whether customers may save cards."),
        read_only("allow_autopay", {"type": "boolean"}, "Whether customers may turn AutoPay on."),
        read_only("autopay_retry_days", {"type": "string"}, "Days after a failed AutoPay charge it is retried: 1,3,7."),
        read_only("publishable_key", {"type": "string"}, "The gateway's publishable key (Stripe: pk_...)."),
        read_only("api_base", {"type": "string"}, "The gateway's API base URL; empty for the gateway itself."),
        read_only("secret_key_set", {"type": "boolean"}, "Whether the gateway's secret key is stored (sealed)."),
        read_only("secret_key_hint", nullable({"type": "string"}), _HINT_DOC),
        read_only("webhook_secret_set", {"type": "boolean"}, "Whether the webhook signing secret is stored (sealed)."),
        read_only("webhook_secret_hint", nullable({"type": "string"}), _HINT_DOC),
        read_only("payment_instructions", {"type": "string"}, "How to pay offline, shown on the portal's Pay page."),
        read_only("updated_at", TIME, "When the payment settings last changed (0: never)."),
    ),
)

_SECRET: Final = {"type": "string", "minLength": 1, "maxLength": MAX_SECRET_LENGTH}
MAX_INSTRUCTIONS: Final = 5000
PAYMENT_SETTINGS_UPDATE: Final = Shape(
    "PaymentSettingsUpdate",
    "The changes to the payment settings: send only what changes. The secrets are sealed at once and never "
    "shown again.",
    (
        Field("gateway", {"type": "string", "enum": list(GATEWAYS)}, _GATEWAY_DOC),
        Field("test_mode", {"type": "boolean"}, "Test mode (needed for the built-in test gateway)."),
        Field("allow_partial", {"type": "boolean"}, "Whether customers may pay an amount of their choice."),
        Field("allow_saved_methods", {"type": "boolean"}, "Whether customers may save cards."),
        Field("allow_autopay", {"type": "boolean"}, "Whether customers may turn AutoPay on."),
        Field(
            "autopay_retry_days",
            text(64),
            "Up to five increasing day counts, such as 1,3,7 (empty: no retries).",
        ),
        Field("publishable_key", text(255), "The gateway's publishable key (Stripe: pk_...)."),
        Field(
            "api_base", text(2000), "An http(s) URL to point the company at a local stand-in; empty for the gateway."
        ),
        Field("secret_key", _SECRET, "The gateway's secret key (Stripe: sk_... or rk_...). Write-only."),
        Field("webhook_secret", _SECRET, "The gateway's webhook signing secret (Stripe: whsec_...). Write-only."),
        Field(
            "payment_instructions",
            text(MAX_INSTRUCTIONS, TEXT),
            "How to pay offline (bank details, checks), shown on the Pay page and on PDFs.",
        ),
    ),
)


# -- webhook endpoints and their delivery log -------------------------------------------------------

_EVENT_TYPES: Final = {
    "type": "array",
    "items": {"type": "string", "enum": list(EVENT_TYPES)},
    "minItems": 1,
    "maxItems": 50,
}
_ENDPOINT_FIELDS: Final = (
    read_only("object", const("webhook_endpoint"), 'Always "webhook_endpoint".'),
    read_only("id", ID, "The endpoint's id."),
    Field(
        "url",
        text(MAX_URL_LENGTH),
        "Where events are POSTed: an https URL reaching a public address (redirects are not followed).",
        required=True,
    ),
    Field("event_types", _EVENT_TYPES, "The event types sent to it.", required=True),
    Field("description", text(200), "What it is for (shown in the dashboard)."),
    Field(
        "enabled",
        {"type": "boolean"},
        "Whether events are sent to it; one failing for three days is turned off (set true to resume).",
    ),
    read_only("disabled_reason", {"type": "string"}, "Why it was turned off, if it was; empty otherwise."),
    read_only("previous_secret_until", nullable(TIME), "Until when the secret before a rotation also signs."),
    read_only("created_at", TIME, "When it was added."),
    read_only("updated_at", TIME, "When it last changed."),
)
WEBHOOK_ENDPOINT: Final = Shape(
    "WebhookEndpoint", "Where the company's events are sent (never its signing secret).", _ENDPOINT_FIELDS
)
WEBHOOK_ENDPOINT_WITH_SECRET: Final = Shape(
    "WebhookEndpointWithSecret",
    "An endpoint and its new signing secret. The secret is in this answer only: store it in your receiver now.",
    (
        *_ENDPOINT_FIELDS,
        read_only(
            "secret",
            {"type": "string"},
            "The signing secret (whsec_...): verify the webhook-signature header with any Standard Webhooks library.",
        ),
    ),
)
WEBHOOK_ROTATION_REQUEST: Final = Shape(
    "WebhookSecretRotationRequest",
    "How long the secret being replaced keeps signing beside the new one.",
    (Field("overlap", integer(0, MAX_OVERLAP), "Seconds (default 86400); 0 stops the old secret at once."),),
)
WEBHOOK_ATTEMPT: Final = Shape(
    "WebhookAttempt",
    "One try to deliver an event.",
    (
        read_only("at", TIME, "When it was tried."),
        read_only("status_code", nullable(integer(100, 599)), "The receiver's HTTP status; null: no answer."),
        read_only("duration_ms", integer(0, 10**9), "How long the receiver took to answer, in milliseconds."),
        read_only("error", {"type": "string"}, "Why it failed (empty on success)."),
        read_only("response_head", {"type": "string"}, "The first 512 bytes of the answer's body."),
    ),
)
WEBHOOK_DELIVERY: Final = Shape(
    "WebhookDelivery",
    "One event sent to one endpoint, and its attempts.",
    (
        read_only("object", const("webhook_delivery"), 'Always "webhook_delivery".'),
        read_only("id", ID, "The delivery's id (newest first in lists)."),
        read_only("event_id", {"type": "string"}, "The event's id: the webhook-id header."),
        read_only("type", {"type": "string", "enum": list(EVENT_TYPES)}, "The event type."),
        read_only(
            "state",
            {"type": "string", "enum": ["pending", "delivered", "failed"]},
            "pending: to be tried (again); delivered: answered 2xx; failed: retried for three days in vain.",
        ),
        read_only("attempts", {"type": "array", "items": WEBHOOK_ATTEMPT}, "Every try, oldest first."),
        read_only("next_attempt_at", nullable(TIME), "When a pending delivery is tried next."),
        read_only("created_at", TIME, "When it was queued (or queued again)."),
    ),
)
WEBHOOK_REDELIVERY_REQUEST: Final = Shape(
    "WebhookRedeliveryRequest",
    "What to send again: one event by its id, or every failed one since a time (send one of the two).",
    (
        Field("event_id", text(40), "The event's id (webhook-id)."),
        Field("failed_since", TIME, "Every event that failed at or after this time (UNIX seconds)."),
    ),
)
WEBHOOK_REDELIVERY: Final = Shape(
    "WebhookRedelivery",
    "How many events will be sent again (at once, in order per object).",
    (
        read_only("object", const("webhook_redelivery"), 'Always "webhook_redelivery".'),
        read_only("count", integer(0, 10**9), "How many."),
    ),
)


def list_of(shape: Shape) -> Shape:
    """One page of a list, oldest first; ask for the next with ``cursor=next_cursor``."""
    return Shape(
        f"{shape.name}List",
        f"One page of {shape.name} objects.",
        (
            read_only("object", const("list"), 'Always "list".'),
            read_only("data", {"type": "array", "items": shape}, "The objects on this page."),
            read_only("has_more", {"type": "boolean"}, "Whether another page follows."),
            read_only(
                "next_cursor",
                nullable({"type": "string"}),
                "Pass as cursor (with the same filters) for the next page; null on the last page.",
            ),
        ),
    )


ERROR: Final = Shape(
    "ErrorBody",
    "What went wrong, for programs (code) and for people (message).",
    (
        read_only("code", {"type": "string", "enum": sorted(ERROR_CODES)}, "A stable error code (see the table)."),
        read_only("message", {"type": "string"}, "What is wrong and what to do, in English."),
        read_only("field", nullable({"type": "string"}), "The request field at fault, such as lines[0].quantity."),
    ),
)
ERROR_RESPONSE: Final = Shape("Error", "Every error answer.", (read_only("error", {"shape": ERROR}, "The error."),))


def api_object(kind: str, record: Any, *, bounced: bool = False) -> dict[str, Any]:
    """A stored record as the API's answer reads it: its fields, ``object``, and what is worked out from them."""
    values = dataclasses.asdict(record)
    for part in ("lines", "applications", "refunds"):
        if part in values:
            values[part] = list(values[part])  # asdict keeps tuples; JSON arrays are lists
    values["object"] = kind
    if kind == "customer":
        values["email_bounced"] = bounced
    if kind == "payment":
        values["unapplied"] = record.unapplied
        values["refunds"] = [{**refund, "object": "refund"} for refund in values["refunds"]]
    return values
