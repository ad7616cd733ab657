"""One factory per model, each through the service the product itself uses: tests make no state the API would refuse.

Every factory is a coroutine over a :class:`~billportal.storage.store.Store`;
its defaults make a believable object, and any field can be given. Money is
minor units, dates are ``YYYY-MM-DD``.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from typing import Any

from PIL import Image, PngImagePlugin

from billportal.services import api_keys, contacts, sso
from billportal.services.audit import CLI
from billportal.services.billing import Billing, LineInput
from billportal.services.events import EVENT_TYPES
from billportal.services.passwords import hash_password
from billportal.services.payments import Payments
from billportal.services.webhooks import ShownSecret, Webhooks
from billportal.storage import companies
from billportal.storage.records import (
    Company,
    Contact,
    CreditNote,
    Customer,
    Estimate,
    Invoice,
    NewApiKey,
    Payment,
    PaymentSettings,
)
from billportal.storage.store import Store

LINES = (LineInput("Rocket skates", "2", 12500), LineInput("Giant magnet", "1", 9900, tax=990))


async def company(
    store: Store, username: str, sso_key: str, *, now: int, name: str = "", weak: bool = False
) -> Company:
    """A company with ``sso_key`` as its active SSO key."""
    await sso.create_company(store, username, name or username.capitalize(), sso_key, weak=weak, now=now)
    store.forget_company(username)
    found = await store.company(username)
    assert found is not None
    return found


async def company_settings(store: Store, company: Company, **columns: Any) -> None:
    """Change a company's settings columns as its admins' pages store them (every cached copy is dropped)."""
    await store.write(lambda conn: companies.update_settings(conn, company.id, company.username, columns))


def logo_png(width: int = 240, height: int = 80, color: tuple[int, int, int] = (37, 99, 235)) -> bytes:
    """A logo as an admin uploads it: a PNG of one colour, with a text chunk (metadata) that must not survive."""
    image = Image.new("RGB", (width, height), color)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret-metadata-from-the-camera")
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


async def customer(store: Store, company_id: int, *, now: int, name: str = "Wile E. Coyote", **fields: Any) -> Customer:
    """A customer (``id=`` to choose its id, as a company's own customer id)."""
    return await Billing(store).create_customer(company_id, {"name": name, **fields}, now=now)


async def invoice(
    store: Store,
    company_id: int,
    customer_id: int,
    *,
    now: int,
    issued_on: str = "2026-11-01",
    lines: Sequence[LineInput] = LINES,
    **fields: Any,
) -> Invoice:
    """An invoice, open unless ``status="draft"``; ``number=`` or the next free one."""
    values = {"customer_id": customer_id, "issued_on": issued_on, "lines": list(lines), **fields}
    return await Billing(store).create_invoice(company_id, values, now=now)


async def payment(
    store: Store,
    company_id: int,
    customer_id: int,
    *,
    now: int,
    amount: int,
    applications: Sequence[tuple[int, int]] = (),
    received_on: str = "2026-11-10",
    method: str = "check",
    **fields: Any,
) -> Payment:
    """A payment, applied to ``[(invoice id, amount), ...]``."""
    values = {
        "customer_id": customer_id,
        "amount": amount,
        "received_on": received_on,
        "method": method,
        "applications": [{"invoice_id": i, "amount": a} for i, a in applications],
        **fields,
    }
    return await Billing(store).record_payment(company_id, values, now=now)


async def credit_note(
    store: Store,
    company_id: int,
    customer_id: int,
    *,
    now: int,
    lines: Sequence[LineInput],
    issued_on: str = "2026-11-12",
    **fields: Any,
) -> CreditNote:
    """A credit note: account credit, or applied to ``invoice_id=``."""
    values = {"customer_id": customer_id, "issued_on": issued_on, "lines": list(lines), **fields}
    return await Billing(store).create_credit_note(company_id, values, now=now)


async def estimate(
    store: Store,
    company_id: int,
    customer_id: int,
    *,
    now: int,
    lines: Sequence[LineInput] = LINES,
    issued_on: str = "2026-11-20",
    **fields: Any,
) -> Estimate:
    """An estimate, sent unless ``status=`` says otherwise."""
    values = {"customer_id": customer_id, "issued_on": issued_on, "lines": list(lines), **fields}
    return await Billing(store).create_estimate(company_id, values, now=now)


@functools.cache
def _hashed(password: str) -> str:
    # argon2 is slow on purpose: each test password is hashed once per run.
    return hash_password(password)


async def admin(
    store: Store,
    email: str,
    password: str,
    company_id: int,
    *,
    now: int,
    must_change_password: bool = False,
    role: str = "owner",
) -> int:
    """A dashboard admin of one company, in ``role``."""
    return await store.admins.create_admin(
        email, _hashed(password), company_id=company_id, must_change_password=must_change_password, now=now, role=role
    )


async def api_key(
    store: Store,
    company: Company,
    *,
    now: int,
    name: str = "test key",
    scopes: tuple[str, ...] = tuple(api_keys.SCOPES),
) -> NewApiKey:
    """An API key of the company (its plaintext is in the answer), with every scope unless told."""
    return await api_keys.create(store, company, name, CLI, now, scopes=scopes)


async def contact(
    store: Store,
    company: Company,
    customer_id: int,
    *,
    now: int,
    name: str = "Pat Contact",
    email: str = "pat@example.com",
    role: str = "view",
) -> Contact:
    """A contact of the customer (a person who signs in by email with ``role``)."""
    values = {"name": name, "email": email, "role": role}
    return await contacts.add(store, company, customer_id, values, actor=CLI, now=now)


async def webhook_endpoint(
    store: Store,
    company_id: int,
    *,
    now: int,
    url: str = "http://127.0.0.1:9/hooks",
    event_types: Sequence[str] = (),
    test_mode: bool = True,
    description: str = "",
) -> ShownSecret:
    """A webhook endpoint (every event type unless ``event_types``), with its secret as it is shown once."""
    types = list(event_types) or list(EVENT_TYPES)
    return await Webhooks(store, test_mode=test_mode).add(
        company_id, url, types, description=description, actor=CLI, now=now
    )


async def payment_settings(store: Store, company: Company, *, now: int, **values: Any) -> PaymentSettings:
    """A company's online payment settings, changed as its admins change them (``gateway="test", test_mode=True``)."""
    return await Payments(store).configure(company, values, CLI, now=now)
