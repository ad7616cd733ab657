"""The storage layer's front: transactions, companies (cached), and the sign-in path.

Services run their queries (functions of a ``Connection`` in the storage
modules) through :meth:`Store.read` and :meth:`Store.write`, one transaction
each. The sign-in path (customer lookup, session, sign-in event, single-use
mark) is a handful of prepared statements the backend owns, so that a sign-in
costs one indexed read and a share of one group commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, delete, func, literal_column, or_, select, update

from billportal.core.crypto import MasterKeys, Sealed
from billportal.core.errors import StorageUnavailable
from billportal.core.metrics import count_sign_in
from billportal.sso.reasons import Reason
from billportal.sso.tokens import Policy, VerificationKey
from billportal.storage import companies, email_sign_ins, sessions
from billportal.storage import schema as t
from billportal.storage.admins import AdminStore
from billportal.storage.backend import Backend
from billportal.storage.records import Company, CompanyRows, NewSignIn, Session, SignInEvent

if TYPE_CHECKING:  # redis-py loads only where Redis is configured
    from billportal.storage.cache import CompanyCache, SessionCache

# The seller's details on a company's row, and what a copy shared by a process of the release
# before (which has no such columns) reads as.
_PROFILE_DEFAULTS: dict[str, str] = {
    "legal_name": "",
    "address_line1": "",
    "address_line2": "",
    "city": "",
    "postal_code": "",
    "region": "",
    "country": "",
    "tax_id": "",
    "support_email": "",
    "support_phone": "",
    "default_currency": "USD",
    "footer_text": "",
    "logo_sha256": "",
    "default_locale": "en",
}

T = TypeVar("T")

COMPANY_CACHE_SECONDS = 1.0
EMAIL_LINKS_KEPT = 24 * 60 * 60  # seconds an expired emailed sign-in link is kept, for the log's reason
# Test-only: widens the race between reading a company and sharing the copy
# (tests/scaleout/test_cache_faults.py); never set in production.
PAUSE_BEFORE_SHARING_FOR_TESTS = float(os.environ.get("BILLPORTAL_TEST_PAUSE_BEFORE_SHARING_COMPANY") or 0)


def _policy(row: dict[str, Any]) -> Policy:
    issuers = frozenset(filter(None, (part.strip() for part in row["sso_allowed_issuers"].split("\n"))))
    return Policy(
        leeway=row["sso_leeway_seconds"],
        max_lifetime=row["sso_max_lifetime_seconds"],
        require_jti=bool(row["sso_require_jti"]),
        allowed_issuers=issuers,
        iat_cutoff=row["sso_iat_cutoff"],
    )


class Store:
    """billportal's data, whatever database holds it."""

    def __init__(
        self,
        backend: Backend,
        master_keys: MasterKeys,
        session_cache: SessionCache | None = None,
        company_cache: CompanyCache | None = None,
    ) -> None:
        self.backend = backend
        self.master_keys = master_keys
        self.session_cache = session_cache
        self.company_cache = company_cache
        self._companies: dict[str, tuple[float, Company | None]] = {}
        self._loading: dict[str, asyncio.Task[Company | None]] = {}
        self._changes = 0  # changes made by this process: a load that saw one meanwhile keeps no copy
        self.admins = AdminStore(backend)

    def close(self) -> None:
        self.backend.close()

    async def aclose(self) -> None:
        """Close, from the event loop that used the store (its pools' connections are closed there)."""
        await self.backend.aclose()

    # -- transactions -------------------------------------------------------------

    async def read(self, query: Callable[[Connection], T]) -> T:
        """Run ``query`` in a read transaction."""
        return await self.backend.read(query)

    async def write(self, change: Callable[[Connection], T]) -> T:
        """Run ``change`` in one write transaction; then drop the cached copies of the companies it changed."""
        changed: dict[str, int] = {}  # username: its new version

        def run(conn: Connection) -> T:
            conn.info[companies.CHANGED_COMPANIES] = changed
            try:
                return change(conn)
            finally:
                conn.info.pop(companies.CHANGED_COMPANIES, None)

        rolled_back = False
        try:
            return await self.backend.write(run)
        except StorageUnavailable:
            raise  # the commit may have happened: its versions stand
        except BaseException:
            rolled_back = True
            raise
        finally:
            # Dropped whether or not the commit happened: a copy read meanwhile is never newer than the database.
            for username, version in changed.items():
                await self.company_changed(username, 0 if rolled_back else version)

    async def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers (for /readyz)."""
        await self.backend.ping()

    async def redis_answers(self, timeout: float) -> bool | None:
        """Whether Redis answers within ``timeout`` seconds (None: no Redis is configured).

        False at once while the circuit breaker waits after a failure.
        """
        if self.session_cache is None:
            return None
        from billportal.storage.cache import REDIS_ERRORS

        try:
            async with asyncio.timeout(timeout):
                await self.session_cache.clients.call(lambda redis: redis.ping())
        except REDIS_ERRORS:
            return False
        return True

    @property
    def redis_address(self) -> str | None:
        """Where Redis is, for logs (None: no Redis is configured)."""
        return None if self.session_cache is None else self.session_cache.clients.address

    def alone(self, job: str) -> AbstractAsyncContextManager[bool]:
        """Whether this process may run ``job`` now: no other process runs it (a PostgreSQL advisory lock)."""
        key = int.from_bytes(hashlib.sha256(f"billportal:{job}".encode()).digest()[:8], "big", signed=True)
        return self.backend.alone(key)

    def connections_in_use(self) -> int | None:
        """Database connections checked out of the pool (None: the backend has no pool)."""
        return self.backend.connections_in_use()

    # -- companies ------------------------------------------------------------------

    async def company(self, username: str) -> Company | None:
        """The company at ``{username}.{base domain}``, cached for at most a second.

        The short cache keeps the sign-in path free of key decryption while a
        rotation made by another process (the CLI, another worker) still takes
        effect within a second. With Redis, processes share a copy of the rows
        (SSO keys still sealed) so a fleet does not reload them all from the
        database; a change deletes that copy. One request at a time loads a
        company; the others wait for its answer.
        """
        cached = self._companies.get(username)
        if cached is not None and time.monotonic() - cached[0] < COMPANY_CACHE_SECONDS:
            return cached[1]
        loop = asyncio.get_running_loop()
        loading = self._loading.get(username)
        if loading is None or loading.get_loop() is not loop:
            loading = loop.create_task(self._load_company(username))
            self._loading[username] = loading
            loading.add_done_callback(partial(self._loaded, username))
        # Shielded: a waiter that goes away does not cancel the others' answer.
        return await asyncio.shield(loading)

    def _loaded(self, username: str, task: asyncio.Task[Company | None]) -> None:
        if self._loading.get(username) is task:
            del self._loading[username]
        if not task.cancelled():
            task.exception()  # retrieved: each waiter has it raised already

    async def _load_company(self, username: str) -> Company | None:
        changes = self._changes
        company = None
        if self.company_cache is not None:
            shared = await self.company_cache.get(username)
            if shared is not None and all(self._opens(k) for k in shared.keys):
                company = self._company_from(shared)
            # else sealed under a master key retired since: read the database

        if company is None:
            rows = await self.backend.read(lambda conn: companies.rows(conn, username))
            if rows is not None and self.company_cache is not None:
                if PAUSE_BEFORE_SHARING_FOR_TESTS:
                    await asyncio.sleep(PAUSE_BEFORE_SHARING_FOR_TESTS)
                await self.company_cache.put(username, rows)
            company = None if rows is None else self._company_from(rows)
        if changes == self._changes:  # else a change was made meanwhile: the next request loads it
            if len(self._companies) > 10_000:
                self._companies.clear()
            # Stamped now, after the fetch: its time is what the copy's age is counted from.
            self._companies[username] = (time.monotonic(), company)
        return company

    def forget_company(self, username: str) -> None:
        """Drop this process's copy (``company_changed`` also drops the shared one)."""
        self._changes += 1
        self._companies.pop(username, None)
        self._loading.pop(username, None)

    async def company_changed(self, username: str, version: int) -> None:
        """Drop every cached copy of the company's settings; the shared copy takes no version below ``version``.

        ``version`` 0: the change was rolled back, nothing newer exists.
        """
        self.forget_company(username)
        if self.company_cache is not None:
            await self.company_cache.drop(username, version)

    def _opens(self, key: dict[str, Any]) -> bool:
        return self.master_keys.sealed_it(Sealed(key["master_key_id"], key["sealed"]))

    def _company_from(self, rows: CompanyRows) -> Company:
        """The company, its SSO keys opened by their first use.

        SealError at once when a key was sealed by no configured master key (a wrong key must
        stop every command, not only a sign-in: a rotation would seal a new key under it);
        a key that fails its integrity check is found by the first use that opens it.
        """
        row = rows.company
        for k in rows.keys:
            self.master_keys.require(Sealed(k["master_key_id"], k["sealed"]))
        # The active key first: the verifier tries keys in this order.
        keys = tuple(
            VerificationKey(
                kid=k["kid"],
                state=k["state"],
                retiring_until=k["retiring_until"],
                opener=partial(
                    self.master_keys.unseal,
                    Sealed(k["master_key_id"], k["sealed"]),
                    companies.SSO_KEY_PURPOSE,
                    row["id"],
                ),
            )
            for k in sorted(rows.keys, key=lambda k: k["state"] != "active")
        )
        return Company(
            id=row["id"],
            username=row["username"],
            name=row["name"],
            accent_color=row["accent_color"],
            time_zone=row["time_zone"],
            payment_instructions=row["payment_instructions"],
            sso_enabled=bool(row["sso_enabled"]),
            policy=_policy(row),
            sign_in_url=row["sign_in_url"],
            sign_out_url=row["sign_out_url"],
            error_url=row["error_url"],
            frame_ancestors=tuple(row["frame_ancestors"].split()),
            sso_keys=keys,
            # (.get: a copy shared by a process of the release before has no such column)
            session_cutoff=row.get("sso_session_cutoff"),
            email_sign_in=bool(row.get("email_sign_in", False)),
            contacts_page=bool(row.get("contacts_page", False)),
            **{name: row.get(name, default) for name, default in _PROFILE_DEFAULTS.items()},
        )

    # -- sign-in path (hot) --------------------------------------------------------

    async def customer_exists(self, company_id: int, customer_id: int) -> bool:
        return await self.backend.customer_exists(company_id, customer_id)

    async def jti_used(self, company_id: int, jti: str, now: int) -> bool:
        """Whether a sign-in would find ``jti`` taken (read-only, the rule the sign-in's mark obeys).

        A mark whose link has expired may be taken again, so only a live one counts.
        """

        def query(conn: Connection) -> bool:
            c = t.used_jtis.c
            found = select(c.jti).where(c.company_id == company_id, c.jti == jti, c.expires_at > now)
            return conn.execute(found).first() is not None

        used: bool = await self.backend.read(query)
        return used

    async def complete_sign_in(self, sign_in: NewSignIn) -> bool:
        """Write the session, the event and the single-use mark; False if the jti was used."""
        event = sign_in.event
        # The database's mark (a unique key, written in the same transaction as the session) is the one
        # guard of single use: a Redis mark before it would cost every sign-in a round trip, and would make
        # sign-in with a jti fail whenever Redis does, for no replay the database lets through.
        signed_in = await self.backend.sign_in(sign_in)
        if signed_in:
            count_sign_in(event.result, event.reason)
        else:
            count_sign_in("failure", Reason.JTI_REPLAYED.value)
        return signed_in

    async def record_event(self, event: SignInEvent) -> None:
        if event.method == "sso":
            await self.backend.record_event(event)  # the sign-in path's statement names no newer column
        else:
            await self.write(lambda conn: email_sign_ins.insert_event(conn, event))
        count_sign_in(event.result, event.reason)

    async def session(self, id_hash: bytes) -> Session | None:
        """A session by the hash of its id: from the Redis copy when there is one."""
        if self.session_cache is not None:
            cached = await self.session_cache.get(id_hash)
            if cached is not None:
                return cached
        session = await self.backend.session(id_hash)
        if session is not None and self.session_cache is not None:
            await self.session_cache.put(session)
        return session

    async def touch_session(self, id_hash: bytes, now: int, device: str | None = None) -> None:
        """Write the session's last use (and, given, the device it is used from)."""
        if device is None:
            await self.backend.touch_session(id_hash, now)
        else:
            await self.write(lambda conn: sessions.touch(conn, id_hash, now, device))
        if self.session_cache is not None:
            await self.session_cache.drop(id_hash)

    async def set_session_locale(self, id_hash: bytes, locale: str) -> None:
        """Keeps the language chosen for a session (the first ``?locale=`` of a session that has none)."""
        s = t.sessions.c
        await self.backend.write(
            lambda conn: conn.execute(
                update(t.sessions).where(s.id_hash == id_hash, s.locale == "").values(locale=locale)
            )
        )
        if self.session_cache is not None:
            await self.session_cache.drop(id_hash)

    async def end_session(self, id_hash: bytes) -> None:
        await self.backend.end_session(id_hash)
        if self.session_cache is not None:
            await self.session_cache.drop(id_hash)

    async def end_customer_sessions(self, company_id: int, customer_id: int) -> int:
        """Sign one customer out everywhere; returns how many sessions ended."""
        if self.session_cache is not None:
            s = t.sessions.c
            hashes = await self.backend.read(
                lambda conn: list(
                    conn.execute(select(s.id_hash).where(s.company_id == company_id, s.customer_id == customer_id))
                    .scalars()
                    .all()
                )
            )
            for id_hash in hashes:
                await self.session_cache.drop(id_hash)
        return await self.backend.end_customer_sessions(company_id, customer_id)

    async def prune_sessions(self, now: int, idle_seconds: int) -> int:
        """Delete customer and admin sessions past their absolute end or idle too long; return how many.

        Emailed sign-in links a day past their end go too.

        The rule is the one each request applies (web/sessions.py ``is_live``): only
        sessions that could no longer be used go. A Redis copy of one (30 s at most)
        is judged by the same rule.
        """

        def change(conn: Connection) -> int:
            ended = 0
            for table in (t.sessions, t.admin_sessions):
                c = table.c
                over = or_(c.expires_at <= now, c.last_seen_at <= now - idle_seconds)
                ended += int(conn.execute(delete(table).where(over)).rowcount)
            # Emailed sign-in links a day past their end: until then a late press is logged as expired.
            email_sign_ins.prune(conn, now - EMAIL_LINKS_KEPT)
            return ended

        return await self.write(change)

    # -- sign-in log -----------------------------------------------------------------

    async def sign_in_events(
        self,
        company_id: int,
        *,
        result: str | None = None,
        reason: str | None = None,
        customer_id: int | None = None,
        before_id: int | None = None,
        since_id: int | None = None,
        limit: int = 50,
    ) -> list[SignInEvent]:
        """Newest first, keyset-paginated by id (``before_id`` > id >= ``since_id``)."""

        def query(conn: Connection) -> list[SignInEvent]:
            c = t.sign_in_events.c
            where = [c.company_id == company_id]
            # A reason other than "ok" is always a failure. The result is written
            # into the SQL, never bound, so that the planner may choose the partial
            # indexes on failures (schema.py), which it can only do for a literal.
            results = {result} if result else set()
            if reason:
                results.add("success" if reason == "ok" else "failure")
                where.append(c.reason == reason)
            for wanted in results:
                if wanted not in ("success", "failure"):
                    return []
                where.append(c.result == literal_column(f"'{wanted}'"))
            if customer_id is not None:
                where.append(c.customer_id == customer_id)
            if before_id is not None:
                where.append(c.id < before_id)
            if since_id is not None:
                where.append(c.id >= since_id)
            rows = conn.execute(select(t.sign_in_events).where(*where).order_by(c.id.desc()).limit(limit)).all()
            return [
                SignInEvent(
                    id=r.id,
                    company_id=r.company_id,
                    at=r.at,
                    result=r.result,
                    reason=r.reason,
                    customer_id=r.customer_id,
                    issuer=r.issuer,
                    kid=r.kid,
                    jti=r.jti,
                    ip=r.ip,
                    user_agent=r.user_agent,
                    method=r.method,
                    contact_id=r.contact_id,
                )
                for r in rows
            ]

        return list(await self.backend.read(query))

    async def sign_in_scan_floor(self, company_id: int, before_id: int | None, window: int) -> int | None:
        """The lowest id among the company's ``window`` newest events before ``before_id``.

        None when there are fewer than ``window`` of them: a scan down to the floor
        then reaches the oldest event. Reads only the (company_id, id) index.
        """

        def query(conn: Connection) -> int | None:
            c = t.sign_in_events.c
            where = [c.company_id == company_id]
            if before_id is not None:
                where.append(c.id < before_id)
            newest = select(c.id).where(*where).order_by(c.id.desc()).limit(window).subquery()
            lowest, count = conn.execute(select(func.min(newest.c.id), func.count())).one()
            return int(lowest) if count == window else None

        floor: int | None = await self.backend.read(query)
        return floor
