"""Two ``billportal import`` processes of the same file at once, on PostgreSQL: each customer, invoice and contact once.

The two processes insert the same keys in the same order, so the second waits on
the first's batch, finds its rows made, and counts them unchanged: together they
create each customer (and each invoice, and each contact) exactly once, with one
``customer.created`` event each (one ``contact.added`` audit entry each), and both exit 0.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Final

from sqlalchemy import func, select

from billportal.storage import schema as t
from tests import factories
from tests.conftest import MASTER_KEY, World, run

CUSTOMERS: Final = 1_500
INVOICES: Final = 600
CONTACTS: Final = 600  # two for each of the first 300 customers
TRIALS: Final = 3


def _env(world: World) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "BILLPORTAL_DATA_DIR": str(world.settings.data_dir),
            "BILLPORTAL_MASTER_KEY": base64.urlsafe_b64encode(MASTER_KEY).decode(),
            "BILLPORTAL_DATABASE_URL": world.settings.database_url,
            "BILLPORTAL_REDIS_URL": world.settings.redis_url,
        }
    )
    return env


def _both(world: World, kind: str, path: Path) -> list[dict[str, int]]:
    """Run two imports of ``path`` at once; both must succeed."""
    command = [sys.executable, "-m", "billportal", "import", kind, str(path), "--tenant", "acme", "--batch", "100"]
    processes = [
        subprocess.Popen(command, env=_env(world), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    summaries = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        summaries.append(json.loads(out))
    return summaries


def _count(world: World, statement: object) -> int:
    async def go() -> int:
        return int(await world.store.read(lambda conn: conn.execute(statement).scalar_one()))  # type: ignore[call-overload]

    return run(go())


def test_two_concurrent_imports_of_one_file_make_each_customer_and_invoice_once(world: World, tmp_path: Path) -> None:
    run(factories.webhook_endpoint(world.store, world.acme.id, now=world.clock.now, event_types=["customer.created"]))
    for trial in range(TRIALS):
        first = 10_000 + trial * CUSTOMERS
        people = tmp_path / f"customers{trial}.csv"
        people.write_text(
            "id,name,email\n"
            + "".join(f"{i},Customer {i},c{i}@example.com\n" for i in range(first, first + CUSTOMERS)),
            encoding="utf-8",
        )
        summaries = _both(world, "customers", people)
        assert sum(s["created"] for s in summaries) == CUSTOMERS
        assert sum(s["created"] + s["unchanged"] for s in summaries) == 2 * CUSTOMERS
        c = t.customers.c
        made = select(func.count()).where(c.company_id == world.acme.id, c.id.between(first, first + CUSTOMERS - 1))
        assert _count(world, made) == CUSTOMERS
        bills = tmp_path / f"invoices{trial}.csv"
        bills.write_text(
            "number,customer_id,issued_on,description,quantity,unit_price\n"
            + "".join(
                f"T{trial}-{i},{first + i % CUSTOMERS},2026-11-01,Work,1,100\nT{trial}-{i},,,More,2,50\n"
                for i in range(INVOICES)
            ),
            encoding="utf-8",
        )
        summaries = _both(world, "invoices", bills)
        assert sum(s["created"] for s in summaries) == INVOICES
        i = t.invoices.c
        numbers = select(func.count()).where(i.company_id == world.acme.id, i.number.like(f"T{trial}-%"))
        assert _count(world, numbers) == INVOICES
        people = tmp_path / f"contacts{trial}.csv"
        people.write_text(
            "customer_id,email,name,role\n"
            + "".join(
                f"{first + i // 2},p{i % 2}@c{first + i // 2}.example,Person {i},{('view', 'pay')[i % 2]}\n"
                for i in range(CONTACTS)
            ),
            encoding="utf-8",
        )
        summaries = _both(world, "contacts", people)
        assert sum(s["created"] for s in summaries) == CONTACTS
        assert sum(s["created"] + s["unchanged"] for s in summaries) == 2 * CONTACTS
        k = t.contacts.c
        added = select(func.count()).where(
            k.company_id == world.acme.id, k.customer_id.between(first, first + CUSTOMERS)
        )
        assert _count(world, added) == CONTACTS
    e = t.webhook_events.c
    rows = run(
        world.store.read(
            lambda conn: conn.execute(
                select(e.object_id).where(e.company_id == world.acme.id, e.type == "customer.created")
            ).all()
        )
    )
    created = Counter(row.object_id for row in rows)
    assert len(created) == TRIALS * CUSTOMERS
    assert set(created.values()) == {1}
    a = t.audit_events.c
    audited = select(func.count()).where(a.company_id == world.acme.id, a.action == "contact.added")
    assert _count(world, audited) == TRIALS * CONTACTS
