"""Email out: one durable queue, written in the transaction of the change that causes a message.

:func:`queue_mail` is the one way in: it writes a message (text and HTML) into ``mail_messages``
inside the caller's transaction, unless the company turned that kind off or the address bounced.
:class:`MailDeliverer` sends due messages the way the webhook deliverer sends events: claimed with
a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so that no two processes send one message, and
retried with backoff. A link to the portal in a message is written as a marker by
:func:`portal_marker` and made by :func:`portal_link_for` when the message is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from sqlalchemy import Connection

from billportal import _links
from billportal.storage import mail as queue

MAX_ADDRESS: Final = 254
MAX_SUBJECT: Final = 300
# An address as mail servers take it: one @, a dot in the domain, no spaces, quotes, angle brackets or commas.
_ADDRESS: Final = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
# A portal link in a queued body, made into a URL when the message is sent (see portal_link_for).
_MARKER: Final = re.compile(r"\[\[portal:(/[A-Za-z0-9/_-]{0,200})\]\]")


class MailKind(StrEnum):
    """The kinds of email billportal sends; each but ``sign_in`` may be turned off per company."""

    INVOICE_ISSUED = "invoice_issued"
    PAYMENT_RECEIPT = "payment_receipt"
    AUTOPAY_UPCOMING = "autopay_upcoming"
    AUTOPAY_FAILED = "autopay_failed"
    STATEMENT = "statement"
    ESTIMATE_APPROVED = "estimate_approved"
    BILLING_DETAILS_CHANGED = "billing_details_changed"
    WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint_disabled"
    SIGN_IN = "sign_in"


@dataclass(frozen=True, slots=True)
class KindInfo:
    label: str
    to_admins: bool  # sent to the company's admins (else to the customer)
    default: bool  # on unless the company turns it off
    configurable: bool = True


KINDS: Final[dict[MailKind, KindInfo]] = {
    MailKind.INVOICE_ISSUED: KindInfo("Invoice issued (to the customer, with a link to the invoice)", False, True),
    MailKind.PAYMENT_RECEIPT: KindInfo("Payment receipt (to the customer)", False, True),
    MailKind.AUTOPAY_UPCOMING: KindInfo("AutoPay charge coming up (to the customer)", False, True),
    MailKind.AUTOPAY_FAILED: KindInfo("AutoPay charge failed (to the customer)", False, True),
    MailKind.STATEMENT: KindInfo("Monthly statement (to the customer)", False, False),
    MailKind.ESTIMATE_APPROVED: KindInfo("Estimate approved (to the company's admins)", True, True),
    MailKind.BILLING_DETAILS_CHANGED: KindInfo("Billing details changed (to the company's admins)", True, True),
    MailKind.WEBHOOK_ENDPOINT_DISABLED: KindInfo("Webhook endpoint disabled (to the company's admins)", True, True),
    MailKind.SIGN_IN: KindInfo("Sign-in link (to the customer)", False, True, configurable=False),
}


def valid_address(address: str) -> bool:
    """Whether ``address`` is one email address a mail server would take."""
    return len(address) <= MAX_ADDRESS and _ADDRESS.fullmatch(address) is not None


def enabled_kinds(conn: Connection, company_id: int) -> dict[MailKind, bool]:
    """Each kind, on or off for the company (its choice, or the kind's default)."""
    chosen = queue.preferences(conn, company_id)
    return {kind: (chosen.get(kind.value, info.default) if info.configurable else True) for kind, info in KINDS.items()}


def queue_mail(
    conn: Connection,
    *,
    company_id: int,
    kind: MailKind | str,
    to: str,
    subject: str,
    text: str,
    html: str,
    now: int,
    customer_id: int | None = None,
    dedupe_key: str | None = None,
) -> None:
    """Queue one message in the caller's transaction; it is sent once the transaction commits.

    Nothing is queued if the company turned ``kind`` off, if ``to`` is not a valid address or has
    bounced, or if the company already has a message under ``dedupe_key``. ``text`` and ``html``
    may hold :func:`portal_marker` links, made into URLs when the message is sent.
    """
    kind = MailKind(kind)
    to = to.strip()
    if not valid_address(to) or not enabled_kinds(conn, company_id)[kind]:
        return
    if queue.bounced(conn, company_id, to):
        return
    queue.insert_message(
        conn,
        {
            "company_id": company_id,
            "customer_id": customer_id,
            "kind": kind.value,
            "dedupe_key": dedupe_key,
            "to_address": to,
            "subject": " ".join(subject.split())[:MAX_SUBJECT],
            "text_body": text,
            "html_body": html,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "locked_until": 0,
            "created_at": now,
            "updated_at": now,
        },
    )


def portal_marker(path: str) -> str:
    """A link to a portal page (``/invoices/7``) in a queued body: made a URL by :func:`portal_link_for` when sent."""
    if _MARKER.fullmatch(f"[[portal:{path}]]") is None:
        raise ValueError("a portal path is / and letters, digits, - and _")
    return f"[[portal:{path}]]"


def portal_link_for(
    conn: Connection,
    *,
    base_url: str,
    company: str,
    company_id: int,
    customer_id: int | None,
    path: str,
    now: int,
) -> str:
    """The URL a message's reader follows to ``path`` in company ``company``'s portal.

    The one place links in emails are made, at send time, in the deliverer's transaction (``conn``):
    for now the portal page itself (``https://{company}.{base}/invoices/7``; the customer signs in
    through the company's app if they have no session).
    """
    del conn, company_id, customer_id, now  # for a sign-in link made per message
    return _links.portal_url(company, base_url) + path
