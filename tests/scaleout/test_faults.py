"""Redis, then PostgreSQL, stop during a stream of sign-ins: 303 or 503 only, and recovery.

Every session answered 303 (before, during or after the outages) still signs
its customer in afterwards: nothing answered is lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import new_postgres_database
from tests.scaleout.conftest import Fleet, PrivatePostgres, PrivateRedis, start_fleet

REQUEST_BOUND = 10.0  # seconds: no answer may take longer (no hangs)


@pytest.fixture
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> Iterator[Fleet]:
    database = new_postgres_database(postgres.url)
    fleet = start_fleet(tmp_path_factory.mktemp("faults"), database, redis_server.url, 1)
    yield fleet
    for app in fleet.apps:
        app.stop()


class Stream:
    """Sign-ins in a loop on a thread: statuses, slowest answer, and the cookies answered."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.statuses: dict[int, int] = {}
        self.errors: list[str] = []
        self.cookies: list[str] = []
        self.slowest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        app = self.fleet.apps[0]
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                answer = app.get(f"/login/{self.fleet.token()}")
            except httpx.HTTPError as exc:
                self.errors.append(type(exc).__name__)
                continue
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.statuses[answer.status_code] = self.statuses.get(answer.status_code, 0) + 1
            if answer.status_code == 303:
                self.cookies.append(answer.cookies["__Host-bp_session"])
            time.sleep(0.01)

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def wait_for(self, status: int, count: int = 3, timeout: float = 30) -> None:
        target = self.statuses.get(status, 0) + count
        deadline = time.monotonic() + timeout
        while self.statuses.get(status, 0) < target:
            assert time.monotonic() < deadline, f"no {status} answers: {self.statuses}"
            time.sleep(0.05)


def test_outages_give_503_then_recover_and_no_answered_session_is_lost(
    fleet: Fleet, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> None:
    app = fleet.apps[0]
    with Stream(fleet) as stream:
        stream.wait_for(303)

        redis_server.stop()
        time.sleep(2)
        # Pages still answer on the database alone while Redis is away, and a single-use
        # link signs in once: its mark is the database's (written with the session).
        cookie = stream.cookies[-1]
        assert app.get("/", cookie=cookie).status_code == 200
        single_use = fleet.token(jti="while-redis-is-down")
        assert app.get(f"/login/{single_use}").status_code == 303
        assert app.get(f"/login/{single_use}").status_code == 401
        redis_server.start()
        stream.wait_for(303)

        postgres.stop()
        stream.wait_for(503)
        assert app.get("/", cookie=cookie).status_code == 503
        ready = app.client.get(f"http://127.0.0.1:{app.port}/readyz")
        assert ready.status_code == 503
        postgres.start()
        stream.wait_for(303, count=5)

    assert not stream.errors
    assert set(stream.statuses) <= {303, 503}, stream.statuses
    assert stream.slowest < REQUEST_BOUND
    assert app.client.get(f"http://127.0.0.1:{app.port}/readyz").status_code == 200
    lost = [c for c in stream.cookies if app.get("/", cookie=c).status_code != 200]
    assert not lost, f"{len(lost)} of {len(stream.cookies)} answered sessions were lost"


CALL_BOUND = 5.0  # seconds: docs/deploy.md's bound on any storage call
SLACK = 1.5  # for the request around it, on a shared machine


def test_a_frozen_database_answers_503_within_the_documented_bound(fleet: Fleet, postgres: PrivatePostgres) -> None:
    """SIGSTOP: connections stay open and nothing answers, unlike a stopped server that refuses them."""
    app = fleet.apps[0]
    cookie = app.get(f"/login/{fleet.token()}").cookies["__Host-bp_session"]
    assert app.get("/invoices", cookie=cookie).status_code == 200

    def timed(path: str, with_cookie: bool) -> tuple[int, float]:
        started = time.monotonic()
        status = app.get(path, cookie=cookie if with_cookie else None).status_code
        return status, time.monotonic() - started

    postgres.freeze()
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda i: timed(f"/login/{fleet.token(jti=f'frozen-{i}')}" if i % 2 else "/invoices", not i % 2),
                    range(8),
                )
            )
            started = time.monotonic()
            ready = app.client.get(f"http://127.0.0.1:{app.port}/readyz")
            ready_took = time.monotonic() - started
    finally:
        postgres.thaw()

    assert {status for status, _ in answers} == {503}, answers
    assert max(took for _, took in answers) < CALL_BOUND + SLACK, answers
    assert ready.status_code == 503
    assert ready_took < 1.0 + SLACK
    # Thawed: the dropped connections are replaced and requests are served again.
    deadline = time.monotonic() + 10
    while app.get(f"/login/{fleet.token()}").status_code != 303:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert app.get("/invoices", cookie=cookie).status_code == 200
