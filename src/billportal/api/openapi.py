"""The OpenAPI 3.1 document, built from the operations table and the shapes the server validates with."""

from __future__ import annotations

from functools import cache
from typing import Any, Final

from billportal import __version__
from billportal.api import resources as r
from billportal.api.errors import ERROR_CODES
from billportal.api.fields import Components
from billportal.api.operations import OPERATIONS, TAGS, Operation
from billportal.api.views import required_scope
from billportal.services.api_keys import SCOPES
from billportal.services.events import EVENT_TYPES, VERSION

API_PREFIX: Final = "/api/v1"

INTRODUCTION: Final = (
    """\
The billportal REST API: customers, invoices, payments, credit notes, estimates, sign-in links, \
SSO keys, the sign-in log and the payment settings of one company.

**Authentication.** Every request carries an API key of the company (Settings > Developers > API keys \
in the dashboard, or `billportal api-key create`): as the user name of HTTP Basic authentication with \
an empty password (`curl -u bp_live_...:`), or as a Bearer token (`Authorization: Bearer bp_live_...`). \
A missing, unknown or revoked key is answered 401 (with a `Bearer` challenge, which browsers do not \
prompt for); an object of another company is answered 404, as one that does not exist.

**Scopes.** Each key has the scopes chosen when it was made, and each operation needs one; a key \
without it is answered 403 `insufficient_scope`. """
    + "; ".join(f"`{name}`: {doc.lower()}" for name, doc in SCOPES.items())
    + """.

**Bodies and browsers.** Every POST and PATCH sends a JSON object with `Content-Type: application/json`, \
`{}` when there is nothing to say (void, revoke, and the defaults of a rotation or a sign-in link); any \
other type is answered 415 `unsupported_media_type`. The API is for backends: a POST, PATCH or DELETE \
whose `Origin` is another site's, or whose `Sec-Fetch-Site` is `cross-site`, is refused 403 \
`cross_site_request`, so that no web page can make a browser act with a key.

**Objects.** JSON in, JSON out. Money is an integer of minor units (cents) beside an ISO 4217 \
currency; times are UNIX seconds; dates are YYYY-MM-DD; quantities are decimal strings.

**Lists** are oldest first, a page at a time: pass the answer's `next_cursor` as `cursor` for the next \
page, with the same filters. `updated_after` gives what changed since your last sync.

**Retries.** Send an `Idempotency-Key` header (a UUID) with every POST: a retry with the same key and \
body answers as the first request did and creates nothing more; the same key with another request is \
refused (422 idempotency_key_reused). 429 and 503 answers carry `Retry-After`.

**Errors** are `{"error": {"code", "message", "field"}}`: `code` is stable (see the table in the docs), \
`field` names the input at fault, such as `lines[0].quantity`.
"""
)


def _error_statuses(op: Operation) -> list[int]:
    statuses = [400, 401, 403]
    if "{" in op.path:
        statuses.append(404)
    if op.conflicts:
        statuses.append(409)
    if op.body is not None:
        statuses += [413, 415]
    if op.unprocessable or op.method == "POST":
        statuses.append(422)
    statuses.append(503)
    return statuses


def _operation(op: Operation, components: Components) -> dict[str, Any]:
    error_ref = components.ref(r.ERROR_RESPONSE, answer=True)
    responses: dict[str, Any] = {
        str(op.status): {
            "description": op.answer.doc,
            "content": {"application/json": {"schema": components.ref(op.answer, answer=True)}},
        }
    }
    for status in _error_statuses(op):
        codes = [code for code, (code_status, _) in ERROR_CODES.items() if code_status == status]
        responses[str(status)] = {
            "description": "Error: " + ", ".join(codes),
            "content": {"application/json": {"schema": error_ref}},
        }
    scope = required_scope(op)
    result: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "description": f"{op.description} Needs an API key with the `{scope}` scope.",
        "tags": [op.tag],
        # OpenAPI 3.1 lets an http scheme name roles: the scope the key must have.
        "security": [{"basicAuth": [scope]}, {"bearerAuth": [scope]}],
        "responses": responses,
    }
    if op.params:
        result["parameters"] = [
            {"name": p.name, "in": p.where, "required": p.required, "description": p.doc, "schema": dict(p.schema)}
            for p in op.params
        ]
    if op.body is not None:
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": components.ref(op.body)}},
        }
    return result


_SIGN_IN_ATTEMPT: Final = {
    "type": "object",
    "description": "A refused sign-in link.",
    "properties": {
        "object": {"const": "sign_in"},
        "reason": {"type": "string", "description": "The reason code (see the sign-in log)."},
        "customer_id": {"type": ["integer", "null"]},
        "issuer": {"type": ["string", "null"]},
        "ip": {"type": "string"},
        "at": {"type": "integer"},
    },
}


def _webhooks(components: Components) -> dict[str, Any]:
    """The ``webhooks`` section: one POST per event type, with its versioned body."""
    shapes = {
        "invoice": r.INVOICE,
        "payment": r.PAYMENT,
        "credit_note": r.CREDIT_NOTE,
        "estimate": r.ESTIMATE,
        "customer": r.CUSTOMER,
    }
    hooks: dict[str, Any] = {}
    for event_type, doc in EVENT_TYPES.items():
        kind = event_type.partition(".")[0]
        shape = shapes.get(kind)
        data: dict[str, Any] = {
            "object": components.ref(shape, answer=True) if shape is not None else _SIGN_IN_ATTEMPT,
        }
        if event_type == "customer.updated":
            data["previous"] = {"type": "object", "description": "The changed fields' values before the change."}
        if event_type == "customer.billing_info_updated":
            data["changes"] = {
                "type": "object",
                "description": "Each changed field: {old, new}.",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"old": {"type": "string"}, "new": {"type": "string"}},
                },
            }
        hooks[event_type] = {
            "post": {
                "summary": event_type,
                "description": f"{doc} Signed per Standard Webhooks (webhook-id, webhook-timestamp, "
                "webhook-signature); see docs/webhooks.md. Answer 2xx within 10 s; anything else is retried "
                "with backoff for about three days.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["id", "type", "version", "created_at", "data"],
                                "properties": {
                                    "id": {"type": "string", "description": "The event's id: the webhook-id header."},
                                    "type": {"const": event_type},
                                    "version": {"const": VERSION, "description": "This body's version."},
                                    "created_at": {"type": "integer", "description": "When it happened (UNIX)."},
                                    "data": {"type": "object", "required": ["object"], "properties": data},
                                },
                            }
                        }
                    },
                },
                "responses": {"2XX": {"description": "Received: it will not be sent again."}},
            }
        }
    return hooks


@cache
def openapi_document() -> dict[str, Any]:
    """The whole document (the same for every company: the API key picks the company)."""
    components = Components()
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "billportal API", "version": __version__, "description": INTRODUCTION},
        "servers": [{"url": API_PREFIX, "description": "The dashboard host: https://dashboard.{your base domain}"}],
        "security": [{"basicAuth": []}, {"bearerAuth": []}],
        "tags": [{"name": name, "description": doc} for name, doc in TAGS],
        "paths": paths,
        "webhooks": _webhooks(components),
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The API key as the user name, the password empty.",
                },
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "The API key as a Bearer token."},
            },
        },
    }
