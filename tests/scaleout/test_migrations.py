"""``db upgrade`` on PostgreSQL: online under sign-in load, and safe when two processes run it at once."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from billportal.core.config import Settings
from billportal.storage import open_store
from billportal.storage.migrate import alembic_config
from billportal.storage.store import Store
from tests.browser.conftest import free_port
from tests.conftest import MASTER_KEY, new_postgres_database
from tests.scaleout.conftest import Fleet, PrivatePostgres, PrivateRedis, start_fleet
from tests.server_process import App

# Built by migrations 0002 and 0023 on the biggest table, while sign-ins write to it.
ONLINE_INDEXES = (
    "ix_sign_in_events_customer",
    "ix_sign_in_events_failures",
    "ix_sign_in_events_failure_reason",
)


def _env(tmp: Path, database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "BILLPORTAL_DATA_DIR": str(tmp),
            "BILLPORTAL_MASTER_KEY": base64.urlsafe_b64encode(MASTER_KEY).decode(),
            "BILLPORTAL_DATABASE_URL": database_url,
            "BILLPORTAL_ACCESS_LOG": "0",
        }
    )
    env.pop("BILLPORTAL_REDIS_URL", None)
    return env


def _upgrade(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "billportal", "db", "upgrade"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _wait_for_index_build_to_wait(url: str) -> None:
    """Until the upgrade's CREATE INDEX waits for the writer's transaction."""
    deadline = time.monotonic() + 60
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        while not conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE query ILIKE '%CREATE INDEX%' AND wait_event_type = 'Lock'"
        ).fetchone():
            assert time.monotonic() < deadline, "the upgrade never reached its index build"
            time.sleep(0.05)


def _share_a_fresh_copy(env: dict[str, str]) -> None:
    """Share a copy of acme's settings good for COMPANY_TTL seconds from now.

    On the first release's schema the app reads its company only from this copy (its queries name
    today's columns), so the copy must outlive the downgrade, the upgrade's start and the load.
    """

    async def refresh(store: Store) -> None:
        assert store.company_cache is not None
        await store.company_cache.drop("acme", 0)
        store.forget_company("acme")
        assert await store.company("acme") is not None

    store = open_store(Settings.from_env(env), migrate=False)
    try:
        asyncio.run(refresh(store))
    finally:
        store.close()


def _serving_on_schema(fleet: Fleet, revision: str) -> App:
    """The database taken back to ``revision`` while the fleet's app still serves (and signs people in)."""
    from alembic import command

    _share_a_fresh_copy(fleet.env)
    engine = create_engine(fleet.env["BILLPORTAL_DATABASE_URL"])
    for attempt in range(5):
        try:
            with engine.begin() as connection:
                config = alembic_config()
                config.attributes["connection"] = connection
                command.downgrade(config, revision)
            break
        except OperationalError as exc:
            # The serving app's mail and webhook workers hold a table the downgrade drops while they
            # reach for one it already altered: PostgreSQL ends the cycle by failing the downgrade.
            if not isinstance(exc.orig, psycopg.errors.DeadlockDetected) or attempt == 4:
                raise
            time.sleep(0.2)
    engine.dispose()
    app = fleet.apps[0]
    assert app.get(f"/login/{fleet.token()}").status_code == 303
    return app


@pytest.fixture
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> Iterator[Fleet]:
    fleet = start_fleet(tmp_path_factory.mktemp("migrations"), new_postgres_database(postgres.url), redis_server.url, 1)
    yield fleet
    for app in fleet.apps:
        app.stop()


def test_an_upgrade_under_sign_in_load_never_blocks_sign_ins(fleet: Fleet) -> None:
    """While a long transaction writes to sign_in_events, 0002's index builds wait for it; sign-ins do not."""
    url = fleet.env["BILLPORTAL_DATABASE_URL"]
    app = _serving_on_schema(fleet, "0001")  # the first release's schema

    # A writer in a long transaction: a plain CREATE INDEX would queue behind it, and every
    # sign-in's insert behind the CREATE INDEX.
    with psycopg.connect(_plain(url)) as writer:
        writer.execute("LOCK TABLE sign_in_events IN ROW EXCLUSIVE MODE")
        upgrade = _upgrade(fleet.env)
        _wait_for_index_build_to_wait(url)
        slowest, statuses = 0.0, []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            started = time.monotonic()
            statuses.append(app.get(f"/login/{fleet.token()}").status_code)
            slowest = max(slowest, time.monotonic() - started)
        writer.rollback()
        _, stderr = upgrade.communicate(timeout=60)

    assert upgrade.returncode == 0, stderr
    assert set(statuses) == {303}, statuses
    assert slowest < 1.0
    with psycopg.connect(_plain(url)) as conn:
        valid: dict[str, bool] = dict(
            conn.execute(
                "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname = ANY(%s)",
                [list(ONLINE_INDEXES)],
            ).fetchall()
        )
    assert valid == dict.fromkeys(ONLINE_INDEXES, True)


def test_an_upgrade_that_alters_tables_in_use_gives_way_to_sign_ins(fleet: Fleet) -> None:
    """0020 alters sessions, customers, then companies: behind a long reader of companies it must not
    hold the other two (every sign-in writes a session) nor deadlock with the reader's next query."""
    url = fleet.env["BILLPORTAL_DATABASE_URL"]
    app = _serving_on_schema(fleet, "0019")

    with psycopg.connect(_plain(url)) as reader:
        reader.execute("SELECT 1 FROM companies LIMIT 1")  # a long transaction holding companies
        upgrade = _upgrade(fleet.env)
        slowest, statuses = 0.0, []
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            started = time.monotonic()
            statuses.append(app.get(f"/login/{fleet.token()}").status_code)
            slowest = max(slowest, time.monotonic() - started)
        # The reader reaches for a table the migration altered first: a lock cycle, were the
        # migration still holding it while it waits for companies.
        started = time.monotonic()
        reader.execute("SELECT 1 FROM customers LIMIT 1")
        reader_waited = time.monotonic() - started
        reader.commit()
        _, stderr = upgrade.communicate(timeout=60)

    assert upgrade.returncode == 0, stderr
    assert "trying again" in stderr  # it did meet the reader's lock
    assert set(statuses) == {303}, statuses
    assert slowest < 1.0, slowest
    assert reader_waited < 1.0, reader_waited
    with psycopg.connect(_plain(url)) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() is not None
        columns = conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE column_name IN ('locale', 'default_locale')"
        ).fetchone()
        assert columns == (3,)


def test_two_upgrades_at_once_both_succeed(tmp_path: Path, postgres: PrivatePostgres) -> None:
    for trial in range(3):
        env = _env(tmp_path, new_postgres_database(postgres.url))
        runs = [_upgrade(env), _upgrade(env)]
        results = [(run.wait(timeout=120), run.communicate()[1]) for run in runs]
        assert [status for status, _ in results] == [0, 0], (trial, results)


def test_two_workers_on_a_fresh_database_both_start(tmp_path: Path, postgres: PrivatePostgres) -> None:
    app = App(free_port(), _env(tmp_path, new_postgres_database(postgres.url)), tmp_path / "app.log", workers=2)
    app.start()
    try:
        time.sleep(3)  # a worker that crashed while migrating would have been replaced by now, and logged
        assert app.process is not None
        children = Path(f"/proc/{app.process.pid}/task/{app.process.pid}/children").read_text().split()
        assert len(children) >= 2  # the workers (and multiprocessing's helper)
        ready = app.client.get(f"http://127.0.0.1:{app.port}/readyz")
        assert ready.status_code == 200
    finally:
        app.stop()
    log = app.log.read_text(errors="replace")
    assert "Traceback" not in log, log
    assert "died" not in log, log  # uvicorn's supervisor replaces a worker that exited
