"""Every API operation, once: the router, the OpenAPI document and the docs page are built from this table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from billportal.api import resources as r
from billportal.api.fields import Shape
from billportal.services.billing import Books
from billportal.sso.reasons import Reason

Create = Callable[[Books, Mapping[str, Any]], Any]
Update = Callable[[Books, int, Mapping[str, Any]], Any]
Change = Callable[[Books, int], Any]  # delete or void: the object as it ends up


@dataclass(frozen=True, slots=True)
class Param:
    """A path, query or header parameter."""

    name: str
    where: str  # "path", "query" or "header"
    schema: Mapping[str, Any]
    doc: str
    required: bool = False


@dataclass(frozen=True, slots=True)
class Collection:
    """A kind of object with the usual create, read, update, delete (and void) operations."""

    kind: str  # "credit_note"
    path: str  # "/credit_notes"
    tag: str  # "Credit notes"
    shape: Shape
    create: Create  # each a method of the one billing write model
    update: Update
    delete: Change
    void: Change | None = None
    statuses: tuple[str, ...] = ()
    delete_doc: str = ""
    void_doc: str = ""

    @property
    def label(self) -> str:
        return self.kind.replace("_", " ")

    @property
    def title(self) -> str:
        return self.shape.name  # "CreditNote"


@dataclass(frozen=True, slots=True)
class Operation:
    """One method on one path."""

    method: str
    path: str  # OpenAPI form: "/invoices/{id}"
    name: str  # operationId
    tag: str
    summary: str
    description: str
    handler: str  # the Api method that answers it
    answer: Shape
    status: int = 200
    body: Shape | None = None  # every POST and PATCH has one: a JSON object, {} at least
    params: tuple[Param, ...] = ()
    collection: Collection | None = None
    conflicts: bool = False  # may answer 409
    unprocessable: bool = False  # may answer 422


COLLECTIONS: Final = (
    Collection(
        "customer",
        "/customers",
        "Customers",
        r.CUSTOMER,
        Books.create_customer,
        Books.update_customer,
        Books.delete_customer,
        delete_doc="Deletes a customer without documents, and signs it out of the portal.",
    ),
    Collection(
        "invoice",
        "/invoices",
        "Invoices",
        r.INVOICE,
        Books.create_invoice,
        Books.update_invoice,
        Books.delete_invoice,
        Books.void_invoice,
        r.INVOICE_STATUSES,
        delete_doc="Deletes a draft invoice. An invoice that was issued is voided instead.",
        void_doc="Voids an open invoice without payments or credits: nothing is owed on it any more.",
    ),
    Collection(
        "payment",
        "/payments",
        "Payments",
        r.PAYMENT,
        Books.record_payment,
        Books.update_payment,
        Books.delete_payment,
        delete_doc="Deletes a payment (a mistake, or one that bounced): the invoices it paid are owed again.",
    ),
    Collection(
        "credit_note",
        "/credit_notes",
        "Credit notes",
        r.CREDIT_NOTE,
        Books.create_credit_note,
        Books.update_credit_note,
        Books.delete_credit_note,
        Books.void_credit_note,
        r.CREDIT_NOTE_STATUSES,
        delete_doc="Deletes a draft credit note. One that was issued is voided instead.",
        void_doc="Voids a credit note; one applied to an invoice gives the invoice its balance back.",
    ),
    Collection(
        "estimate",
        "/estimates",
        "Estimates",
        r.ESTIMATE,
        Books.create_estimate,
        Books.update_estimate,
        Books.delete_estimate,
        Books.void_estimate,
        r.ESTIMATE_STATUSES,
        delete_doc="Deletes a draft estimate. One that was sent is voided instead.",
        void_doc="Voids an estimate: the customer can no longer approve it.",
    ),
)

ID_PARAM: Final = Param("id", "path", r.ID, "The object's id.", required=True)
IDEMPOTENCY: Final = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "Any unique string (a UUID) per logical request: a retry with the same key and body answers as the first "
    "time and changes nothing more. Kept 24 hours.",
)
PAGE_PARAMS: Final = (
    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100}, "Objects per page: 1 to 100 (25)."),
    Param("cursor", "query", {"type": "string", "pattern": "^[0-9]{1,19}$"}, "The next_cursor of the previous page."),
)
UPDATED_AFTER: Final = Param(
    "updated_after",
    "query",
    r.TIME,
    "Only objects changed after this UNIX time: poll with the time of your last sync to get what changed.",
)
CUSTOMER_FILTER: Final = Param("customer_id", "query", r.ID, "Only this customer's.")


def _collection_operations(c: Collection) -> list[Operation]:
    one = f"{c.path}/{{id}}"
    filters = [*PAGE_PARAMS, UPDATED_AFTER]
    if c.kind != "customer":
        filters.append(CUSTOMER_FILTER)
    if c.statuses:
        filters.append(Param("status", "query", {"type": "string", "enum": list(c.statuses)}, "Only this status."))
    ops = [
        Operation(
            "GET",
            c.path,
            f"list{c.title}s",
            c.tag,
            f"List {c.label}s",
            f"The company's {c.label}s, oldest first, a page at a time.",
            "list_objects",
            r.list_of(c.shape),
            params=tuple(filters),
            collection=c,
        ),
        Operation(
            "POST",
            c.path,
            f"create{c.title}",
            c.tag,
            f"Create {_a(c.label)}",
            f"Creates {_a(c.label)}. Send an Idempotency-Key so that a retry never makes a second one.",
            "create_object",
            c.shape,
            status=201,
            body=c.shape.for_create(),
            params=(IDEMPOTENCY,),
            collection=c,
            conflicts=True,
            unprocessable=True,
        ),
        Operation(
            "GET",
            one,
            f"get{c.title}",
            c.tag,
            f"Get {_a(c.label)}",
            f"One {c.label} by id.",
            "get_object",
            c.shape,
            params=(ID_PARAM,),
            collection=c,
        ),
        Operation(
            "PATCH",
            one,
            f"update{c.title}",
            c.tag,
            f"Update {_a(c.label)}",
            "Changes the fields sent; the others stay as they are.",
            "update_object",
            c.shape,
            body=c.shape.for_update(),
            params=(ID_PARAM,),
            collection=c,
            conflicts=True,
            unprocessable=True,
        ),
        Operation(
            "DELETE",
            one,
            f"delete{c.title}",
            c.tag,
            f"Delete {_a(c.label)}",
            c.delete_doc,
            "delete_object",
            r.DELETED,
            params=(ID_PARAM,),
            collection=c,
            conflicts=True,
        ),
    ]
    if c.void is not None:
        ops.append(
            Operation(
                "POST",
                f"{one}/void",
                f"void{c.title}",
                c.tag,
                f"Void {_a(c.label)}",
                c.void_doc,
                "void_object",
                c.shape,
                body=r.EMPTY_REQUEST,
                params=(ID_PARAM, IDEMPOTENCY),
                collection=c,
                conflicts=True,
                unprocessable=True,
            )
        )
    return ops


def _a(label: str) -> str:
    return ("an " if label[0] in "aeiou" else "a ") + label


# -- payment settings (Settings > Payments, as the dashboard and `billportal payments` set them) ---------

PAYMENT_SETTINGS_OPERATIONS: Final = (
    Operation(
        "GET",
        "/payment_settings",
        "getPaymentSettings",
        "Payment settings",
        "Get the payment settings",
        "How the company's customers pay online. The gateway's secrets are never shown: only whether each is "
        "set, and its last 4 characters.",
        "get_payment_settings",
        r.PAYMENT_SETTINGS,
    ),
    Operation(
        "PATCH",
        "/payment_settings",
        "updatePaymentSettings",
        "Payment settings",
        "Update the payment settings",
        "Changes the fields sent; the others stay as they are. The secrets are checked as the dashboard checks "
        "them, sealed at once and never shown again (the answer says only that they are set). The change goes to "
        "the audit trail, naming the fields changed, never their values.",
        "update_payment_settings",
        r.PAYMENT_SETTINGS,
        body=r.PAYMENT_SETTINGS_UPDATE,
        unprocessable=True,
    ),
)


WEBHOOK_OPERATIONS: Final = (
    Operation(
        "GET",
        "/webhook_endpoints",
        "listWebhookEndpoints",
        "Webhooks",
        "List webhook endpoints",
        "The company's webhook endpoints, oldest first (never a signing secret).",
        "list_webhook_endpoints",
        r.list_of(r.WEBHOOK_ENDPOINT),
    ),
    Operation(
        "POST",
        "/webhook_endpoints",
        "createWebhookEndpoint",
        "Webhooks",
        "Add a webhook endpoint",
        "Adds an endpoint for the event types chosen, and answers its signing secret once.",
        "create_webhook_endpoint",
        r.WEBHOOK_ENDPOINT_WITH_SECRET,
        status=201,
        body=r.WEBHOOK_ENDPOINT.for_create(),
        params=(IDEMPOTENCY,),
        conflicts=True,
        unprocessable=True,
    ),
    Operation(
        "GET",
        "/webhook_endpoints/{id}",
        "getWebhookEndpoint",
        "Webhooks",
        "Get a webhook endpoint",
        "One endpoint by id.",
        "get_webhook_endpoint",
        r.WEBHOOK_ENDPOINT,
        params=(ID_PARAM,),
    ),
    Operation(
        "PATCH",
        "/webhook_endpoints/{id}",
        "updateWebhookEndpoint",
        "Webhooks",
        "Update a webhook endpoint",
        "Changes the fields sent: its URL, event types, description, or turns it on (again) or off.",
        "update_webhook_endpoint",
        r.WEBHOOK_ENDPOINT,
        body=r.WEBHOOK_ENDPOINT.for_update(),
        params=(ID_PARAM,),
        unprocessable=True,
    ),
    Operation(
        "POST",
        "/webhook_endpoints/{id}/rotate_secret",
        "rotateWebhookSecret",
        "Webhooks",
        "Rotate an endpoint's signing secret",
        "Makes a new signing secret and answers it once. During the overlap every event carries two "
        "signatures (the new secret's and the old one's), so receivers switch without a refused event.",
        "rotate_webhook_secret",
        r.WEBHOOK_ENDPOINT_WITH_SECRET,
        status=201,
        body=r.WEBHOOK_ROTATION_REQUEST,
        params=(ID_PARAM, IDEMPOTENCY),
        unprocessable=True,
    ),
    Operation(
        "GET",
        "/webhook_endpoints/{id}/deliveries",
        "listWebhookDeliveries",
        "Webhooks",
        "List an endpoint's deliveries",
        "The delivery log, newest first: each event with its attempts, status codes, response times and "
        "the first bytes of each answer.",
        "list_webhook_deliveries",
        r.list_of(r.WEBHOOK_DELIVERY),
        params=(ID_PARAM, *PAGE_PARAMS),
    ),
    Operation(
        "POST",
        "/webhook_endpoints/{id}/redeliver",
        "redeliverWebhooks",
        "Webhooks",
        "Send events again",
        "Sends one event again (event_id), or every event that failed since a time (failed_since).",
        "redeliver_webhooks",
        r.WEBHOOK_REDELIVERY,
        body=r.WEBHOOK_REDELIVERY_REQUEST,
        params=(ID_PARAM, IDEMPOTENCY),
        unprocessable=True,
    ),
    Operation(
        "DELETE",
        "/webhook_endpoints/{id}",
        "deleteWebhookEndpoint",
        "Webhooks",
        "Remove a webhook endpoint",
        "Removes the endpoint with its delivery log; events not yet delivered to it are dropped.",
        "delete_webhook_endpoint",
        r.DELETED,
        params=(ID_PARAM,),
    ),
)

OPERATIONS: Final[tuple[Operation, ...]] = (
    *(op for c in COLLECTIONS for op in _collection_operations(c)),
    Operation(
        "POST",
        "/payments/{id}/refunds",
        "createRefund",
        "Payments",
        "Refund a payment",
        "Gives back some or all of a payment (no amount: all that is left), never more than it. A payment taken "
        "online is refunded at its gateway too; one recorded offline only in the books. The invoices it paid are "
        "owed again. Send an Idempotency-Key: a retry answers the same refund and never refunds twice.",
        "create_refund",
        r.REFUND,
        status=201,
        body=r.REFUND_REQUEST,
        params=(ID_PARAM, IDEMPOTENCY),
        conflicts=True,
        unprocessable=True,
    ),
    Operation(
        "GET",
        "/payments/{id}/refunds",
        "listRefunds",
        "Payments",
        "List a payment's refunds",
        "The payment's refunds, oldest first (all of them, on one page).",
        "list_refunds",
        r.list_of(r.REFUND),
        params=(ID_PARAM,),
    ),
    Operation(
        "POST",
        "/customers/{id}/sign_in_links",
        "createSignInLink",
        "Sign-in links",
        "Make a sign-in link",
        "A signed sign-in URL for the customer, made with the company's active SSO key on the server: for "
        "backends that would rather not hold the SSO key. Make one each time the customer clicks. Send {} "
        "for the defaults.",
        "create_sign_in_link",
        r.SIGN_IN_LINK,
        status=201,
        body=r.SIGN_IN_LINK_REQUEST,
        params=(ID_PARAM, IDEMPOTENCY),
        conflicts=True,
        unprocessable=True,
    ),
    Operation(
        "GET",
        "/customers/{id}/contacts",
        "listContacts",
        "Contacts",
        "List a customer's contacts",
        "The customer's contacts, oldest first (all of them, on one page: at most 50).",
        "list_contacts",
        r.list_of(r.CONTACT),
        params=(ID_PARAM,),
    ),
    Operation(
        "POST",
        "/customers/{id}/contacts",
        "createContact",
        "Contacts",
        "Add a contact to a customer",
        "Adds a person who signs in by email to the customer's portal with the role given. One contact per "
        "address per customer: a second with the same email (even sent at the same moment) is refused with "
        "contact_exists. Send an Idempotency-Key to retry safely.",
        "create_contact",
        r.CONTACT,
        status=201,
        body=r.CONTACT.for_create(),
        params=(ID_PARAM, IDEMPOTENCY),
        conflicts=True,
    ),
    Operation(
        "GET",
        "/contacts/{id}",
        "getContact",
        "Contacts",
        "Get a contact",
        "One contact of one of the company's customers.",
        "get_contact",
        r.CONTACT,
        params=(ID_PARAM,),
    ),
    Operation(
        "PATCH",
        "/contacts/{id}",
        "updateContact",
        "Contacts",
        "Update a contact",
        "Changes the fields sent. A new email or role signs the contact out of the portal.",
        "update_contact",
        r.CONTACT,
        body=r.CONTACT.for_update(),
        params=(ID_PARAM,),
        conflicts=True,
    ),
    Operation(
        "DELETE",
        "/contacts/{id}",
        "deleteContact",
        "Contacts",
        "Remove a contact",
        "Removes the contact and signs them out of the portal.",
        "delete_contact",
        r.DELETED,
        params=(ID_PARAM,),
    ),
    Operation(
        "GET",
        "/company",
        "getCompany",
        "Company",
        "Get the company's settings",
        "The company's name, seller details, branding and payment instructions.",
        "get_company",
        r.COMPANY,
    ),
    Operation(
        "PATCH",
        "/company",
        "updateCompany",
        "Company",
        "Update the company's settings",
        "Changes the settings sent; the others stay as they are. Each change is in the audit trail with its old "
        "and new value.",
        "update_company",
        r.COMPANY,
        body=r.COMPANY.for_update(),
        unprocessable=True,
    ),
    Operation(
        "GET",
        "/sso_keys",
        "listSsoKeys",
        "SSO keys",
        "List SSO keys",
        "The company's SSO keys, newest first (never the secrets).",
        "list_sso_keys",
        r.list_of(r.SSO_KEY),
    ),
    Operation(
        "POST",
        "/sso_keys/rotate",
        "rotateSsoKey",
        "SSO keys",
        "Rotate the SSO key",
        "Makes a new active SSO key and answers it once. The old key keeps verifying links for the grace "
        "period, so backends can switch to the new key without a failed sign-in. Send {} for the default "
        "grace period (24h).",
        "rotate_sso_key",
        r.SSO_KEY_ROTATION,
        status=201,
        body=r.SSO_KEY_ROTATION_REQUEST,
        params=(IDEMPOTENCY,),
    ),
    Operation(
        "POST",
        "/sso_keys/{kid}/revoke",
        "revokeSsoKey",
        "SSO keys",
        "Revoke a retiring SSO key",
        "Ends a retiring key's grace period now: links signed with it stop working at once.",
        "revoke_sso_key",
        r.SSO_KEY,
        body=r.EMPTY_REQUEST,
        params=(
            Param("kid", "path", {"type": "string", "minLength": 1, "maxLength": 64}, "The key id.", required=True),
            IDEMPOTENCY,
        ),
        conflicts=True,
        unprocessable=True,
    ),
    Operation(
        "GET",
        "/sign_in_events",
        "listSignInEvents",
        "Sign-in events",
        "List sign-in events",
        "The sign-in log, newest first: every attempt with its result and reason code.",
        "list_sign_in_events",
        r.list_of(r.SIGN_IN_EVENT),
        params=(
            *PAGE_PARAMS,
            Param("result", "query", {"type": "string", "enum": ["success", "failure"]}, "Only this result."),
            Param("reason", "query", {"type": "string", "enum": [r.value for r in Reason]}, "Only this reason code."),
            CUSTOMER_FILTER,
        ),
    ),
    *PAYMENT_SETTINGS_OPERATIONS,
    *WEBHOOK_OPERATIONS,
)

TAGS: Final = (
    ("Customers", "The people and businesses that sign in to the portal and receive documents."),
    ("Contacts", "People at a customer's business who sign in by email, each with a role."),
    ("Invoices", "What customers owe. Lines are worked out into totals; payments and credit notes settle them."),
    ("Payments", "Money received, applied to invoices, and refunds of it."),
    ("Credit notes", "Credit given, applied to an invoice or kept as account credit."),
    ("Estimates", "Quotes the customer approves in the portal."),
    ("Sign-in links", "Signed links into the portal, made on the server with the company's SSO key."),
    ("Company", "The company's settings: seller details, branding and payment instructions."),
    ("SSO keys", "The keys sign-in tokens are signed with: list, rotate without downtime, revoke."),
    ("Sign-in events", "The sign-in log, with a reason code for every failure."),
    ("Payment settings", "How customers pay online: the gateway (its secrets write-only) and what customers may do."),
    ("Webhooks", "Endpoints that receive the company's events, signed (Standard Webhooks), and their delivery log."),
)
