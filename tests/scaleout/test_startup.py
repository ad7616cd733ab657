"""Starting on PostgreSQL: a database down or misnamed is one clear line; a restart leaves no stale connections."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.browser.conftest import free_port
from tests.conftest import MASTER_KEY, new_postgres_database
from tests.scaleout.conftest import Fleet, PrivatePostgres, PrivateRedis, start_fleet


def _billportal(tmp: Path, database_url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("BILLPORTAL_REDIS_URL", None)
    env.update(
        {
            "BILLPORTAL_DATA_DIR": str(tmp),
            "BILLPORTAL_MASTER_KEY": base64.urlsafe_b64encode(MASTER_KEY).decode(),
            "BILLPORTAL_DATABASE_URL": database_url,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "billportal", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " INFO " not in line]


def test_serve_with_workers_exits_cleanly_when_the_database_is_down(tmp_path: Path) -> None:
    down = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/billportal"
    started = time.monotonic()
    result = _billportal(tmp_path, down, "serve", "--port", str(free_port()), "--workers", "2", timeout=30)
    assert time.monotonic() - started < 20
    assert result.returncode == 2
    errors = _error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("billportal: error: the database could not be reached")
    assert "Traceback" not in result.stderr
    assert "died" not in result.stderr


def test_a_wrong_user_and_a_wrong_database_name_are_told_apart(tmp_path: Path, postgres: PrivatePostgres) -> None:
    server = f"postgresql+psycopg://{{user}}@127.0.0.1:{postgres.port}/{{name}}"
    wrong_user = _billportal(tmp_path, server.format(user="nosuchuser", name="postgres"), "db", "upgrade")
    wrong_name = _billportal(tmp_path, server.format(user="postgres", name="nosuchdb"), "db", "upgrade")
    for result in (wrong_user, wrong_name):
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1, result.stderr
    assert "refused the user or password" in wrong_user.stderr
    assert "does not exist on that server" in wrong_name.stderr
    assert "refused the user" not in wrong_name.stderr


@pytest.fixture
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> Iterator[Fleet]:
    fleet = start_fleet(tmp_path_factory.mktemp("startup"), new_postgres_database(postgres.url), redis_server.url, 1)
    yield fleet
    for app in fleet.apps:
        app.stop()


def test_after_a_database_restart_idle_pooled_connections_give_no_503(fleet: Fleet, postgres: PrivatePostgres) -> None:
    app = fleet.apps[0]
    with ThreadPoolExecutor(8) as pool:
        cookies = list(pool.map(lambda _: app.get(f"/login/{fleet.token()}").cookies["__Host-bp_session"], range(16)))
    postgres.stop()
    postgres.start()
    time.sleep(6)  # the pool's connections sit idle, each broken by the restart
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda cookie: app.get("/invoices", cookie=cookie).status_code, cookies))
        statuses += list(pool.map(lambda _: app.get(f"/login/{fleet.token()}").status_code, range(8)))
    assert set(statuses) <= {200, 303}, statuses
