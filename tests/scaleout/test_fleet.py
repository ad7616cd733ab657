"""Two app processes sharing PostgreSQL and Redis behave as one."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from billportal.core.config import Settings
from billportal.services import sso
from billportal.services.audit import CLI
from billportal.storage import open_store
from tests import factories
from tests.conftest import new_postgres_database
from tests.functional.dashboard_support import form_token
from tests.scaleout.conftest import Fleet, PrivatePostgres, PrivateRedis, start_fleet
from tests.server_process import App


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> Iterator[Fleet]:
    database = new_postgres_database(postgres.url)
    fleet = start_fleet(
        tmp_path_factory.mktemp("fleet"),
        database,
        redis_server.url,
        2,
        extra={"BILLPORTAL_TRUSTED_PROXIES": "127.0.0.1", "BILLPORTAL_LOGIN_FAILURES_PER_IP": "20/minute"},
    )
    yield fleet
    for app in fleet.apps:
        app.stop()


def test_a_session_made_on_one_process_works_on_the_other(fleet: Fleet) -> None:
    first, second = fleet.apps
    answer = first.get(f"/login/{fleet.token()}")
    assert answer.status_code == 303
    cookie = answer.cookies["__Host-bp_session"]
    page = second.get("/", cookie=cookie)
    assert page.status_code == 200
    assert "Wile E. Coyote" in page.text


def test_a_single_use_link_used_on_one_is_refused_on_the_other(fleet: Fleet) -> None:
    first, second = fleet.apps
    token = fleet.token(jti=f"fleet-{time.time_ns()}")
    assert first.get(f"/login/{token}").status_code == 303
    assert second.get(f"/login/{token}").status_code == 401


def test_signing_out_on_one_ends_the_session_on_the_other(fleet: Fleet) -> None:
    first, second = fleet.apps
    cookie = first.get(f"/login/{fleet.token()}").cookies["__Host-bp_session"]
    assert second.get("/", cookie=cookie).status_code == 200  # cached in Redis now
    page = first.get("/", cookie=cookie)
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    signed_out = first.client.post(
        f"http://127.0.0.1:{first.port}/logout",
        data={"csrf_token": csrf},
        headers={"host": f"acme.localhost:{first.port}", "cookie": f"__Host-bp_session={cookie}"},
    )
    assert signed_out.status_code == 303
    assert second.get("/", cookie=cookie).status_code == 401


def test_a_key_rotated_through_one_process_is_in_force_on_the_other_within_a_second(
    fleet: Fleet, tmp_path: Path
) -> None:
    first, second = fleet.apps
    old_token = fleet.token()
    assert second.get(f"/login/{old_token}").status_code == 303
    store = open_store(Settings.from_env(fleet.env), migrate=False)

    async def rotate() -> str:
        company = await store.company("acme")
        assert company is not None
        return (await sso.rotate(store, company, "none", CLI, int(time.time()))).key

    new_key = asyncio.run(rotate())
    store.close()
    rotated_at = time.monotonic()
    fleet.sso_key, old_key = new_key, fleet.sso_key
    # Within a second both processes refuse the old key and take the new one.
    time.sleep(1.1)
    assert time.monotonic() - rotated_at < 2
    for app in (first, second):
        assert app.get(f"/login/{fleet.token()}").status_code == 303
        fleet.sso_key = old_key
        assert app.get(f"/login/{fleet.token()}").status_code == 401
        fleet.sso_key = new_key


def test_failed_sign_ins_are_rate_limited_across_both_processes(fleet: Fleet) -> None:
    first, second = fleet.apps
    address = "192.0.2.77"
    for app in (first, second) * 10:  # 20 failures, half on each process: the allowance
        assert app.get("/login/not-a-token", client_ip=address).status_code == 401
    # Each process learns of the block from the shared count at its next failure at the latest.
    for app in (first, second):
        answers = [app.get("/login/not-a-token", client_ip=address).status_code for _ in range(2)]
        assert answers[-1] == 429
        limited = app.get(f"/login/{fleet.token()}", client_ip=address)  # even a good link
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
    # Another address is not affected.
    assert first.get(f"/login/{fleet.token()}", client_ip="192.0.2.78").status_code == 303


def admin_sign_in(app: App, email: str, password: str, address: str) -> httpx.Response:
    """The dashboard's sign-in form, filled in and posted from ``address``, on a connection of its own."""
    host = {"host": f"dashboard.localhost:{app.port}", "x-forwarded-for": address}
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        form = client.get(f"http://127.0.0.1:{app.port}/sign-in", headers=host)
        cookie = form.headers["set-cookie"].split(";", 1)[0]
        token = form_token(form.text)
        return client.post(
            f"http://127.0.0.1:{app.port}/sign-in",
            headers={**host, "cookie": cookie},
            data={"csrf_token": token, "email": email, "password": password},
        )


@pytest.mark.parametrize("trial", range(5))
def test_concurrent_admin_sign_ins_past_the_limit_are_refused_on_both_processes(fleet: Fleet, trial: int) -> None:
    # The review's race: an account past its 10 failures (all seen by the first process), then
    # 25 attempts at once over both processes, each with the right password. The second process
    # has no block of its own yet; counting each attempt before checking it refuses them all.
    email = f"racer-{trial}-{time.time_ns()}@acme.example"
    password = "correct horse battery staple"
    store = open_store(Settings.from_env(fleet.env), migrate=False)
    try:
        acme = asyncio.run(store.company("acme"))
        assert acme is not None
        asyncio.run(factories.admin(store, email, password, acme.id, now=int(time.time())))
    finally:
        store.close()
    first, second = fleet.apps
    answers = [admin_sign_in(first, email, f"wrong {n}", f"198.18.{trial}.{n + 1}").status_code for n in range(10)]
    assert answers == [401] * 9 + [429]
    barrier = threading.Barrier(25)

    def attempt(n: int) -> int:
        barrier.wait(timeout=30)
        app = (first, second)[n % 2]
        return admin_sign_in(app, email, password, f"198.19.{trial}.{n + 1}").status_code

    with ThreadPoolExecutor(max_workers=25) as pool:
        statuses = list(pool.map(attempt, range(25)))
    assert statuses == [429] * 25
