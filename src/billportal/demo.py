"""``billportal demo``: a believable company to click through, and a link into its portal."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys

from billportal import _links
from billportal.config import Settings
from billportal.sso import keys as sso_keys
from billportal.storage import open_store
from billportal.storage.records import LineInput
from billportal.storage.store import Store
from billportal.web.context import system_clock

DEMO_COMPANY = "acme"
DEMO_CUSTOMER = 1234  # the customer id of the seed product's Ruby example

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


async def seed(store: Store, now: int) -> str:
    """Create the demo company if missing; return its active SSO key."""
    existing = await store.company(DEMO_COMPANY)
    if existing is not None:
        for existing_key in existing.keys:
            if existing_key.state == "active":
                return existing_key.secret.decode("utf-8")
    key = sso_keys.generate_sso_key()
    company_id, _ = await store.create_company(DEMO_COMPANY, "Acme Corporation", key, weak=False, now=now)
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    number = 1000
    for index, (cid, name, email, phone, line1, city, state, postal) in enumerate(_CUSTOMERS):
        await store.create_customer(
            company_id,
            name,
            now=now,
            customer_id=cid,
            email=email,
            phone=phone,
            address_line1=line1,
            city=city,
            state=state,
            postal_code=postal,
            country="US",
        )
        # Two months of history: paid, partly paid, open, past due and voided invoices.
        plan = [
            (62, 30, "paid", 1.0),
            (45, 30, "paid", 1.0),
            (40, 14, "open", 0.0),  # past due
            (20, 30, "open", 0.4),  # partly paid
            (10, 30, "open", 0.0),
            (5, 30, "voided", 0.0),
            (2, 30, "draft", 0.0),
        ]
        for offset, (days_ago, terms, status, paid_share) in enumerate(plan):
            number += 1
            issued = today - dt.timedelta(days=days_ago)
            lines = [
                LineInput(desc, str(1 + (index + offset + n) % 3), price, tax=price // 10 if n == 0 else 0)
                for n, (desc, price) in enumerate(_CATALOG[(index + offset) % 4 : (index + offset) % 4 + 3])
            ]
            total = sum(line.amount for line in lines)
            await store.create_invoice(
                company_id,
                cid,
                number=f"INV-{number}",
                currency="USD",
                status=status,
                issued_on=issued.isoformat(),
                due_on=(issued + dt.timedelta(days=terms)).isoformat(),
                lines=lines,
                amount_paid=round(total * paid_share),
                notes="Thank you for your business." if status == "paid" else "",
                now=now,
            )
    return key


def run_demo(settings: Settings, *, host: str, port: int, serve_after: bool = True) -> int:
    store = open_store(settings)
    try:
        key = asyncio.run(seed(store, system_clock()))
    finally:
        store.close()
    base = (
        f"http://{settings.base_domain}:{port}"
        if settings.base_domain == "localhost"
        else f"https://{settings.base_domain}"
    )
    url = _links.sign_in_url(key, DEMO_COMPANY, DEMO_CUSTOMER, issuer="billportal demo", ttl="1h", base_url=base)
    print(
        "\n"
        "  billportal demo: company 'acme' (Acme Corporation), customer 1234 (Wile E. Coyote)\n\n"
        f"  Sign in (valid for 1 hour):\n  {url}\n\n"
        "  More links:  .venv/bin/billportal sso-url --tenant acme --customer 1235 --redirect-to invoices\n"
        "  Debug one:   .venv/bin/billportal sso-explain --tenant acme TOKEN\n",
        file=sys.stderr if not serve_after else sys.stdout,
        flush=True,
    )
    if not serve_after:
        print(url)
        return 0
    from billportal.server import serve

    return serve(settings, host=host, port=port)
