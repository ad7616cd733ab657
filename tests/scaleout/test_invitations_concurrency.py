"""An invitation accepted many times at once, through two app processes on PostgreSQL, makes one membership;
two owners demoting each other at once leave one owner.

Each trial makes a fresh invitation in the shared database, opens its page in
every client of a burst (each gets its own form and form cookie, on either
process), then releases the acceptances at once. Exactly one is accepted (303);
every other one is told the invitation was used (410); the database then holds
one admin with that email and one membership in the invited role. Half the trials
invite a new person (who chooses a password), half an admin of another company
(who gives theirs). No answer may be a 5xx.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import httpx
import pytest
from sqlalchemy import Connection

from billportal.core.config import Settings
from billportal.services import admins as roles
from billportal.services import passwords
from billportal.services.audit import CLI
from billportal.storage import admins as rows
from billportal.storage import open_store
from billportal.storage.records import Company
from billportal.storage.store import Store
from tests.scaleout.conftest import Fleet
from tests.scaleout.test_concurrency import fleet

__all__ = ["fleet"]  # a fixture: two app processes on one PostgreSQL database and one Redis

TRIALS: Final = 6
BURST: Final = 6  # three a process: within each process's argon2 allowance (dashboard/auth.py MAX_PASSWORD_CHECKS)
PASSWORD: Final = "a password for the invited admin"
RUN: Final = uuid.uuid4().hex[:8]
TIMEOUT: Final = 30.0


def _form_cookie(response: httpx.Response) -> str:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.endswith("bp_admin_form"):
            return f"{name}={rest.split(';', 1)[0]}"
    raise AssertionError("no form cookie")


def _csrf(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def _burst(fleet: Fleet, token: str, password: str, *, new: bool) -> list[int]:
    """Every client opens the invitation, then all accept at once: their statuses."""
    barrier = threading.Barrier(BURST, timeout=TIMEOUT)

    def accept(slot: int) -> int:
        port = fleet.apps[slot % len(fleet.apps)].port
        host = {"host": f"dashboard.localhost:{port}"}
        with httpx.Client(timeout=TIMEOUT) as client:
            page = client.get(f"http://127.0.0.1:{port}/invitation", params={"token": token}, headers=host)
            assert page.status_code == 200, page.text
            fields = {"csrf_token": _csrf(page.text), "token": token, "password": password}
            if new:
                fields["confirm_password"] = password
            barrier.wait()
            answer = client.post(
                f"http://127.0.0.1:{port}/invitation",
                data=fields,
                headers={**host, "cookie": _form_cookie(page)},
            )
            return answer.status_code

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        return list(pool.map(accept, range(BURST)))


@pytest.fixture(scope="module")
def racers(fleet: Fleet) -> str:
    """A second company: where the existing admins come from, and the owners race."""
    username = f"racers{RUN}"
    fleet.cli("tenant", "create", username, "--name", "Racers")
    return username


@pytest.mark.usefixtures("racers")
def test_concurrent_acceptances_of_one_invitation_make_one_membership(fleet: Fleet) -> None:
    store = open_store(Settings.from_env(fleet.env), migrate=False)
    try:
        problems = asyncio.run(_trials(fleet, store))
    finally:
        store.close()
    assert not problems, f"{len(problems)} of {TRIALS} trials went wrong: {problems}"


async def _trials(fleet: Fleet, store: Store) -> dict[int, list[str]]:
    acme = await store.company("acme")
    assert acme is not None
    other = await store.company(f"racers{RUN}")
    assert other is not None
    problems: dict[int, list[str]] = {}
    for trial in range(TRIALS):
        new = trial % 2 == 0
        email = f"race-{RUN}-{trial}@example.com"
        password = PASSWORD
        if not new:
            password_hash = passwords.hash_password(password)
            # Not an owner of racers: the owners' race below counts on the company having no owner of its own.
            await store.admins.create_admin(
                email,
                password_hash,
                company_id=other.id,
                must_change_password=False,
                now=int(time.time()),
                role="billing",
            )
        made = await roles.invite(store, acme, email, role="billing", actor=CLI, now=int(time.time()))
        # Off the event loop: the burst's threads block on the network.
        statuses = await asyncio.to_thread(_burst, fleet, made.token, password, new=new)
        wrong = []
        if sorted(statuses) != [303] + [410] * (BURST - 1):
            wrong.append(f"answered {sorted(statuses)}")
        members = [m for m in await roles.members_of(store, acme.id) if m.admin.email == email]
        if [m.role for m in members] != ["billing"]:
            wrong.append(f"memberships {[m.role for m in members]}")
        if await store.admins.admin_by_email(email) is None:
            wrong.append("no admin")
        if wrong:
            problems[trial] = wrong
    return problems


OWNER_TRIALS: Final = 5


def _signed_in(fleet: Fleet, slot: int, email: str) -> tuple[httpx.Client, dict[str, str], str]:
    """A dashboard session on process ``slot``: its client, headers (host and cookie) and CSRF token."""
    port = fleet.apps[slot % len(fleet.apps)].port
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT)
    host = {"host": f"dashboard.localhost:{port}"}
    form = client.get("/sign-in", headers=host)
    fields = {"csrf_token": _csrf(form.text), "email": email, "password": PASSWORD}
    signed = client.post("/sign-in", data=fields, headers={**host, "cookie": _form_cookie(form)})
    assert signed.status_code == 303, signed.text
    session = next(
        header.split(";", 1)[0]
        for header in signed.headers.get_list("set-cookie")
        if header.partition("=")[0].endswith("bp_admin")
    )
    headers = {**host, "cookie": session}
    page = client.get("/settings/admins", headers=headers)
    assert page.status_code == 200, page.text
    return client, headers, _csrf(page.text)


@pytest.mark.usefixtures("racers")
def test_two_owners_demoting_each_other_at_once_leave_one_owner(fleet: Fleet) -> None:
    """Each of two owners, on a process of their own, demotes the other at the same moment: one is refused."""
    store = open_store(Settings.from_env(fleet.env), migrate=False)
    try:
        company = asyncio.run(store.company(f"racers{RUN}"))
        assert company is not None
        problems = {
            trial: wrong for trial in range(OWNER_TRIALS) if (wrong := _owner_trial(fleet, store, company, trial))
        }
    finally:
        store.close()
    assert not problems, f"{len(problems)} of {OWNER_TRIALS} trials went wrong: {problems}"


def _owner_trial(fleet: Fleet, store: Store, company: Company, trial: int) -> list[str]:
    emails = [f"owner-{RUN}-{trial}-{side}@example.com" for side in "ab"]
    ids = [
        asyncio.run(
            store.admins.create_admin(
                email,
                passwords.hash_password(PASSWORD),
                company_id=company.id,
                must_change_password=False,
                now=int(time.time()),
            )
        )
        for email in emails
    ]
    sessions = [_signed_in(fleet, slot, email) for slot, email in enumerate(emails)]
    barrier = threading.Barrier(2, timeout=TIMEOUT)

    def demote(slot: int) -> int:
        client, headers, csrf = sessions[slot]
        barrier.wait()
        answer = client.post(
            f"/settings/admins/{ids[1 - slot]}/role", data={"csrf_token": csrf, "role": "admin"}, headers=headers
        )
        return answer.status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(demote, range(2)))
    for client, _, _ in sessions:
        client.close()
    members = asyncio.run(roles.members_of(store, company.id))
    owners = [m.admin.email for m in members if m.role == "owner"]  # the trial's two are the company's only ones
    wrong = []
    # The second is refused: by the last-owner rule (409), or, once the first committed, by its new role (403).
    if statuses not in ([303, 409], [303, 403]):
        wrong.append(f"answered {statuses}")
    if len(owners) != 1:
        wrong.append(f"owners left: {owners}")

    # The trial's admins leave: the next trial's two are the company's only owners.
    def leave(conn: Connection) -> None:
        for admin_id in ids:
            rows.remove_membership(conn, company.id, admin_id)

    asyncio.run(store.write(leave))
    return wrong
