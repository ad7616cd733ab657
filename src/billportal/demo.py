"""``billportal demo``: a believable company to click through, and a link into its portal."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import socket
import sys
from dataclasses import replace

from billportal import _links
from billportal.core.clock import system_clock
from billportal.core.config import Settings
from billportal.portal.views import today_in
from billportal.services import sso
from billportal.services.audit import CLI
from billportal.services.billing import Billing, Books, LineInput, estimate_version
from billportal.services.mail import MailConfig
from billportal.services.payments import Payments
from billportal.sso import keys as sso_keys
from billportal.storage import open_store
from billportal.storage.store import Store

DEMO_COMPANY = "acme"
DEMO_CUSTOMER = 1234
DEMO_ADMIN = "admin@acme.example"  # the customer id of the seed product's Ruby example

_CUSTOMERS = [
    (1234, "Wile E. Coyote", "wile@coyote.example", "+1 505 555 0134", "1 Mesa Road", "Albuquerque", "NM", "87101"),
    (
        1235,
        "Road Runner Logistics",
        "billing@roadrunner.example",
        "+1 505 555 0199",
        "99 Highway 66",
        "Gallup",
        "NM",
        "87301",
    ),
    (1236, "Marvin Martian", "marvin@mars.example", "", "1 Crater Way", "Flagstaff", "AZ", "86001"),
    (1237, "Elmer Fudd Outdoors", "elmer@fudd.example", "+1 503 555 0107", "12 Forest Lane", "Portland", "OR", "97201"),
]

_CATALOG = [
    ("Rocket skates (pair)", 24900),
    ("Giant magnet", 12500),
    ("Dehydrated boulders (box of 12)", 3999),
    ("Portable hole", 49900),
    ("Earthquake pills", 1450),
    ("Spring-powered shoes", 8900),
    ("Bird seed (50 lb)", 2999),
]


_PAYMENT_INSTRUCTIONS = """Pay by bank transfer to Acme Corporation
First Desert Bank, routing number 102000021, account 4099 1234 5678
Please quote your customer number and the invoice numbers you are paying.

Checks payable to Acme Corporation, 1 Canyon Road, Albuquerque, NM 87101."""
# The demo company's settings, checked and kept by services/companies.py as any company's.
_PROFILE = {
    "legal_name": "Acme Corporation, Inc.",
    "address_line1": "1 Roadrunner Way",
    "city": "Albuquerque",
    "postal_code": "87101",
    "region": "NM",
    "country": "US",
    "tax_id": "US 12-3456789",
    "support_email": "billing@acme.example",
    "support_phone": "+1 505 555 0100",
    "time_zone": "America/Denver",
    "payment_instructions": _PAYMENT_INSTRUCTIONS,
    "footer_text": "Questions about a bill? Write to billing@acme.example.",
}

# Two months of history for every customer: (days ago issued, payment terms in days, what happened).
_PLAN = [
    (62, 30, "paid"),  # paid in full by check
    (45, 30, "paid"),  # paid in full by card
    (40, 14, "unpaid"),  # past due
    (20, 30, "partly paid"),
    (10, 30, "credited"),  # a returned item, credited on the invoice
    (5, 30, "voided"),
    (2, 30, "draft"),  # not shown to the customer
]


class _Numbers:
    """The next number of each kind of document."""

    def __init__(self) -> None:
        self.counts = {"INV": 1000, "PAY": 5000, "CN": 100, "EST": 300}

    def next(self, prefix: str) -> str:
        self.counts[prefix] += 1
        return f"{prefix}-{self.counts[prefix]}"


async def seed(store: Store, now: int) -> str:
    """Create the demo company if missing; return its active SSO key.

    Everything is made through the same write model as the API's: every paid
    invoice has its payment, every credit its credit note.
    """
    existing = await store.company(DEMO_COMPANY)
    if existing is not None:
        for existing_key in existing.sso_keys:
            if existing_key.state == "active":
                return existing_key.secret.decode("utf-8")
    key = sso_keys.generate_sso_key()
    company_id, _ = await sso.create_company(
        store, DEMO_COMPANY, "Acme Corporation", key, weak=False, now=now, profile=_PROFILE
    )
    company = await store.company(DEMO_COMPANY)
    assert company is not None
    # Customers try paying by card with the built-in test gateway (4242 4242 4242 4242): nobody is charged.
    online = {"gateway": "test", "test_mode": True, "allow_partial": True, "allow_saved_methods": True}
    await Payments(store).configure(company, online, CLI, now=now)
    billing = Billing(store)
    today = dt.date.fromisoformat(today_in(company, now))
    numbers = _Numbers()
    for index, (cid, name, email, phone, line1, city, state, postal) in enumerate(_CUSTOMERS):
        customer = {
            "id": cid,
            "name": name,
            "email": email,
            "phone": phone,
            "address_line1": line1,
            "city": city,
            "state": state,
            "postal_code": postal,
            "country": "US",
        }
        await billing.create_customer(company_id, customer, now=now)
        for offset, (days_ago, terms, story) in enumerate(_PLAN):
            issued = today - dt.timedelta(days=days_ago)
            lines = [
                LineInput(desc, str(1 + (index + offset + n) % 3), price, tax=price // 10 if n == 0 else 0)
                for n, (desc, price) in enumerate(_CATALOG[(index + offset) % 4 : (index + offset) % 4 + 3])
            ]
            invoice = await billing.create_invoice(
                company_id,
                {
                    "customer_id": cid,
                    "number": numbers.next("INV"),
                    "status": "draft" if story == "draft" else "open",
                    "issued_on": issued.isoformat(),
                    "due_on": (issued + dt.timedelta(days=terms)).isoformat(),
                    "lines": lines,
                    "notes": "Thank you for your business." if story == "paid" else "",
                },
                now=now,
            )
            if story == "voided":
                await billing.write(company_id, functools.partial(Books.void_invoice, invoice_id=invoice.id), now=now)
            elif story in ("paid", "partly paid"):
                amount = invoice.total if story == "paid" else round(invoice.total * 0.4)
                received = issued + dt.timedelta(days=20 if days_ago > 50 else 15)
                payment = {
                    "customer_id": cid,
                    "number": numbers.next("PAY"),
                    "received_on": min(received, today).isoformat(),
                    "method": ("check", "card", "ach")[offset % 3],
                    "amount": amount,
                    "applications": [{"invoice_id": invoice.id, "amount": amount}],
                    "reference": f"{cid}-{offset}",
                }
                await billing.record_payment(company_id, payment, now=now)
            elif story == "credited":
                returned = lines[-1]
                credit = {
                    "customer_id": cid,
                    "number": numbers.next("CN"),
                    "issued_on": (issued + dt.timedelta(days=3)).isoformat(),
                    "lines": [LineInput(f"Returned: {returned.description}", returned.quantity, returned.unit_price)],
                    "invoice_id": invoice.id,
                    "notes": "Credited on the invoice.",
                }
                await billing.create_credit_note(company_id, credit, now=now)
        if index == 0:
            # A goodwill credit held on the account: it lowers the balance due.
            goodwill = {
                "customer_id": cid,
                "number": numbers.next("CN"),
                "issued_on": (today - dt.timedelta(days=8)).isoformat(),
                "lines": [LineInput("Goodwill credit: late delivery of rocket skates", "1", 2500)],
            }
            await billing.create_credit_note(company_id, goodwill, now=now)
        estimate = {
            "customer_id": cid,
            "number": numbers.next("EST"),
            "issued_on": (today - dt.timedelta(days=3)).isoformat(),
            "expires_on": (today + dt.timedelta(days=30)).isoformat(),
            "lines": [
                LineInput("Portable hole (industrial)", "2", 49900, tax=9980),
                LineInput("Installation", "3", 7500, discount=2500),
            ],
            "notes": "Delivery within two weeks of approval.",
        }
        await billing.create_estimate(company_id, estimate, now=now)
        if index == 1:
            approvable = {
                "customer_id": cid,
                "number": numbers.next("EST"),
                "issued_on": (today - dt.timedelta(days=30)).isoformat(),
                "expires_on": (today + dt.timedelta(days=1)).isoformat(),
                "lines": [LineInput("Earthquake pills (case)", "4", 14500)],
            }
            approved = await billing.create_estimate(company_id, approvable, now=now)
            await billing.approve_estimate(
                company_id,
                cid,
                approved.id,
                approved_by="Road Runner (billing)",
                version=estimate_version(approved),
                now=now - 20 * 86400,
                valid_on=None,
            )
    return key


async def seed_admin(store: Store, now: int) -> str | None:
    """The demo's dashboard admin; returns a one-time password the first time only."""
    from billportal.services import passwords

    if await store.admins.admin_by_email(DEMO_ADMIN) is not None:
        return None
    company = await store.company(DEMO_COMPANY)
    assert company is not None
    password = passwords.generate_password()
    await store.admins.create_admin(
        DEMO_ADMIN, passwords.hash_password(password), company_id=company.id, must_change_password=True, now=now
    )
    return password


async def _seed_all(store: Store, now: int) -> tuple[str, str | None]:
    key = await seed(store, now)
    return key, await seed_admin(store, now)


def port_taken(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (the check uvicorn's own bind would fail)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def run_demo(settings: Settings, *, host: str, port: int, serve_after: bool = True) -> int:
    if serve_after and port_taken(host, port):
        print(
            f"billportal demo: port {port} on {host} is in use (another demo?): stop it, or choose another port"
            f" with `make demo PORT={port + 1}` or `billportal demo --port {port + 1}`",
            file=sys.stderr,
        )
        return 1
    hint = ""
    if not settings.public_url and settings.base_domain == "localhost":
        settings = replace(settings, public_url=f"http://localhost:{port}")
        if port != 8000:  # the CLI, run on its own, would otherwise say :8000
            hint = f"BILLPORTAL_PUBLIC_URL={settings.base_url} "
    store = open_store(settings)
    try:
        key, admin_password = asyncio.run(_seed_all(store, system_clock()))
    finally:
        store.close()
    base = settings.base_url
    dashboard = _links.portal_url("dashboard", base)
    url = _links.sign_in_url(key, DEMO_COMPANY, DEMO_CUSTOMER, issuer="billportal demo", ttl="1h", base_url=base)
    admin = (
        f"{DEMO_ADMIN}, one-time password {admin_password} (you choose a new one at first sign-in)"
        if admin_password
        else f"{DEMO_ADMIN} (forgot the password? .venv/bin/billportal admin reset-password --email {DEMO_ADMIN})"
    )
    print(
        "\n"
        "  billportal demo: company 'acme' (Acme Corporation), customer 1234 (Wile E. Coyote)\n\n"
        f"  Sign in as the customer (the link is valid for 1 hour):\n  {url}\n\n"
        f"  The company's dashboard: {dashboard}\n  Admin: {admin}\n\n"
        f"  Email (invoices, receipts...) goes to {MailConfig.from_settings(settings).where}\n\n"
        f"  More links:  {hint}.venv/bin/billportal sso-url --tenant acme --customer 1235 --redirect-to invoices\n"
        "  Debug one:   .venv/bin/billportal sso-explain --tenant acme TOKEN\n",
        file=sys.stderr if not serve_after else sys.stdout,
        flush=True,
    )
    if not serve_after:
        print(url)
        return 0
    from billportal.server import serve

    return serve(settings, host=host, port=port)
