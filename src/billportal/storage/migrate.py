"""Database migrations (Alembic), run programmatically: ``billportal db upgrade``.

Migrations are written to run while the previous release still serves
(``tests/unit/storage/test_migrations_online.py`` checks each script): on
PostgreSQL an index on an existing table is built with ``CREATE INDEX
CONCURRENTLY`` (:func:`create_index_online`), which never blocks writes. Only
one process migrates at a time: PostgreSQL's runs hold an advisory lock, and
SQLite's hold the write lock.

On PostgreSQL a migration that alters a table waits at most ``LOCK_TIMEOUT`` for
the table's lock: queued behind a long transaction, it would hold up every query
on the table behind it, and holding one table while waiting for another it
could deadlock with the app. It gives up instead, its transaction rolls back,
and it runs again a moment later. What a migration does after an online index
build (which commits) must therefore be safe to run twice.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_lock key for "a process is migrating this database" ("bpmigrat" in ASCII).
MIGRATION_LOCK = 0x62706D6967726174
LOCK_WAIT_SECONDS = 600.0
# How long a migration waits for a table's lock before it rolls back and tries again.
LOCK_TIMEOUT = "300ms"
# SQLSTATEs of a migration that gave up on a lock: lock_not_available, deadlock_detected.
_LOCK_CONFLICTS = frozenset({"55P03", "40P01"})

log = logging.getLogger("billportal.storage")


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Bring the database on ``connection`` up to ``revision`` (the newest schema by default)."""
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def upgrade_postgres(connection: Connection, revision: str = "head") -> None:
    """Migrate under the migration lock; ``connection`` must not be in a transaction.

    Each migration commits on its own (some build indexes outside any transaction).
    The lock is polled rather than waited on: a session waiting inside
    ``pg_advisory_lock`` holds a snapshot, which a concurrent index build in the
    lock holder would wait for in turn.
    """
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    waiting = False
    while not connection.execute(sa.select(sa.func.pg_try_advisory_lock(MIGRATION_LOCK))).scalar_one():
        connection.commit()
        if not waiting:
            log.warning("another process is migrating this database; waiting for it")
            waiting = True
        if time.monotonic() > deadline:
            raise TimeoutError(f"another process held the migration lock for over {LOCK_WAIT_SECONDS:g} s")
        time.sleep(0.2)
    connection.commit()
    try:
        connection.exec_driver_sql(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        connection.commit()
        _upgrade_retrying_locks(connection, revision, deadline=time.monotonic() + LOCK_WAIT_SECONDS)
    finally:
        connection.rollback()
        connection.exec_driver_sql("RESET lock_timeout")
        connection.execute(sa.select(sa.func.pg_advisory_unlock(MIGRATION_LOCK)))
        connection.commit()


def _upgrade_retrying_locks(connection: Connection, revision: str, deadline: float) -> None:
    """Upgrade; a migration that timed out on a table's lock (or deadlocked) rolled back alone: run on from it."""
    attempt = 0
    while True:
        try:
            upgrade(connection, revision)
        except sa_exc.OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) not in _LOCK_CONFLICTS or time.monotonic() > deadline:
                raise
            connection.rollback()
            attempt += 1
            log.warning(
                "a migration waited over %s for a table in use; trying again (attempt %d)", LOCK_TIMEOUT, attempt
            )
            # Backoff with jitter, so the app's queries (and another such migrator) get through between tries.
            time.sleep(min(0.1 * 2**attempt, 5.0) * (0.5 + random.random() / 2))  # noqa: S311 (not a secret)
        else:
            return


def create_index_online(
    name: str,
    table: str,
    columns: Sequence[str | sa.TextClause],
    *,
    unique: bool = False,
    where: str | None = None,
    using: str | None = None,
) -> None:
    """In a migration: create an index without blocking writes to ``table`` (CONCURRENTLY on PostgreSQL).

    ``columns``: column names, or expressions such as ``sa.text("lower(email)")``; ``using``: PostgreSQL's
    index method ("gin"), for an index that exists on PostgreSQL only.
    """
    from alembic import op

    condition = sa.text(where) if where else None
    if op.get_bind().dialect.name != "postgresql":
        op.create_index(name, table, list(columns), unique=unique, sqlite_where=condition)
        return
    with op.get_context().autocommit_block(), _no_lock_timeout(op.get_bind()):
        # An interrupted concurrent build leaves an invalid index behind: build it again.
        invalid = op.get_bind().execute(
            sa.text(
                "SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid"
                " WHERE relname = :name AND NOT indisvalid"
            ),
            {"name": name},
        )
        if invalid.first() is not None:
            op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
        op.create_index(
            name,
            table,
            list(columns),
            unique=unique,
            postgresql_where=condition,
            postgresql_using=using,
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def drop_index_online(name: str, table: str) -> None:
    """In a migration: drop an index without blocking writes to ``table`` (CONCURRENTLY on PostgreSQL)."""
    from alembic import op

    if op.get_bind().dialect.name != "postgresql":
        op.drop_index(name, table_name=table, if_exists=True)
        return
    with op.get_context().autocommit_block(), _no_lock_timeout(op.get_bind()):
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)


@contextmanager
def _no_lock_timeout(bind: Connection) -> Iterator[None]:
    """Let a concurrent index build wait as long as it needs: it waits for transactions, blocking none."""
    before = bind.exec_driver_sql("SHOW lock_timeout").scalar_one()
    bind.exec_driver_sql("SET lock_timeout = 0")
    try:
        yield
    finally:
        bind.execute(sa.text("SELECT set_config('lock_timeout', :value, false)"), {"value": before})
