"""The scale-out backend: PostgreSQL through psycopg 3 (async, pooled), for many app processes.

The same SQLAlchemy Core functions that serve SQLite run here through
``AsyncConnection.run_sync``; the sign-in path is a handful of statements in one
transaction. Every call is bounded in time: a database that is down, slow or
frozen gives :class:`StorageUnavailable` (a 503) within :data:`CALL_TIMEOUT`,
never a hang, and the pool reconnects by itself when the database is back.

A call that runs out of time drops its connection (the socket is shut down)
rather than cancelling it: psycopg's cancel sends a cancel request to the
server and waits for it, which takes seconds more when the server is frozen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Connection, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from billportal.sso.reasons import Reason
from billportal.storage import schema as t
from billportal.storage.failures import raise_as_storage_error
from billportal.storage.records import NewSignIn, Session, SignInEvent

T = TypeVar("T")

t.with_postgresql_conditions()  # this process uses PostgreSQL: its partial indexes in its own spelling

CALL_TIMEOUT = 5.0  # seconds for any one storage call, connection included
PING_TIMEOUT = 1.0  # seconds for /readyz's ping
IDLE_CHECK_SECONDS = 5.0  # a pooled connection idle longer than this is checked before use

# libpq's own bounds, so that even a connection nobody waits on does not linger:
# connects, unacknowledged writes (tcp_user_timeout, ms) and silent peers (keepalives).
CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 2,
    "tcp_user_timeout": 5000,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "options": "-c statement_timeout=4000 -c lock_timeout=2000 -c idle_in_transaction_session_timeout=10000",
}


def engine_for(url: str, pool_size: int) -> AsyncEngine:
    """An async engine with bounded connects, statements and pool waits (pool_size 0: no pool)."""
    connect_args = dict(CONNECT_ARGS)
    if pool_size <= 0:
        return create_async_engine(url, poolclass=NullPool, connect_args=connect_args, hide_parameters=True)
    engine = create_async_engine(
        url,
        # An error's text never carries the values of a statement (a session's hash, a sealed key).
        hide_parameters=True,
        pool_size=pool_size,
        # No overflow: connections opened past the pool were closed again after each burst, so a busy
        # server opened a new backend for one request in six; a request past the pool waits for one.
        max_overflow=0,
        pool_timeout=2,
        pool_recycle=1800,
        # No pre-ping on every checkout (a round trip each): only a connection
        # that sat idle is checked (_check_idle), so one that a PostgreSQL
        # restart broke is replaced rather than answered as a 503.
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine.pool, "checkin", _note_checkin)
    event.listen(engine.sync_engine.pool, "checkout", _check_idle)
    return engine


def _note_checkin(dbapi_connection: Any, record: Any) -> None:
    del dbapi_connection
    record.info["idle_since"] = time.monotonic()


def _check_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Ping a connection that sat idle in the pool; a dead one is replaced (DisconnectionError)."""
    del proxy
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < IDLE_CHECK_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        # The ping began a transaction: end it, or the next use cannot set its isolation level.
        dbapi_connection.rollback()
    except Exception as exc:
        raise sa_exc.DisconnectionError("an idle pooled connection no longer answers") from exc


def _drop(connection: Any) -> None:
    """Shut the socket of a psycopg connection: whatever waits on it fails at once, without a cancel request."""
    try:
        fd = connection.pgconn.socket
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception:  # noqa: BLE001 - already closed or broken: nothing left to drop
        return


def _abandon(task: asyncio.Future[Any], held: list[Any]) -> None:
    """Give up on a storage call: drop the connection it holds, or cancel it while it has none."""
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    if held:
        for connection in held:
            _drop(connection)
    else:
        task.cancel()  # waiting for the pool or a connect: no query to cancel on the server


# Data-modifying CTEs all run, in one snapshot, as one atomic statement: the
# session is written only if the single-use mark was taken (or there is none),
# and the event says which. One round trip and one commit per sign-in.
_SIGN_IN = text(
    """
WITH mark AS (
    INSERT INTO used_jtis (company_id, jti, expires_at)
    SELECT :company_id, CAST(:jti AS VARCHAR), CAST(:jti_expires_at AS BIGINT)
    WHERE CAST(:jti_expires_at AS BIGINT) IS NOT NULL
    ON CONFLICT (company_id, jti) DO UPDATE SET expires_at = excluded.expires_at
    WHERE used_jtis.expires_at <= :at
    RETURNING 1
),
verdict AS (
    SELECT CAST(:jti_expires_at AS BIGINT) IS NULL OR EXISTS (SELECT 1 FROM mark) AS ok
),
new_session AS (
    INSERT INTO sessions (id_hash, company_id, customer_id, csrf_token, created_at, last_seen_at, expires_at)
    SELECT :id_hash, :company_id, :session_customer_id, :csrf_token, :created_at, :last_seen_at, :expires_at
    FROM verdict WHERE ok
    RETURNING 1
),
new_event AS (
    INSERT INTO sign_in_events (company_id, at, result, reason, customer_id, issuer, kid, jti, ip, user_agent)
    SELECT :company_id, :at,
           CASE WHEN ok THEN :result ELSE 'failure' END,
           CASE WHEN ok THEN :reason ELSE :replayed END,
           :customer_id, :issuer, :kid, :jti, :ip, :user_agent
    FROM verdict
    RETURNING 1
),
key_used AS (
    UPDATE sso_keys SET last_used_at = CAST(:used_at AS BIGINT)
    WHERE CAST(:used_kid AS VARCHAR) IS NOT NULL AND company_id = :company_id AND kid = :used_kid
      AND EXISTS (SELECT 1 FROM verdict WHERE ok)
    RETURNING 1
)
SELECT ok FROM verdict
"""
)


# The same statement in psycopg's own parameter style, for the driver's connection.
_SIGN_IN_DRIVER = re.sub(r"(?<!:):(\w+)", r"%(\1)s", _SIGN_IN.text)
_CUSTOMER_EXISTS = "SELECT 1 FROM customers WHERE company_id = %s AND id = %s"


_SESSION = (
    "SELECT company_id, customer_id, csrf_token, created_at, last_seen_at, expires_at, locale, device, contact_id,"
    " email FROM sessions WHERE id_hash = %s"
)
_TOUCH_SESSION = "UPDATE sessions SET last_seen_at = %s WHERE id_hash = %s"
_END_SESSION = "DELETE FROM sessions WHERE id_hash = %s"
_END_CUSTOMER_SESSIONS = "DELETE FROM sessions WHERE company_id = %s AND customer_id = %s"
_INSERT_EVENT = (
    "INSERT INTO sign_in_events (company_id, at, result, reason, customer_id, issuer, kid, jti, ip, user_agent)"
    " VALUES (%(company_id)s, %(at)s, %(result)s, %(reason)s, %(customer_id)s, %(issuer)s, %(kid)s, %(jti)s,"
    " %(ip)s, %(user_agent)s)"
)


def driver_pool_size(pool_size: int) -> int:
    """The connections (of ``pool_size``) kept for the single statements run on psycopg directly."""
    return pool_size // 2 if pool_size >= 2 else 0


def _conninfo(url: str) -> str:
    return re.sub(r"^postgresql\+psycopg://", "postgresql://", url)


class _DriverPool:
    """psycopg's own pool, for the hot single statements (sign-in, sessions): autocommit, one round trip each.

    SQLAlchemy's async bridge (a greenlet for the checkout and the check-in, its bookkeeping) cost more
    CPU than these statements themselves. Connections are opened as needed, up to ``size``, and kept;
    one idle for over IDLE_CHECK_SECONDS is pinged before use, as the engine's are.
    """

    def __init__(self, url: str, size: int) -> None:
        self._idle_since: dict[int, float] = {}
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            _conninfo(url),
            kwargs={**CONNECT_ARGS, "autocommit": True},
            min_size=0,
            max_size=size,
            open=False,
            check=self._check,
            # A new connection may wait in the pool unused: its idle time starts when it is made.
            configure=self._note_return,
            reset=self._note_return,
            timeout=2,  # as the engine's pool_timeout: a request past the pool waits up to 2 s
            max_lifetime=1800,
            name="billportal-driver",
        )
        self._opening: asyncio.Lock | None = None
        self._open = False

    async def _note_return(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._idle_since[id(conn)] = time.monotonic()

    async def _check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        idle_since = self._idle_since.pop(id(conn), None)
        if idle_since is not None and time.monotonic() - idle_since >= IDLE_CHECK_SECONDS:
            await conn.execute("SELECT 1")  # a failure here: the pool drops it and gives another

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if not self._open:
            self._opening = self._opening or asyncio.Lock()
            async with self._opening:
                if not self._open:
                    await self.pool.open(wait=False)
                    self._open = True
        async with self.pool.connection() as conn:
            yield conn

    def in_use(self) -> int:
        stats = self.pool.get_stats()
        return int(stats.get("pool_size", 0)) - int(stats.get("pool_available", 0))

    async def close(self) -> None:
        if self._open:
            self._open = False
            await self.pool.close(timeout=1)


def _event_values(event: SignInEvent) -> dict[str, Any]:
    return {
        "company_id": event.company_id,
        "at": event.at,
        "result": event.result,
        "reason": event.reason,
        "customer_id": event.customer_id,
        "issuer": event.issuer,
        "kid": event.kid,
        "jti": event.jti,
        "ip": event.ip,
        "user_agent": event.user_agent,
    }


class PostgresBackend:
    """Runs storage functions on PostgreSQL."""

    def __init__(self, url: str, pool_size: int = 20) -> None:
        driver_size = driver_pool_size(pool_size)
        self.engine = engine_for(url, pool_size - driver_size)
        # The same pool without BEGIN/COMMIT round trips: for single statements,
        # which PostgreSQL runs atomically on their own (when there is no pool of the driver's own).
        self.autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._driver = _DriverPool(url, driver_size) if driver_size else None

    async def _call(
        self,
        work: Callable[[Any], Awaitable[Any]],
        *,
        write: bool,
        single: bool = False,
        timeout: float = CALL_TIMEOUT,
    ) -> Any:
        """``work`` within ``timeout``: given psycopg's connection in autocommit if ``single``, else SQLAlchemy's."""
        held: list[Any] = []  # the driver's connection, while the work holds one

        async def run() -> Any:
            try:
                if single and self._driver is not None:
                    async with self._driver.use() as own:
                        held.append(own)
                        return await work(own)
                source = self.autocommit if single else self.engine
                async with source.begin() if write and not single else source.connect() as conn:
                    driver = (await conn.get_raw_connection()).driver_connection
                    held.append(driver)
                    return await work(driver if single else conn)
            finally:
                held.clear()

        task = asyncio.ensure_future(run())
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:
            _abandon(task, held)  # the caller gave up (its own bound, or the client left)
            raise
        doing = "written" if write else "read"
        if not done:
            _abandon(task, held)
            raise_as_storage_error(TimeoutError(f"no answer from the database within {timeout:g} s"), doing)
        try:
            return task.result()
        except (sa_exc.SQLAlchemyError, OSError, TimeoutError) as exc:
            raise_as_storage_error(exc, doing)
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):  # from the driver's own connection (single statements)
                raise_as_storage_error(exc, doing)
            raise

    async def read(self, query: Callable[[Connection], T]) -> T:
        result: T = await self._call(lambda conn: conn.run_sync(query), write=False)
        return result

    async def write(self, change: Callable[[Connection], T]) -> T:
        result: T = await self._call(lambda conn: conn.run_sync(change), write=True)
        return result

    async def _one(
        self, sql: str, params: Any, *, write: bool, timeout: float = CALL_TIMEOUT
    ) -> tuple[Any, ...] | None:
        """The first row of one statement on psycopg's connection, in autocommit (None when it has none)."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> tuple[Any, ...] | None:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchone() if cursor.description is not None else None

        row: tuple[Any, ...] | None = await self._call(work, write=write, single=True, timeout=timeout)
        return row

    async def _count(self, sql: str, params: Any) -> int:
        """The rows one statement changed, on psycopg's connection, in autocommit."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> int:
            return (await conn.execute(sql, params)).rowcount

        changed: int = await self._call(work, write=True, single=True)
        return changed

    # -- the hot path -----------------------------------------------------------------

    # Sign-ins and sessions run their statements on psycopg's own connection, in autocommit:
    # SQLAlchemy's async bridge costs more CPU than the statements themselves.

    async def customer_exists(self, company_id: int, customer_id: int) -> bool:
        return await self._one(_CUSTOMER_EXISTS, (company_id, customer_id), write=False) is not None

    async def sign_in(self, sign_in: NewSignIn) -> bool:
        """The single-use mark, the session, the event and the key's last use: one statement."""
        session, event = sign_in.session, sign_in.event
        kid, key_used_at = sign_in.key_last_used or (None, None)
        params = _event_values(event) | {
            "id_hash": session.id_hash,
            "csrf_token": session.csrf_token,
            "created_at": session.created_at,
            "last_seen_at": session.last_seen_at,
            "expires_at": session.expires_at,
            "session_customer_id": session.customer_id,
            "jti_expires_at": sign_in.jti_expires_at,
            "replayed": Reason.JTI_REPLAYED.value,
            "used_kid": kid,
            "used_at": key_used_at,
        }
        row = await self._one(_SIGN_IN_DRIVER, params, write=True)
        return bool(row and row[0])

    async def record_event(self, event: SignInEvent) -> None:
        await self._count(_INSERT_EVENT, _event_values(event))

    async def session(self, id_hash: bytes) -> Session | None:
        row = await self._one(_SESSION, (id_hash,), write=False)
        return None if row is None else Session(id_hash, *row)

    async def touch_session(self, id_hash: bytes, now: int) -> None:
        await self._count(_TOUCH_SESSION, (now, id_hash))

    async def end_session(self, id_hash: bytes) -> None:
        await self._count(_END_SESSION, (id_hash,))

    async def end_customer_sessions(self, company_id: int, customer_id: int) -> int:
        return await self._count(_END_CUSTOMER_SESSIONS, (company_id, customer_id))

    async def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers (for /readyz)."""
        await self._one("SELECT 1", (), write=False, timeout=PING_TIMEOUT)

    @contextlib.asynccontextmanager
    async def alone(self, key: int) -> AsyncIterator[bool]:
        """Whether this process holds the advisory lock ``key`` (held on its own connection until the block ends)."""
        async with self.engine.connect() as conn:
            held = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
            await conn.commit()
            try:
                yield held
            finally:
                if held:
                    await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    await conn.commit()

    def connections_in_use(self) -> int | None:
        checked_out = getattr(self.engine.pool, "checkedout", None)
        if not callable(checked_out):
            return None
        return int(checked_out()) + (self._driver.in_use() if self._driver is not None else 0)

    def close(self) -> None:
        # Connections are closed by the pool's owner loop; dispose what can be disposed.
        self.engine.sync_engine.dispose(close=False)

    async def aclose(self) -> None:
        # Bounded: a frozen database must not hold up a shutdown.
        with contextlib.suppress(TimeoutError, OSError, psycopg.Error, sa_exc.SQLAlchemyError):
            if self._driver is not None:
                await asyncio.wait_for(self._driver.close(), timeout=2)
            await asyncio.wait_for(self.engine.dispose(), timeout=2)
        self.close()
