"""The embedded backend: one SQLite connection in WAL mode, used from the event loop.

Why one connection, used inline: a SQLite statement on an indexed key takes
microseconds, less than a thread hop would cost, and a single connection on a
single thread can never meet "cannot start a transaction within a transaction".
SQLAlchemy runs the ordinary queries over that connection; the sign-in path
uses prepared SQL on it directly (see :class:`WriteQueue`).

Durability: every write is committed before the request that asked for it is
answered. With ``synchronous=NORMAL`` in WAL mode a commit survives the
process being killed (not a power cut between checkpoints; see docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import StaticPool

from billportal.core.errors import DatabaseDamaged, StorageUnavailable
from billportal.sso.reasons import Reason
from billportal.storage.failures import raise_as_storage_error
from billportal.storage.records import NewSignIn, Session, SignInEvent
from billportal.storage.sqlite_files import RESTORE_HINT, WriterLock, check_integrity, hold_open

T = TypeVar("T")
log = logging.getLogger("billportal.storage")

_VERSIONS = Path(__file__).parent / "migrations" / "versions"
# Bytes of the write-ahead log kept once it starts over: above what steady writes add between two
# restarts (RESTART_BYTES, and a second's writes: some 80 MB at 4,000 sign-ins/s), so that under load
# the file is reused in place rather than cut back and grown again each time.
WAL_SIZE_LIMIT = 512 * 1024 * 1024
# Past this many bytes of log, the checkpointer makes the log start over (see Checkpointer). Writers
# wait for that (two file syncs, 2-20 ms on a busy disk), so it is rare: at 2,000 sign-ins/s the log
# grows by 40 MB a second, and a restart at 16 MiB (every second) put the p99 at 14.0 and 14.2 ms,
# against 6.3 and 6.9 ms at 256 MiB (every six seconds; alternating runs).
RESTART_BYTES = 256 * 1024 * 1024
RETRY_SECONDS = 0.001  # a group commit that finds the write turn taken tries again after this
# A group commit starts at most this long after the one before: under load, the writes of a few
# turns of the event loop share one COMMIT. A commit writes each page it changed whole to the log,
# so one per sign-in wrote 6-7 pages (27 KB) each at 1,800 sign-ins/s; at 2,000/s the window cut the
# server's CPU per sign-in by 8% and its p99.9 from 71 to 47 ms. A quiet server commits at once.
COMMIT_WINDOW = 0.002

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-16384",
    # Checkpoints run on a thread of their own (Checkpointer), never inside a
    # COMMIT on the event loop, where they stalled every request behind them.
    "PRAGMA wal_autocheckpoint=0",
)


def connect(path: Path, *, wal_size_limit: int = WAL_SIZE_LIMIT) -> sqlite3.Connection:
    """Open the database file with the pragmas billportal relies on; only its owner may read it (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _owner_only(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, cached_statements=256)
    for pragma in _PRAGMAS:
        conn.execute(pragma)
    # Once a checkpoint has copied the WAL back, the next write starts it over and
    # truncates the file to this size: a burst leaves no larger WAL behind.
    conn.execute(f"PRAGMA journal_size_limit={int(wal_size_limit)}")
    return conn


def _owner_only(path: Path) -> None:
    """Create the database file 0600, and tighten an older one (and its -wal, -shm) to 0600.

    SQLite creates the -wal and -shm files with the database file's mode, so they follow.
    """
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)


def newest_revision() -> str:
    """The newest migration's revision: each file under migrations/versions is named ``{revision}_*.py``."""
    return max(path.name.split("_", 1)[0] for path in _VERSIONS.glob("[0-9]*_*.py"))


class _Locking:
    """Which kind of transaction the next ``BEGIN`` opens (all on one thread)."""

    immediate = False


def engine_for(conn: sqlite3.Connection, locking: _Locking) -> Engine:
    """A SQLAlchemy engine over that very connection."""
    # hide_parameters: an error's text never carries the values of a statement.
    engine = create_engine("sqlite://", creator=lambda: conn, poolclass=StaticPool, hide_parameters=True)

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # A write takes the lock up front: a deferred transaction that later
        # writes can fail with SQLITE_BUSY when another process wrote in between.
        # A read takes a snapshot and no lock, so other processes may still write.
        # On the raw connection: SQLAlchemy's execution path would cost more than the BEGIN itself.
        # A read's prebuilt statement may have begun it already (storage.prebuilt): this joins it.
        del connection
        if not conn.in_transaction:
            conn.execute("BEGIN IMMEDIATE" if locking.immediate else "BEGIN")

    return engine


_Write = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]  # a write and who awaits its commit


class WriteQueue:
    """Group commit: writes asked for in one turn of the event loop share one transaction.

    Each write is a function of the raw connection. Its caller awaits the commit,
    so nothing is answered before it is durable; under load, dozens of sign-ins
    share a single ``COMMIT``, and commits are at least :data:`COMMIT_WINDOW` apart.
    """

    def __init__(self, conn: sqlite3.Connection, turns: WriterLock) -> None:
        self._conn = conn
        self._turns = turns
        self._pending: list[_Write] = []
        self._scheduled = False
        self._committed_at = -COMMIT_WINDOW  # when the last commit started (time.monotonic())

    def submit(self, write: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((write, future))
        if not self._scheduled:
            self._scheduled = True
            wait = self._committed_at + COMMIT_WINDOW - time.monotonic()
            if wait > 0:
                loop.call_later(wait, self._flush)
            else:
                loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        try:
            taken = self._turns.acquire_now()
        except OSError as exc:  # the lock file itself failed: every waiter hears why, none hangs
            for _, future in self._take():
                if not future.done():
                    future.set_exception(_storage_error(exc, "written"))
            return
        if not taken:
            # Another writer has the turn: another worker's commit (well under a millisecond) or the
            # checkpointer starting the log over (a few milliseconds: it syncs the files). Waiting here
            # would stop every request of this process; the event loop serves the others meanwhile, and
            # what is submitted in between joins this commit.
            asyncio.get_running_loop().call_later(RETRY_SECONDS, self._flush)
            return
        try:
            self._committed_at = time.monotonic()
            self._commit_batch(self._take())
        finally:
            self._turns.release()

    def _take(self) -> list[_Write]:
        batch, self._pending = self._pending, []
        self._scheduled = False
        return batch

    def _commit_batch(self, batch: list[_Write]) -> None:
        try:
            results = self._commit([write for write, _ in batch])
        except Exception:  # noqa: BLE001 - each waiter hears of its own failure below
            # One write failed, or the commit did: try each on its own, so that a
            # write that fails for its own reason does not take the others with it,
            # and each waiter gets the cause of its own failure.
            for write, future in batch:
                try:
                    result = self._commit([write])[0]
                except Exception as exc:  # noqa: BLE001 - handed to the request that asked for the write
                    if not future.done():
                        future.set_exception(_storage_error(exc, "written"))
                else:
                    if not future.done():
                        future.set_result(result)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    def _commit(self, writes: list[Callable[[sqlite3.Connection], Any]]) -> list[Any]:
        """Run the writes in one transaction (the caller has the write turn); the results, once committed."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            results = [write(conn) for write in writes]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return results


def _storage_error(error: Exception, doing: str) -> Exception:
    """The error a caller should see: StorageUnavailable for an unavailable database, else the error itself."""
    try:
        raise_as_storage_error(error, doing)
    except Exception as translated:  # noqa: BLE001 - the translation is the result
        return translated


class Checkpointer:
    """Copies the WAL back into the database every second, on its own thread and connection.

    A passive checkpoint never blocks writers or readers. But under steady writes the
    log never gets to start over by itself: a writer restarts it only if, when it
    begins, every frame has been copied back, and commits arrive faster than a
    checkpoint (which syncs two files) ends. The log then grew by some 40 MB a second
    under sign-ins (1.9 GB after a minute), and every commit extended the file. So once
    a checkpoint leaves more than ``restart_bytes`` of log, the checkpointer takes
    the write turn (after a second passive pass) and checkpoints again, now with no writer
    between: that copies only what came in meanwhile, and the next write starts the log from its beginning,
    reusing the file in place. A reader still on the old log (a backup) makes it give
    up at once and try at the next turn.
    """

    def __init__(
        self,
        path: Path,
        interval: float = 1.0,
        *,
        restart_bytes: int = RESTART_BYTES,
        wal_size_limit: int = WAL_SIZE_LIMIT,
    ) -> None:
        self.path = path
        self.interval = interval
        self.restart_bytes = restart_bytes
        self.wal_size_limit = wal_size_limit
        self._turns = WriterLock(path)  # its own open file: it excludes this process's writers too
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        try:
            conn.execute("PRAGMA busy_timeout=0")  # never wait holding the write turn
            conn.execute(f"PRAGMA journal_size_limit={int(self.wal_size_limit)}")
            page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
            while not self._stop.wait(self.interval):
                try:
                    self._checkpoint(conn, page_size)
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint failed (%s); will retry", type(exc).__name__)
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()
            self._turns.close()

    def _checkpoint(self, conn: sqlite3.Connection, page_size: int) -> None:
        """One turn: a passive checkpoint, then, if the log is long, one that starts it over."""
        _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames * page_size > self.restart_bytes:
            # What came in during that pass (some 40 ms of writes) is copied back before the turn is
            # taken, so that writers wait only for the last few milliseconds' pages and a sync: the
            # turn's median fell from 13.7 to 9.6 ms at 1,800 sign-ins/s.
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            with self._turns.held():
                conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class SQLiteBackend:
    """Runs storage functions on the embedded database."""

    def __init__(self, path: Path, *, wal_size_limit: int = WAL_SIZE_LIMIT, restart_bytes: int = RESTART_BYTES) -> None:
        self.path = path
        self._open = hold_open(path)  # a restore refuses while this is held
        try:
            self.conn = connect(path, wal_size_limit=wal_size_limit)
            # A damaged file (a backup copied over a live -wal, a failing disk) is
            # refused here, not discovered request by request.
            check_integrity(self.conn, path)
        except sqlite3.DatabaseError as exc:
            self._open.close()
            raise DatabaseDamaged(f"{path} is not a readable SQLite database ({exc}); {RESTORE_HINT}") from None
        except BaseException:
            self._open.close()
            raise
        self._locking = _Locking()
        self.engine = engine_for(self.conn, self._locking)
        self._reader: Connection | None = None
        self._turns = WriterLock(path)
        self.writes = WriteQueue(self.conn, self._turns)
        self.checkpointer = Checkpointer(path, restart_bytes=restart_bytes, wal_size_limit=wal_size_limit)

    def migrate(self) -> None:
        """Bring the schema up to date (Alembic), holding the write lock."""
        if self._revision() == newest_revision():
            return  # Alembic (about 10 MB) is imported only when there is something to do
        from billportal.storage.migrate import upgrade

        self._locking.immediate = True
        with self.engine.begin() as connection:
            upgrade(connection)

    def _revision(self) -> str | None:
        try:
            with self.engine.connect() as connection:
                return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except sa_exc.OperationalError:
            return None  # a new database

    async def read(self, query: Callable[[Connection], T]) -> T:
        self._locking.immediate = False
        # One SQLAlchemy connection serves every read: a read runs to its end without yielding to
        # the event loop (as a write does), so no two ever share it, and each ends its transaction.
        # Checking a connection out of the pool and back in for each read cost more than most reads.
        reader = self._reader
        if reader is None:
            reader = self._reader = self.engine.connect()
        try:
            try:
                return query(reader)
            finally:
                if reader.in_transaction():
                    reader.rollback()
                elif self.conn.in_transaction:  # begun by prebuilt statements only
                    self.conn.rollback()
        except (sqlite3.Error, sa_exc.DBAPIError) as exc:
            self._reader = None
            with contextlib.suppress(sqlite3.Error, sa_exc.DBAPIError):
                reader.close()
            raise_as_storage_error(exc, "read")

    async def write(self, change: Callable[[Connection], T]) -> T:
        self._locking.immediate = True
        try:
            with self._turns.held(), self.engine.begin() as connection:
                return change(connection)
        except (sqlite3.Error, sa_exc.DBAPIError) as exc:
            raise_as_storage_error(exc, "written")

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        self.checkpointer.stop()
        if self._reader is not None:
            self._reader.close()
        self.engine.dispose()
        self.conn.close()
        self._turns.close()
        self._open.close()

    # -- the sign-in path: prepared SQL on the raw connection ---------------------

    async def customer_exists(self, company_id: int, customer_id: int) -> bool:
        try:
            row = self.conn.execute(_CUSTOMER_EXISTS, (company_id, customer_id)).fetchone()
        except sqlite3.Error as exc:
            raise_as_storage_error(exc, "read")
        return row is not None

    async def sign_in(self, sign_in: NewSignIn) -> bool:
        return await self.writes.submit(lambda conn: _write_sign_in(conn, sign_in))

    async def record_event(self, event: SignInEvent) -> None:
        await self.writes.submit(lambda conn: _insert_event(conn, event))

    async def session(self, id_hash: bytes) -> Session | None:
        try:
            row = self.conn.execute(_SESSION, (id_hash,)).fetchone()
        except sqlite3.Error as exc:
            raise_as_storage_error(exc, "read")
        return None if row is None else Session(id_hash, *row)

    async def touch_session(self, id_hash: bytes, now: int) -> None:
        await self.writes.submit(lambda conn: conn.execute(_TOUCH_SESSION, (now, id_hash)))

    async def end_session(self, id_hash: bytes) -> None:
        await self.writes.submit(lambda conn: conn.execute(_END_SESSION, (id_hash,)))

    async def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers (for /readyz)."""
        try:
            self.conn.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StorageUnavailable("the database could not be read") from exc  # whatever it is: not ready

    @contextlib.asynccontextmanager
    async def alone(self, key: int) -> AsyncIterator[bool]:
        """One process writes an embedded database: the work's own unique rows keep it single."""
        del key
        yield True

    def connections_in_use(self) -> int | None:
        return None  # one connection, no pool

    async def end_customer_sessions(self, company_id: int, customer_id: int) -> int:
        cursor = await self.writes.submit(lambda conn: conn.execute(_END_CUSTOMER_SESSIONS, (company_id, customer_id)))
        return int(cursor.rowcount)


_CUSTOMER_EXISTS = "SELECT 1 FROM customers WHERE company_id = ? AND id = ?"
_SESSION = (
    "SELECT company_id, customer_id, csrf_token, created_at, last_seen_at, expires_at, locale, device, contact_id,"
    " email FROM sessions WHERE id_hash = ?"
)
_TOUCH_SESSION = "UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?"
_END_SESSION = "DELETE FROM sessions WHERE id_hash = ?"
_END_CUSTOMER_SESSIONS = "DELETE FROM sessions WHERE company_id = ? AND customer_id = ?"
_INSERT_SESSION = (
    "INSERT INTO sessions"
    " (id_hash, company_id, customer_id, csrf_token, created_at, last_seen_at, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = (
    "INSERT INTO sign_in_events (company_id, at, result, reason, customer_id, issuer, kid, jti, ip, user_agent)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A mark whose link has expired may be taken again; a live one may not.
_MARK_JTI = (
    "INSERT INTO used_jtis (company_id, jti, expires_at) VALUES (?, ?, ?)"
    " ON CONFLICT (company_id, jti) DO UPDATE SET expires_at = excluded.expires_at"
    " WHERE used_jtis.expires_at <= ?"
)
_KEY_USED = "UPDATE sso_keys SET last_used_at = ? WHERE company_id = ? AND kid = ?"


def _insert_event(conn: sqlite3.Connection, event: SignInEvent) -> None:
    conn.execute(
        _INSERT_EVENT,
        (
            event.company_id,
            event.at,
            event.result,
            event.reason,
            event.customer_id,
            event.issuer,
            event.kid,
            event.jti,
            event.ip,
            event.user_agent,
        ),
    )


def _write_sign_in(conn: sqlite3.Connection, sign_in: NewSignIn) -> bool:
    session, event = sign_in.session, sign_in.event
    if sign_in.jti_expires_at is not None:
        marked = conn.execute(_MARK_JTI, (event.company_id, event.jti, sign_in.jti_expires_at, event.at))
        if marked.rowcount == 0:
            _insert_event(conn, replace(event, result="failure", reason=Reason.JTI_REPLAYED.value))
            return False
    conn.execute(
        _INSERT_SESSION,
        (
            session.id_hash,
            session.company_id,
            session.customer_id,
            session.csrf_token,
            session.created_at,
            session.last_seen_at,
            session.expires_at,
        ),
    )
    _insert_event(conn, event)
    if sign_in.key_last_used is not None:
        kid, now = sign_in.key_last_used
        conn.execute(_KEY_USED, (now, event.company_id, kid))
    return True
