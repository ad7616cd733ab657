"""The events a company's backend can be sent (webhooks), and the one versioned JSON shape of each.

Every event's body is ``{"id", "type", "version", "created_at", "data"}``. ``data`` holds the
object as it is after the change (``data.object``); a change to a customer also says what
the changed fields were before (``data.previous``). ``version`` is this shape's version: a
change to it that a receiver could trip on gets a new version, never a silent change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

from billportal.core.i18n import N_

VERSION: Final = 1

EVENT_TYPES: Final[dict[str, str]] = {
    "invoice.created": N_("An invoice was made (a draft or open)."),
    "invoice.issued": N_("An invoice was issued: it is owed from now on."),
    "invoice.paid": N_("Payments and credits settled an invoice's whole balance."),
    "invoice.voided": N_("An open invoice was voided: nothing is owed on it."),
    "payment.created": N_("A payment was recorded (by the API, the dashboard, or paid online)."),
    "payment.refunded": N_("A payment was refunded, in whole or in part."),
    "credit_note.created": N_("A credit note was made."),
    "estimate.approved": N_("A customer approved an estimate in the portal."),
    "customer.created": N_("A customer was made."),
    "customer.updated": N_("A customer's details were changed by the company; data.previous has the old values."),
    "customer.billing_info_updated": N_("A customer changed their billing details in the portal; old and new values."),
    "sign_in.failed": N_("A sign-in link was refused; data.object.reason is the reason code."),
}


def plain(obj: Any) -> Any:
    """A record as JSON-ready values (dataclasses become objects, tuples lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [plain(item) for item in obj]
    if isinstance(obj, Mapping):
        return {str(key): plain(value) for key, value in obj.items()}
    return obj


def body(
    event_id: str, event_type: str, now: int, kind: str, obj: Any, *, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON body of one event."""
    shown = {"object": kind, **plain(obj)}
    if kind == "payment":
        shown["unapplied"] = obj.unapplied  # as the API shows a payment
    data = {"object": shown, **plain(extra or {})}
    return {"id": event_id, "type": event_type, "version": VERSION, "created_at": now, "data": data}
