"""Sign-in links sent by email, that a mail scanner cannot burn, and their 6-digit codes.

The one module that makes them: the portal's email sign-in form, and any email that carries a link
into the portal (services/mail.py), call :func:`issue_in` in their own transaction.

* The emailed link (``/login/email/{token}``) only shows a confirmation page: a GET or HEAD,
  however often a scanner or a prefetch makes it, changes nothing.
* Only the page's button signs in: a POST of the link's token with the button's own token, an
  HMAC of the link's token (so it is bound to the link, and no other page can make it).
* The press is single use: one conditional UPDATE marks the link used, in the transaction that
  writes the session, so of two presses at once (on any process) one signs in.
* Links and codes live 15 minutes. Only SHA-256 hashes of the link's token and of its code are
  stored. A code has :data:`MAX_TRIES` tries, spent by a conditional UPDATE before it is compared.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection

from billportal import _links
from billportal.services import contacts
from billportal.services.mail import MailKind, customer_locale, queue_mail, render
from billportal.sso.pages import is_landing
from billportal.sso.reasons import Reason
from billportal.storage import documents
from billportal.storage import email_sign_ins as links
from billportal.storage import mail as mail_queue
from billportal.storage.records import Company, EmailSignIn, Session, SignInEvent
from billportal.storage.store import Store

LINK_SECONDS: Final = 15 * 60
MESSAGE_LINK_SECONDS: Final = 7 * 24 * 60 * 60  # the link in an invoice's email: a week, still single-use
MAX_TRIES: Final = 5
CODE_DIGITS: Final = 6
LINK_PATH: Final = "/login/email/"
TOKEN_BYTES: Final = 32
MAX_TOKEN_LENGTH: Final = 64
MAX_PAGE: Final = 40  # the longest landing page a link keeps (the column's width)
_BUTTON_CONTEXT: Final = b"billportal email sign-in: the confirmation button"


@dataclass(frozen=True, slots=True)
class Secrets:
    """A new link's token and code, and what the database keeps of them."""

    token: str = ""
    code: str = ""

    @classmethod
    def new(cls) -> Secrets:
        return cls(secrets.token_urlsafe(TOKEN_BYTES), f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}")

    @property
    def link_hash(self) -> bytes:
        return link_hash(self.token)

    @property
    def code_hash(self) -> bytes:
        return code_hash(self.link_hash, self.code)


@dataclass(frozen=True, slots=True)
class IssuedLink:
    url: str
    code: str
    expires_at: int


def link_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()


def code_hash(link_hash: bytes, code: str) -> bytes:
    """The code's hash, bound to its link: the same code of another link hashes apart."""
    return hashlib.sha256(link_hash + code.encode("utf-8", "replace")).digest()


def button_token(token: str) -> str:
    """The confirmation button's own token: an HMAC under the link's token, which only its holder knows."""
    return hmac.new(token.encode("utf-8", "replace"), _BUTTON_CONTEXT, hashlib.sha256).hexdigest()


def normal_email(email: str) -> str:
    return email.strip().lower()


def issue_in(
    conn: Connection,
    *,
    company_id: int,
    username: str,
    customer_id: int,
    email: str,
    now: int,
    base_url: str,
    page: str = "",
    made: Secrets | None = None,
    contact_id: int | None = None,
    lifetime: int = LINK_SECONDS,
) -> IssuedLink:
    """Store a new link (and code) for the customer, in the caller's transaction; the URL to send.

    ``username`` names the company's portal host. ``page``: where the sign-in lands (a ``redirect_to``
    page id or portal path, such as ``/invoices/7``; anything else: My Account). ``contact_id``: the link
    signs in as that contact of the customer (services/contacts.py). ``lifetime``: seconds it works
    (15 minutes when asked for; longer for the link in a message billportal sends, MESSAGE_LINK_SECONDS).
    """
    made = made or Secrets.new()
    links.insert_link(
        conn,
        company_id=company_id,
        customer_id=customer_id,
        email=normal_email(email),
        link_hash=made.link_hash,
        code_hash=made.code_hash,
        page=page if page and len(page) <= MAX_PAGE and is_landing(page) else "",
        now=now,
        expires_at=now + lifetime,
        contact_id=contact_id,
    )
    url = _links.portal_url(username, base_url) + LINK_PATH + made.token
    return IssuedLink(url, made.code, now + lifetime)


async def request_link(store: Store, company: Company, email: str, *, page: str, now: int, base_url: str) -> int:
    """Email a link and code to ``email`` if it is a customer's or a contact's; return how many were sent.

    One link for the address, whatever number of accounts it has: it signs in to the first, and the
    person then picks among them (the account picker). The same work is done for an address nobody
    has (secrets made and hashed, one transaction), so that the answer's time tells little; the caller
    pads it to a fixed time besides.
    """
    address = normal_email(email)
    made = [Secrets.new()]
    hashed = [(secret.link_hash, secret.code_hash) for secret in made]
    del hashed  # computed for known and unknown addresses alike

    def change(conn: Connection) -> int:
        found = contacts.memberships_in(conn, company.id, address)[:1]
        branding = mail_queue.branding(conn, company.id) if found else None
        for account, secret in zip(found, made, strict=False):
            customer_id = account.customer_id
            link = issue_in(
                conn,
                company_id=company.id,
                username=company.username,
                customer_id=customer_id,
                email=address,
                now=now,
                base_url=base_url,
                page=page,
                made=secret,
                contact_id=account.contact_id,
            )
            if branding is None:
                continue
            locale = customer_locale(documents.customer(conn, company.id, customer_id), branding)
            subject, text, html = render(
                MailKind.SIGN_IN, branding, locale=locale, url=link.url, code=link.code, minutes=LINK_SECONDS // 60
            )
            queue_mail(
                conn,
                company_id=company.id,
                kind=MailKind.SIGN_IN,
                to=address,
                subject=subject,
                text=text,
                html=html,
                now=now,
                customer_id=customer_id,
            )
        return len(found)

    sent: int = await store.write(change)
    return sent


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a press or a code went: ``Reason.OK`` with the customer and page, or the reason it failed."""

    reason: Reason
    customer_id: int | None = None
    page: str = ""
    contact_id: int | None = None
    accounts: int = 1  # how many accounts the address signs in to (more than one: the account picker)


# What the portal writes for a sign-in: the session and its event, for a customer (as one of its
# contacts, or as themself: None) and the address the link was sent to.
SignInFor = Callable[[int, int | None, str], tuple[Session, SignInEvent]]


async def check_link(store: Store, company: Company, token: str, now: int) -> Reason:
    """Whether a link could still sign in (read only: the confirmation page's GET)."""
    if not _plausible(token):
        return Reason.EMAIL_LINK_UNKNOWN
    found = await store.read(lambda conn: links.link_by_hash(conn, company.id, link_hash(token)))
    if found is None:
        return Reason.EMAIL_LINK_UNKNOWN
    if found.used_at is not None:
        return Reason.EMAIL_LINK_USED
    if found.expires_at <= now:
        return Reason.EMAIL_LINK_EXPIRED
    return Reason.OK


async def press(store: Store, company: Company, token: str, button: str, *, now: int, sign_in: SignInFor) -> Outcome:
    """The confirmation button: marks the link used and writes the session, in one transaction."""
    if not _plausible(token):
        return Outcome(Reason.EMAIL_LINK_UNKNOWN)
    if not hmac.compare_digest(button_token(token).encode(), button.encode("utf-8", "replace")):
        return Outcome(Reason.EMAIL_BUTTON_INVALID)

    def change(conn: Connection) -> Outcome:
        found = links.link_by_hash(conn, company.id, link_hash(token))
        if found is None:
            return Outcome(Reason.EMAIL_LINK_UNKNOWN)
        if found.expires_at <= now:
            return Outcome(Reason.EMAIL_LINK_EXPIRED, found.customer_id)
        if found.used_at is not None:
            return Outcome(Reason.EMAIL_LINK_USED, found.customer_id, contact_id=found.contact_id)
        return _sign_in_with(conn, sign_in, found, now)

    outcome: Outcome = await store.write(change)
    return outcome


async def enter_code(store: Store, company: Company, email: str, code: str, *, now: int, sign_in: SignInFor) -> Outcome:
    """A code typed on the sign-in page, for the address it was sent to: each try is spent before it is compared."""
    address = normal_email(email)
    code = code.strip().replace(" ", "")
    well_formed = len(code) == CODE_DIGITS and code.isascii() and code.isdigit()

    def change(conn: Connection) -> Outcome:
        live = links.live_for_email(conn, company.id, address, now)
        if not live:
            return Outcome(Reason.EMAIL_CODE_WRONG)
        tried = False
        for found in live:
            if not links.use_try(conn, found.id, now, MAX_TRIES):
                continue
            tried = True
            if well_formed and hmac.compare_digest(found.code_hash, code_hash(found.link_hash, code)):
                return _sign_in_with(conn, sign_in, found, now)
        return Outcome(Reason.EMAIL_CODE_WRONG if tried else Reason.EMAIL_CODE_EXHAUSTED)

    outcome: Outcome = await store.write(change)
    return outcome


def _sign_in_with(conn: Connection, sign_in: SignInFor, found: EmailSignIn, now: int) -> Outcome:
    """Use the link and write the session (a contact's link: if the address is still that contact's)."""
    accounts = contacts.memberships_in(conn, found.company_id, found.email)
    mine = any(a.customer_id == found.customer_id and a.contact_id == found.contact_id for a in accounts)
    if found.contact_id is not None and not mine:
        # The contact was removed (or its address changed) after the email was sent.
        return Outcome(Reason.EMAIL_LINK_UNKNOWN, found.customer_id, contact_id=found.contact_id)
    if not links.claim(conn, found.id, now):
        return Outcome(Reason.EMAIL_LINK_USED, found.customer_id, contact_id=found.contact_id)
    session, event = sign_in(found.customer_id, found.contact_id, found.email)
    links.insert_session(conn, session)
    links.insert_event(conn, event)
    return Outcome(Reason.OK, found.customer_id, found.page, found.contact_id, len(accounts))


def _plausible(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN_LENGTH and token.isascii()


async def prune(store: Store, now: int) -> int:
    """Delete expired links (their rows are of no use once expired)."""
    return await store.write(lambda conn: links.prune(conn, now))
