"""A missing or wrong master key: refused at start, reported by /readyz, one line from every command.

Outside SQLite the master key is never generated (a key written on one host
would seal SSO keys that the fleet's other hosts cannot open). A process whose
master key opens none of the stored SSO keys starts, but /readyz answers 503
with the reason, and sign-ins answer 503, never 500.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import free_port
from tests.conftest import new_postgres_database
from tests.scaleout.conftest import Fleet, PrivatePostgres, PrivateRedis, start_fleet
from tests.server_process import App

OTHER_MASTER_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()


@pytest.fixture
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> Iterator[Fleet]:
    redis_server.flush()
    database = new_postgres_database(postgres.url)
    fleet = start_fleet(tmp_path_factory.mktemp("master-key"), database, redis_server.url, 0)
    yield fleet
    for app in fleet.apps:
        app.stop()


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "billportal", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("billportal: error: "), lines[0]
    return lines[0]


def test_serve_without_a_master_key_outside_sqlite_refuses_to_start(fleet: Fleet, tmp_path: Path) -> None:
    env = {k: v for k, v in fleet.env.items() if k != "BILLPORTAL_MASTER_KEY"}
    env["BILLPORTAL_DATA_DIR"] = str(tmp_path)
    for command in (("serve", "--port", str(free_port())), ("sso-key", "list", "--tenant", "acme")):
        line = _one_line_error(_run(env, *command))
        assert "BILLPORTAL_MASTER_KEY must be set" in line
    assert not (tmp_path / "master.key").exists()


def test_a_wrong_master_key_fails_readiness_and_sign_ins_answer_503(fleet: Fleet, tmp_path: Path) -> None:
    env = dict(fleet.env, BILLPORTAL_MASTER_KEY=OTHER_MASTER_KEY)
    app = App(free_port(), env, tmp_path / "wrong-key.log")
    app.start()
    try:
        ready = app.client.get(f"http://127.0.0.1:{app.port}/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["ready"] is False
        assert body["checks"]["master_key"] is False
        assert "master key" in body["reasons"]["master_key"]
        for _ in range(3):
            assert app.get(f"/login/{fleet.token()}").status_code == 503
    finally:
        app.stop()
    log = app.log.read_text()
    assert "opens none of the 1 stored SSO keys" in log
    assert "Traceback" not in log
    assert fleet.sso_key not in log


def test_a_right_master_key_is_ready(fleet: Fleet, tmp_path: Path) -> None:
    app = App(free_port(), fleet.env, tmp_path / "right-key.log")
    app.start()
    try:
        ready = app.client.get(f"http://127.0.0.1:{app.port}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["master_key"] is True
        assert app.get(f"/login/{fleet.token()}").status_code == 303
    finally:
        app.stop()


@pytest.mark.parametrize(
    "command",
    [
        ("sso-url", "--tenant", "acme", "--customer", "1234"),
        ("sso-key", "rotate", "--tenant", "acme"),
        ("sso-key", "list", "--tenant", "acme"),
        ("sso-explain", "x.y.z", "--tenant", "acme"),
        ("master-key", "reencrypt"),
    ],
)
def test_every_command_turns_a_wrong_master_key_into_one_line(fleet: Fleet, command: tuple[str, ...]) -> None:
    env = dict(fleet.env, BILLPORTAL_MASTER_KEY=OTHER_MASTER_KEY)
    env.pop("BILLPORTAL_DEBUG", None)
    line = _one_line_error(_run(env, *command))
    assert "master key" in line
    assert fleet.sso_key not in line
