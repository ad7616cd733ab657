"""Redis as a cache that may freeze, forget or race: sign-ins stay fast and correct.

Each test uses the module's private Redis and PostgreSQL servers (never the
machine's shared ones), so that it may freeze them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest

from billportal.storage.cache import CompanyCache, RedisClients
from billportal.storage.records import CompanyRows
from tests.browser.conftest import free_port
from tests.conftest import new_postgres_database
from tests.scaleout.conftest import REDIS_CLI, Fleet, PrivatePostgres, PrivateRedis, start_fleet
from tests.server_process import App


@pytest.fixture
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> Iterator[Fleet]:
    redis_server.flush()
    database = new_postgres_database(postgres.url)
    fleet = start_fleet(
        tmp_path_factory.mktemp("cache-faults"),
        database,
        redis_server.url,
        1,
        extra={"BILLPORTAL_TRUSTED_PROXIES": "127.0.0.1"},  # so that each test client has its own address
    )
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


def _sign_ins_for(fleet: Fleet, *, seconds: float, clients: int) -> list[tuple[int, float]]:
    """Sign-ins by ``clients`` concurrent clients for ``seconds``: (status, seconds taken) of each."""
    app = fleet.apps[0]
    deadline = time.monotonic() + seconds

    def client() -> list[tuple[int, float]]:
        answers = []
        with httpx.Client(timeout=15) as http:
            while time.monotonic() < deadline:
                started = time.monotonic()
                answer = http.get(
                    f"http://127.0.0.1:{app.port}/login/{fleet.token()}", headers={"host": f"acme.localhost:{app.port}"}
                )
                answers.append((answer.status_code, time.monotonic() - started))
                time.sleep(0.02)
        return answers

    with ThreadPoolExecutor(clients) as pool:
        return [answer for answers in pool.map(lambda _: client(), range(clients)) for answer in answers]


def test_a_frozen_redis_keeps_sign_ins_fast_and_readyz_says_degraded(fleet: Fleet, redis_server: PrivateRedis) -> None:
    app = fleet.apps[0]
    readyz = f"http://127.0.0.1:{app.port}/readyz"
    assert app.get(f"/login/{fleet.token()}").status_code == 303
    assert app.client.get(readyz).status_code == 200

    with Frozen(redis_server):
        took = _sign_ins_for(fleet, seconds=5, clients=6)  # several lifetimes of the one-second company cache
        # A single-use link signs in once, and only once: its mark is the database's, not Redis's.
        single_use = fleet.token(jti="while-redis-is-frozen")
        assert app.get(f"/login/{single_use}").status_code == 303
        assert fleet.apps[-1].get(f"/login/{single_use}").status_code == 401
        started = time.monotonic()
        ready = app.client.get(readyz)
        readyz_took = time.monotonic() - started

    times = [seconds for _, seconds in took]
    median = statistics.median(times)
    measured = f"{len(took)} sign-ins, median {median * 1000:.0f} ms, slowest {max(times) * 1000:.0f} ms"
    if os.environ.get("BILLPORTAL_TEST_SHOW_TIMES"):
        sys.stderr.write(f"frozen Redis: {measured}\n")
    assert all(status == 303 for status, _ in took), measured
    assert median < 0.3, measured
    assert max(times) < 2.0, measured
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


def test_a_single_use_link_refused_with_503_still_signs_in_on_retry(fleet: Fleet) -> None:
    app = fleet.apps[0]
    token = fleet.token(jti="retried-after-a-503")
    database = fleet.env["BILLPORTAL_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(database) as blocker:
        # The sign-in's write waits on this lock until its lock timeout: a 503, nothing written.
        blocker.execute("LOCK TABLE used_jtis IN ACCESS EXCLUSIVE MODE")
        assert app.get(f"/login/{token}").status_code == 503
        blocker.rollback()
    answer = app.get(f"/login/{token}")
    assert answer.status_code == 303, answer.headers.get("location")
    # Still single-use: the database's mark refuses it now.
    assert app.get(f"/login/{token}").status_code == 401


def _signed(key: str) -> str:
    now = int(time.time())
    return jwt.encode({"sub": 1234, "iss": "fleet test", "iat": now, "exp": now + 600}, key, algorithm="HS256")


def test_a_stale_copy_shared_after_a_rotation_never_brings_the_revoked_key_back(
    fleet: Fleet, redis_server: PrivateRedis, tmp_path: Path
) -> None:
    other = fleet.apps[0]
    # This process waits between reading the company and sharing its copy: a rotation commits meanwhile.
    slow = App(free_port(), dict(fleet.env, BILLPORTAL_TEST_PAUSE_BEFORE_SHARING_COMPANY="10"), tmp_path / "slow.log")
    slow.start()
    fleet.apps.append(slow)
    old_key = fleet.sso_key
    assert other.get(f"/login/{_signed(old_key)}").status_code == 303
    copy = subprocess.run(
        [REDIS_CLI, "-p", str(redis_server.port), "get", "bp:company:{acme}"], capture_output=True, check=True
    )
    assert re.match(rb"\d+\n\{", copy.stdout), copy.stdout  # shared, with its version
    time.sleep(1.2)  # every process's own copy has expired
    # The shared copy expires (as it does after ten seconds): the next load reads the database.
    forget = "for _, key in ipairs(redis.call('KEYS', 'bp:company:*')) do redis.call('DEL', key) end"
    subprocess.run([REDIS_CLI, "-p", str(redis_server.port), "eval", forget, "0"], check=True, timeout=10)

    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        stale = pool.submit(lambda: slow.get(f"/login/{_signed(old_key)}"))
        time.sleep(0.5)  # the slow process has read the rows, and waits to share them
        rotation = json.loads(fleet.cli("sso-key", "rotate", "--tenant", "acme", "--grace", "none"))
        rotated = time.monotonic()
        assert not stale.done(), "the rotation did not commit while the stale copy was held"
        assert other.get(f"/login/{_signed(old_key)}", client_ip="198.51.100.201").status_code == 401
        stale.result()
        shared = time.monotonic()
    assert rotated - started < 10

    # From now on (the slow process's own copy is at most a second old) the revoked key never signs in.
    time.sleep(1.2)
    refused = []
    for i in range(40):  # four seconds: on an old release the stale copy lived ten
        refused.append(other.get(f"/login/{_signed(old_key)}", client_ip=f"198.51.100.{i}").status_code)
        time.sleep(0.1)
    refused.append(slow.get(f"/login/{_signed(old_key)}", client_ip="198.51.100.200").status_code)
    assert set(refused) == {401}, refused
    assert other.get(f"/login/{_signed(rotation['key'])}").status_code == 303
    assert time.monotonic() - shared > 4


def test_an_unreachable_redis_at_start_up_is_logged_and_failures_are_still_limited(
    fleet: Fleet, tmp_path: Path
) -> None:
    nowhere = f"redis://:not-logged@127.0.0.1:{free_port()}/0"  # nothing listens there
    app = App(free_port(), dict(fleet.env, BILLPORTAL_REDIS_URL=nowhere), tmp_path / "no-redis.log")
    app.start()
    fleet.apps.append(app)
    ready = app.client.get(f"http://127.0.0.1:{app.port}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert app.get(f"/login/{fleet.token()}").status_code == 303
    statuses = [app.get(f"/login/junk-{n}", client_ip="198.51.100.77").status_code for n in range(21)]
    assert statuses == [401] * 20 + [429]
    app.stop()
    log = app.log.read_text()
    warning = next(line for line in log.splitlines() if "does not answer: serving without it" in line)
    assert "WARNING" in warning
    assert "not-logged" not in log
    assert "failures are counted by this process alone" in log


def test_the_shared_company_copy_never_goes_back_to_an_older_version(redis_server: PrivateRedis) -> None:
    redis_server.flush()
    cache = CompanyCache(RedisClients(redis_server.url))

    def rows(version: int) -> CompanyRows:
        return CompanyRows(company={"username": "acme", "version": version}, keys=[])

    async def scenario() -> None:
        assert await cache.put("acme", rows(2))
        shared = await cache.get("acme")
        assert shared is not None
        assert shared.company["version"] == 2
        assert not await cache.put("acme", rows(1))  # older than the shared copy
        await cache.drop("acme", 3)  # a change committed version 3
        assert await cache.get("acme") is None
        assert not await cache.put("acme", rows(2))  # read before the change: refused
        assert await cache.get("acme") is None
        assert await cache.put("acme", rows(3))
        await cache.drop("acme", 0)  # a change rolled back: dropped, and the floor stays
        assert not await cache.put("acme", rows(2))
        assert await cache.put("acme", rows(3))

    asyncio.run(scenario())
