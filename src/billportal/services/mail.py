"""Email out: one durable queue, written in the transaction of the change that causes a message.

:func:`queue_mail` is the one way in: it writes a message (text and HTML) into ``mail_messages``
inside the caller's transaction, unless the company turned that kind off or the address bounced.
:class:`MailDeliverer` sends due messages the way the webhook deliverer sends events: claimed with
a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so that no two processes send one message, and
retried with backoff. A link to the portal in a message is written as a marker by
:func:`portal_marker` and made by :func:`portal_link_for` when the message is sent.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import Connection

from billportal import _links
from billportal.core import i18n
from billportal.core.clock import human_date, human_month
from billportal.core.config import Settings, SmtpServer, smtp_server
from billportal.core.errors import Refused, StorageUnavailable
from billportal.core.i18n import N_
from billportal.core.lazy import lazy_import
from billportal.core.money import format_money
from billportal.services import audit, statements
from billportal.services.audit import Actor
from billportal.storage import documents
from billportal.storage import mail as queue
from billportal.storage.store import Store

if TYPE_CHECKING:
    import aiosmtplib
else:  # loaded by the first message sent, not by every worker
    aiosmtplib = lazy_import("aiosmtplib")

log = logging.getLogger("billportal.mail")

LEASE_SECONDS: Final = 120  # a claimed message is this process's for this long (more than a send takes)
TIMEOUT_SECONDS: Final = 30.0
RETRY_WINDOW: Final = 2 * 24 * 3600  # a message not sent after two days of retries has failed
FIRST_RETRY: Final = 60
LONGEST_WAIT: Final = 2 * 3600
BATCH: Final = 20
AUTOPAY_NOTICE_DAYS: Final = 3  # "AutoPay will charge your card" this many days before the due date
OUTBOX_FOLDER: Final = "mail-outbox"

MAX_ADDRESS: Final = 254
MAX_SUBJECT: Final = 300
# An address as mail servers take it: one @, a dot in the domain, no spaces, quotes, angle brackets, commas or $
# (the API's customer email schema says the same; written for both Python and JSON Schema).
ADDRESS_PATTERN: Final = (
    r"[A-Za-z0-9.!#%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_ADDRESS: Final = re.compile(ADDRESS_PATTERN)
# A link in a queued body, made into a URL when the message is sent: "portal" through portal_link_for,
# "site" the company's portal as is (its logo), "dashboard" the dashboard (admins' messages).
_MARKER: Final = re.compile(r"\[\[(portal|site|dashboard):(/[A-Za-z0-9/_.?=&-]{0,200})\]\]")


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
    ADMIN_INVITATION = "admin_invitation"


@dataclass(frozen=True, slots=True)
class KindInfo:
    label: str  # marked; translated where shown (the dashboard's Email settings)
    to_admins: bool  # sent to the company's admins (else to the customer)
    default: bool  # on unless the company turns it off
    configurable: bool = True


KINDS: Final[dict[MailKind, KindInfo]] = {
    MailKind.INVOICE_ISSUED: KindInfo(N_("Invoice issued (to the customer, with a link to the invoice)"), False, True),
    MailKind.PAYMENT_RECEIPT: KindInfo(N_("Payment receipt (to the customer)"), False, True),
    MailKind.AUTOPAY_UPCOMING: KindInfo(N_("AutoPay charge coming up (to the customer)"), False, True),
    MailKind.AUTOPAY_FAILED: KindInfo(N_("AutoPay charge failed (to the customer)"), False, True),
    MailKind.STATEMENT: KindInfo(N_("Monthly statement (to the customer)"), False, False),
    MailKind.ESTIMATE_APPROVED: KindInfo(N_("Estimate approved (to the company's admins)"), True, True),
    MailKind.BILLING_DETAILS_CHANGED: KindInfo(N_("Billing details changed (to the company's admins)"), True, True),
    MailKind.WEBHOOK_ENDPOINT_DISABLED: KindInfo(N_("Webhook endpoint disabled (to the company's admins)"), True, True),
    MailKind.SIGN_IN: KindInfo(N_("Sign-in link (to the customer)"), False, True, configurable=False),
    MailKind.ADMIN_INVITATION: KindInfo(
        N_("Invitation to administer the company (to the invited admin)"), True, True, configurable=False
    ),
}

# Messages that carry a secret (a sign-in link and code, an invitation's link): their bodies are
# blanked once the message is sent or given up, so the queue does not keep a working link.
SECRET_KINDS: Final = frozenset({MailKind.SIGN_IN, MailKind.ADMIN_INVITATION})


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
) -> bool:
    """Queue one message in the caller's transaction (True if it was); it is sent once the transaction commits.

    Nothing is queued if the company turned ``kind`` off, if ``to`` is not a valid address or has
    bounced, or if the company already has a message under ``dedupe_key``. ``text`` and ``html``
    may hold :func:`portal_marker` links, made into URLs when the message is sent.
    """
    kind = MailKind(kind)
    to = to.strip()
    if not valid_address(to) or not enabled_kinds(conn, company_id)[kind]:
        return False
    if queue.bounced(conn, company_id, to):
        return False
    return queue.insert_message(
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


def portal_marker(path: str, where: str = "portal") -> str:
    """A link to a portal page (``/invoices/7``) in a queued body: made a URL by :func:`portal_link_for` when sent.

    ``where="site"``: the company's portal as is (not a sign-in link); ``"dashboard"``: the dashboard.
    """
    marker = f"[[{where}:{path}]]"
    if _MARKER.fullmatch(marker) is None:
        raise ValueError("a portal path is / and letters, digits, and - _ . ? = &")
    return _Link(marker)


def portal_link_for(
    conn: Connection,
    *,
    base_url: str,
    company: str,
    company_id: int,
    customer_id: int | None,
    path: str,
    now: int,
    to: str = "",
) -> str:
    """The URL a message's reader follows to ``path`` in company ``company``'s portal.

    The one place links in emails are made, at send time, in the deliverer's transaction (``conn``).
    When the company has email sign-in on, a message to a customer carries a sign-in link for that
    customer and page (services/email_links.py: single use, a week, a confirmation page that mail
    scanners cannot spend); else the page itself (``https://{company}.{base}/invoices/7``), where a
    customer without a session signs in through the company's app and comes back to the page.
    """
    page = _links.portal_url(company, base_url) + path
    if customer_id is None or not to or not queue.email_sign_in_on(conn, company_id):
        return page
    from billportal.services import email_links  # imported here: email_links queues its own mail here

    issued = email_links.issue_in(
        conn,
        company_id=company_id,
        username=company,
        customer_id=customer_id,
        email=to,
        now=now,
        base_url=base_url,
        page=path,
        lifetime=email_links.MESSAGE_LINK_SECONDS,
    )
    return issued.url


# -- writing messages: Jinja templates under templates/email/, in the company's colours


class _Link(str):
    """A marker :func:`portal_marker` wrote (any other text that looks like one is defused)."""

    __slots__ = ()


def _defuse(value: Any) -> Any:
    # A customer's name or an address could hold "[[portal:/...]]": only markers made here become links
    # (a translated sentence, Markup in HTML, carries the name in it too).
    if isinstance(value, str) and not isinstance(value, _Link) and "[[" in value:
        return value.replace("[[", "[\u200b[")
    return value


_templates = Environment(
    loader=PackageLoader("billportal", "templates/email"),
    finalize=_defuse,
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
    keep_trailing_newline=True,
    extensions=["jinja2.ext.i18n"],
)
_templates.filters["money"] = format_money
# Dates in the recipient's language (the one render() speaks): "Dec 1, 2026", "01.12.2026", "1 déc. 2026".
_templates.filters["date"] = human_date
_templates.filters["month_name"] = lambda month: human_month(month.year, month.month)
_templates.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
_templates.globals["html_lang"] = i18n.html_lang


def render(
    kind: MailKind | str, company: queue.Branding, *, locale: str = i18n.DEFAULT_LOCALE, **context: Any
) -> tuple[str, str, str]:
    """A message of ``kind`` for ``company`` in ``locale``: (subject, text, HTML), from ``templates/email/{kind}.*``.

    A message to admins reads the dashboard's strings, in English (core/i18n.py's dashboard domain).
    """
    kind = MailKind(kind)
    if KINDS[kind].to_admins:
        locale, domain = i18n.DEFAULT_LOCALE, i18n.DASHBOARD_DOMAIN
    else:
        domain = i18n.DOMAIN
    with i18n.speaking(locale, domain):
        return _render(kind, company, **context)


def customer_locale(customer: Any, company: queue.Branding) -> str:
    """The language of a customer's mail: the customer's own, else the company's default."""
    return i18n.choose([getattr(customer, "locale", ""), company.default_locale])


def _render(kind: MailKind, company: queue.Branding, **context: Any) -> tuple[str, str, str]:
    shown = {
        "company": company,
        "logo": portal_marker(f"/logo/{company.logo_sha256}", "site") if company.logo_sha256 else "",
        "accent": company.accent_color if re.fullmatch(r"#[0-9a-fA-F]{6}", company.accent_color) else "#2563eb",
        "link": portal_marker,
        **context,
    }
    subject = _templates.get_template(f"{kind.value}.subject.txt").render(**shown).strip()
    text = _templates.get_template(f"{kind.value}.txt").render(**shown)
    html = _templates.get_template(f"{kind.value}.html").render(**shown)
    return subject, text, html


def send_to_customer(
    conn: Connection,
    company_id: int,
    customer_id: int,
    kind: MailKind,
    *,
    now: int,
    dedupe_key: str | None = None,
    **context: Any,
) -> bool:
    """Render and queue a message of ``kind`` to a customer (if it has an address and the kind is on)."""
    customer = documents.customer(conn, company_id, customer_id)
    company = queue.branding(conn, company_id)
    if customer is None or company is None or not customer.email or not enabled_kinds(conn, company_id)[kind]:
        return False
    locale = customer_locale(customer, company)
    subject, text, html = render(kind, company, locale=locale, customer=customer, **context)
    return queue_mail(
        conn,
        company_id=company_id,
        kind=kind,
        to=customer.email,
        subject=subject,
        text=text,
        html=html,
        now=now,
        customer_id=customer_id,
        dedupe_key=dedupe_key,
    )


# Which admins each message to admins goes to: those whose role does that work (web/guards.py ROLE_AREAS).
ADMIN_ROLES_TOLD: Final[dict[MailKind, tuple[str, ...]]] = {
    MailKind.ESTIMATE_APPROVED: ("owner", "admin", "billing"),
    MailKind.BILLING_DETAILS_CHANGED: ("owner", "admin", "billing"),
    MailKind.WEBHOOK_ENDPOINT_DISABLED: ("owner", "admin", "developer"),
}


def send_to_admins(conn: Connection, company_id: int, kind: MailKind, *, now: int, **context: Any) -> None:
    """Render and queue a message of ``kind`` to each of the company's admins whose role does that work."""
    company = queue.branding(conn, company_id)
    if company is None or not enabled_kinds(conn, company_id)[kind]:
        return
    subject, text, html = render(kind, company, **context)
    for address in queue.admin_addresses(conn, company_id, ADMIN_ROLES_TOLD[kind]):
        queue_mail(conn, company_id=company_id, kind=kind, to=address, subject=subject, text=text, html=html, now=now)


def on_event(
    conn: Connection, company_id: int, event_type: str, obj: Any, *, now: int, extra: Mapping[str, Any]
) -> None:
    """The messages a change sends, in its transaction (called by ``Books.emit`` for every event)."""
    if event_type == "invoice.issued":
        send_to_customer(conn, company_id, obj.customer_id, MailKind.INVOICE_ISSUED, now=now, invoice=obj)
    elif event_type == "payment.created":
        send_to_customer(conn, company_id, obj.customer_id, MailKind.PAYMENT_RECEIPT, now=now, payment=obj)
    elif event_type == "estimate.approved":
        customer = documents.customer(conn, company_id, obj.customer_id)
        send_to_admins(conn, company_id, MailKind.ESTIMATE_APPROVED, now=now, estimate=obj, customer=customer)
    elif event_type == "customer.billing_info_updated":
        changed = extra.get("changes") or {}
        changes = [(name, str(both.get("old", "")), str(both.get("new", ""))) for name, both in changed.items()]
        send_to_admins(conn, company_id, MailKind.BILLING_DETAILS_CHANGED, now=now, customer=obj, changes=changes)


def endpoint_disabled(conn: Connection, company_id: int, url: str, *, now: int) -> None:
    """Tell the company's admins a webhook endpoint was disabled (in the deliverer's transaction)."""
    send_to_admins(conn, company_id, MailKind.WEBHOOK_ENDPOINT_DISABLED, now=now, url=url)


def autopay_failed(conn: Connection, *, company_id: int, customer_id: int, invoice_id: int, now: int) -> None:
    """Tell a customer their AutoPay charge for an invoice failed."""
    invoice = documents.get(conn, "invoice", documents.Scope(company_id), invoice_id)
    if invoice is not None:
        send_to_customer(conn, company_id, customer_id, MailKind.AUTOPAY_FAILED, now=now, invoice=invoice)


def autopay_upcoming(conn: Connection, *, company_id: int, customer_id: int, today: date, now: int) -> int:
    """Tell a customer which invoices AutoPay will charge within a few days (each invoice once); how many."""
    horizon = (today + timedelta(days=AUTOPAY_NOTICE_DAYS)).isoformat()
    coming = [
        i
        for i in documents.due_invoices(conn, company_id, customer_id, horizon)
        if (i.due_on or "") > today.isoformat()
    ]
    for invoice in coming:
        send_to_customer(
            conn,
            company_id,
            customer_id,
            MailKind.AUTOPAY_UPCOMING,
            now=now,
            dedupe_key=f"autopay_upcoming:{invoice.id}:{invoice.due_on}",
            invoice=invoice,
        )
    return len(coming)


def statements_for(conn: Connection, *, company_id: int, month_key: str, now: int, after: int = 0) -> tuple[int, int]:
    """Queue the month's statement to each customer with an address and activity; (how many, last customer id)."""

    month = statements.Month.parse(month_key)
    if not enabled_kinds(conn, company_id)[MailKind.STATEMENT]:
        return 0, 0
    queued = last = 0
    for row in queue.customers_with_email(conn, company_id, after=after):
        last = row.id
        ledger = documents.ledger(conn, company_id, row.id, row.currency, month.last_day)
        shown = statements.balance_forward(ledger, month, month.last_day)
        if not shown.lines and not shown.closing:
            continue
        queued += send_to_customer(
            conn,
            company_id,
            row.id,
            MailKind.STATEMENT,
            now=now,
            dedupe_key=f"statement:{month.key}:{row.id}",
            statement=shown,
            month=month,
        )
    return queued, last


# -- sending


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> int:
    """Seconds before the next try after ``attempts`` failed ones: doubling from 1 min up to 2 h, give or take 25%."""
    wait = min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_WAIT)
    return max(1, int(wait * (0.75 + rng() / 2)))


@dataclass(frozen=True, slots=True)
class MailConfig:
    """Where messages go: an SMTP server, or (none set) .eml files in the outbox folder."""

    base_url: str
    sender: str
    smtp: SmtpServer | None
    outbox: Path
    timeout: float = TIMEOUT_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> MailConfig:
        return cls(
            base_url=settings.base_url,
            sender=settings.mail_from or f"billportal@{settings.base_domain}",
            smtp=smtp_server(settings.smtp_url),
            outbox=settings.data_dir / OUTBOX_FOLDER,
        )

    @property
    def where(self) -> str:
        """Where messages go, as logs may say it (never a password)."""
        return self.smtp.shown if self.smtp else f"the folder {self.outbox}"


@dataclass(frozen=True, slots=True)
class Outcome:
    state: str  # sent, pending (retry), bounced, failed
    error: str = ""


def _resolve(
    conn: Connection, config: MailConfig, claimed: queue.ClaimedMail, company: str, now: int
) -> queue.ClaimedMail:
    made: dict[str, str] = {}  # one link per page, the same in the text and the HTML

    def link(match: re.Match[str]) -> str:
        where, path = match[1], match[2]
        if where == "dashboard":
            return _links.portal_url("dashboard", config.base_url) + path
        if where == "site":
            return _links.portal_url(company, config.base_url) + path
        if path not in made:
            made[path] = portal_link_for(
                conn,
                base_url=config.base_url,
                company=company,
                company_id=claimed.company_id,
                customer_id=claimed.customer_id,
                path=path,
                now=now,
                to=claimed.to_address,
            )
        return made[path]

    return queue.ClaimedMail(
        id=claimed.id,
        company_id=claimed.company_id,
        customer_id=claimed.customer_id,
        kind=claimed.kind,
        to_address=claimed.to_address,
        subject=claimed.subject,
        text_body=_MARKER.sub(link, claimed.text_body),
        html_body=_MARKER.sub(link, claimed.html_body),
        attempts=claimed.attempts,
        created_at=claimed.created_at,
    )


class MailDeliverer:
    """Sends due messages from the queue; any number of processes may run one at once."""

    def __init__(self, store: Store, config: MailConfig, *, rng: Callable[[], float] = random.random) -> None:
        self.store = store
        self.config = config
        self.rng = rng

    async def run_once(self, now: int, *, limit: int = BATCH) -> int:
        """Claim the due messages (at most ``limit``), send them, record each outcome; how many were tried."""
        if not await self.store.read(lambda conn: queue.anything_due(conn, now)):
            return 0

        def claim(conn: Connection) -> list[tuple[queue.ClaimedMail, str]]:
            found = []
            for one in queue.claim(conn, now=now, limit=limit, lease=LEASE_SECONDS):
                company = queue.branding(conn, one.company_id)
                found.append(
                    (
                        _resolve(conn, self.config, one, company.username if company else "", now),
                        company.name if company else "",
                    )
                )
            return found

        started = time.monotonic()
        claimed = await self.store.write(claim)
        for index, (one, company_name) in enumerate(claimed):
            if time.monotonic() - started > LEASE_SECONDS - self.config.timeout * 2:
                # A slow server: what is left goes back before the lease ends, so no other process sends it too.
                rest = [other.id for other, _ in claimed[index:]]
                await self.store.write(functools.partial(queue.release, message_ids=rest))
                return index
            outcome = await self._send(one, company_name)
            await self._record(one, outcome, now)
        return len(claimed)

    async def run_until_idle(self, now: int) -> int:
        """Send until nothing is due at ``now`` (a try that fails is due later); how many tries were made."""
        total = 0
        while tried := await self.run_once(now):
            total += tried
        return total

    async def run_forever(self, clock: Callable[[], int], *, interval: float = 1.0) -> None:
        """Send what is due, again and again (beside the webhook deliverer, and ``billportal mail deliver``)."""
        log.info("mail goes to %s", self.config.where)
        while True:
            try:
                tried = await self.run_once(clock())
            except StorageUnavailable:
                log.warning("database unavailable: mail waits; will retry")
                tried = 0
            except Exception:
                log.exception("the mail deliverer failed; it goes on")
                tried = 0
            if not tried:
                await asyncio.sleep(interval)

    def message(self, claimed: queue.ClaimedMail, company_name: str) -> EmailMessage:
        """The MIME message: text, and HTML as its alternative."""
        message = EmailMessage()
        message["From"] = formataddr((company_name[:100], self.config.sender)) if company_name else self.config.sender
        message["To"] = claimed.to_address
        message["Subject"] = claimed.subject
        message["Message-ID"] = make_msgid(
            idstring=f"bp{claimed.id}", domain=self.config.sender.rpartition("@")[2] or None
        )
        message["X-Billportal-Kind"] = claimed.kind
        message.set_content(claimed.text_body)
        if claimed.html_body:
            message.add_alternative(claimed.html_body, subtype="html")
        return message

    async def _send(self, claimed: queue.ClaimedMail, company_name: str) -> Outcome:
        message = self.message(claimed, company_name)
        smtp = self.config.smtp
        if smtp is None:
            path = self.config.outbox / f"{claimed.id:08d}-{claimed.kind}.eml"
            try:
                await asyncio.to_thread(_write_file, path, message.as_bytes())
            except OSError as exc:
                return Outcome("pending", f"could not write to the outbox folder: {exc.strerror or type(exc).__name__}")
            return Outcome("sent")
        try:
            await aiosmtplib.send(
                message,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username or None,
                password=smtp.password or None,
                use_tls=smtp.tls,
                start_tls=_start_tls(smtp),
                timeout=self.config.timeout,
                tls_context=ssl.create_default_context(),
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            return _failure(exc, self.config.timeout)
        return Outcome("sent")

    async def _record(self, claimed: queue.ClaimedMail, outcome: Outcome, now: int) -> None:
        state, next_at = outcome.state, now
        if state == "pending":
            if now - claimed.created_at >= RETRY_WINDOW:
                state = "failed"
            else:
                next_at = now + backoff(claimed.attempts + 1, self.rng)

        forget = state != "pending" and claimed.kind in SECRET_KINDS

        def change(conn: Connection) -> None:
            queue.finish(
                conn, claimed.id, state=state, error=outcome.error, next_attempt_at=next_at, now=now, forget=forget
            )
            if state == "bounced":
                queue.mark_bounced(conn, claimed.company_id, claimed.to_address, outcome.error, now)

        await self.store.write(change)
        if state != "sent":
            log.warning(
                "mail #%d (%s) to company %d's recipient: %s: %s",
                claimed.id,
                claimed.kind,
                claimed.company_id,
                state,
                outcome.error,
            )


def _short(text: str) -> str:
    return " ".join(text.split())[:120]


def _start_tls(smtp: SmtpServer) -> bool | None:
    """STARTTLS: required before a password goes to another host; else used when offered (None)."""
    if smtp.tls:
        return False  # TLS from the start
    loopback = smtp.host == "localhost" or smtp.host.startswith("127.") or smtp.host in ("::1", "[::1]")
    return True if smtp.password and not loopback else None


def _failure(exc: BaseException, timeout: float) -> Outcome:
    """What a failed send means: a 5xx refusal of the address bounces it, another 5xx fails, the rest retries."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        outcome = _refused([(e.code, e.message) for e in exc.recipients])
    elif isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        outcome = _refused([(exc.code, exc.message)])
    elif isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        outcome = Outcome("pending", f"the mail server refused the user name or password ({exc.code})")
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        answer = f"{exc.code} {_short(exc.message)}"
        if 500 <= exc.code < 600:
            outcome = Outcome("failed", f"the mail server refused the message: {answer}")
        else:
            outcome = Outcome("pending", f"the mail server answered {answer}")
    elif isinstance(exc, aiosmtplib.SMTPTimeoutError):
        outcome = Outcome("pending", f"no answer within {timeout:g} s")
    else:
        outcome = Outcome("pending", f"could not reach the mail server: {type(exc).__name__}")
    return outcome


def _refused(answers: list[tuple[int, str]]) -> Outcome:
    code, text = answers[0] if answers else (550, "")
    error = f"the mail server refused the address: {code} {_short(text)}"
    return Outcome("bounced" if 500 <= code < 600 else "pending", error)


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(path)


# -- a company's choices


def settings_fields(kinds: Mapping[MailKind, bool]) -> dict[str, bool]:
    """The choices as the API and the CLI show them: each configurable kind, on or off."""
    return {kind.value: on for kind, on in kinds.items() if KINDS[kind].configurable}


class MailSettings:
    """Which kinds of email a company sends, its message log and the addresses that bounced."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def kinds(self, company_id: int) -> dict[MailKind, bool]:
        return await self.store.read(lambda conn: enabled_kinds(conn, company_id))

    def change_in(
        self, conn: Connection, company_id: int, changes: Mapping[str, bool], *, actor: Actor, now: int
    ) -> dict[MailKind, bool]:
        """Turn kinds on or off; Refused ``invalid_field`` for a kind that is not one, or that cannot be turned off."""
        for name, on in changes.items():
            try:
                kind = MailKind(name)
            except ValueError:
                kind = None
            if kind is None or not KINDS[kind].configurable:
                shown = ", ".join(k.value for k, info in KINDS.items() if info.configurable)
                raise Refused("invalid_field", f"mail settings are: {shown}", "mail_settings")
            if not isinstance(on, bool):
                raise Refused("invalid_field", f"{name} must be true or false", "mail_settings")
        before = enabled_kinds(conn, company_id)
        for name, on in changes.items():
            queue.set_preference(conn, company_id, name, on, now)
        changed = [f"{name} {'on' if on else 'off'}" for name, on in changes.items() if before[MailKind(name)] != on]
        if changed:
            audit.record_in(
                conn, actor, "mail.settings_changed", now, company_ids=[company_id], detail=", ".join(changed)[:200]
            )
        return enabled_kinds(conn, company_id)

    async def change(
        self, company_id: int, changes: Mapping[str, bool], *, actor: Actor, now: int
    ) -> dict[MailKind, bool]:
        return await self.store.write(lambda conn: self.change_in(conn, company_id, changes, actor=actor, now=now))

    async def messages(self, company_id: int, *, limit: int = 100) -> list[queue.MailMessage]:
        return await self.store.read(lambda conn: queue.messages(conn, company_id, limit=limit))

    async def bounce(self, company_id: int, address: str) -> tuple[str, int] | None:
        """Why and when mail to ``address`` bounced, or None."""
        if not address:
            return None
        return await self.store.read(lambda conn: queue.bounce_reason(conn, company_id, address))

    async def clear_bounce(self, company_id: int, address: str, *, actor: Actor, now: int) -> bool:
        """Send to a bounced address again (the customer fixed their mailbox)."""

        def change(conn: Connection) -> bool:
            cleared = queue.clear_bounce(conn, company_id, address)
            if cleared:
                audit.record_in(conn, actor, "mail.bounce_cleared", now, company_ids=[company_id], detail=address[:200])
            return cleared

        return await self.store.write(change)

    async def statements(self, month_key: str, *, now: int, company_id: int | None = None) -> int:
        """Queue the month's statements of every company that turned them on (or of one); how many."""
        companies = (
            [company_id]
            if company_id is not None
            else await self.store.read(lambda conn: queue.companies_with(conn, MailKind.STATEMENT.value))
        )
        total = 0
        for one in companies:
            after = 0
            while True:
                queued, last = await self.store.write(
                    functools.partial(statements_for, company_id=one, month_key=month_key, now=now, after=after)
                )
                total += queued
                if not last:
                    break
                after = last
        return total
