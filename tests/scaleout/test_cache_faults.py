"""Redis as a cache that may freeze, forget or race: sign-ins stay fast and correct.

Each test uses the module's private Redis and PostgreSQL servers (never the
machine's shared ones), so that it may freeze them.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import time
from collections.abc import Iterator

import pytest

from tests.conftest import new_postgres_database
from tests.scaleout.conftest import Fleet, PrivatePostgres, PrivateRedis, start_fleet


@pytest.fixture
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> Iterator[Fleet]:
    redis_server.flush()
    database = new_postgres_database(postgres.url)
    fleet = start_fleet(tmp_path_factory.mktemp("cache-faults"), database, redis_server.url, 1)
    yield fleet
    for app in fleet.apps:
        app.stop()


class Frozen:
    """Redis stopped by SIGSTOP: it accepts connections and never answers."""

    def __init__(self, server: PrivateRedis) -> None:
        assert server.process is not None
        self.pid = server.process.pid

    def __enter__(self) -> Frozen:
        os.kill(self.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc: object) -> None:
        os.kill(self.pid, signal.SIGCONT)


def test_a_frozen_redis_keeps_sign_ins_fast_and_readyz_says_degraded(fleet: Fleet, redis_server: PrivateRedis) -> None:
    app = fleet.apps[0]
    readyz = f"http://127.0.0.1:{app.port}/readyz"
    assert app.get(f"/login/{fleet.token()}").status_code == 303
    assert app.client.get(readyz).json()["status"] == "ok"

    with Frozen(redis_server):
        took: list[float] = []
        deadline = time.monotonic() + 5  # several lifetimes of the one-second company cache
        while time.monotonic() < deadline:
            started = time.monotonic()
            assert app.get(f"/login/{fleet.token()}").status_code == 303
            took.append(time.monotonic() - started)
            time.sleep(0.05)
        started = time.monotonic()
        ready = app.client.get(readyz)
        readyz_took = time.monotonic() - started

    median = statistics.median(took)
    measured = f"{len(took)} sign-ins, median {median * 1000:.0f} ms, slowest {max(took) * 1000:.0f} ms"
    if os.environ.get("BILLPORTAL_TEST_SHOW_TIMES"):
        sys.stderr.write(f"frozen Redis: {measured}\n")
    assert median < 0.3, measured
    assert max(took) < 2.0, measured
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["ready"] is True
    assert body["status"] == "degraded"
    assert body["checks"]["redis"] is False
    assert "redis" in body["reasons"]
    assert readyz_took < 1.5

    # Thawed, Redis is used again once the breaker lets a call through.
    deadline = time.monotonic() + 15
    while app.client.get(readyz).json()["status"] != "ok":
        assert time.monotonic() < deadline, "Redis never came back"
        time.sleep(0.2)
    assert app.get(f"/login/{fleet.token(jti='after-the-thaw')}").status_code == 303
