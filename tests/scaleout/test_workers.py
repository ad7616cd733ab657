"""``billportal serve --workers N``: several processes behind one port, metrics added up."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import new_postgres_database
from tests.scaleout.conftest import Fleet, PrivatePostgres, PrivateRedis, start_fleet


@pytest.fixture(scope="module")
def workers(
    tmp_path_factory: pytest.TempPathFactory, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> Iterator[Fleet]:
    fleet = start_fleet(
        tmp_path_factory.mktemp("workers"), new_postgres_database(postgres.url), redis_server.url, 1, workers=2
    )
    yield fleet
    for app in fleet.apps:
        app.stop()


def test_two_workers_serve_one_port_and_count_together(workers: Fleet) -> None:
    (app,) = workers.apps
    assert app.process is not None
    children = Path(f"/proc/{app.process.pid}/task/{app.process.pid}/children").read_text().split()
    assert len(children) >= 2  # uvicorn's supervisor runs one process per worker
    cookies = []
    for _ in range(40):
        answer = app.get(f"/login/{workers.token()}")
        assert answer.status_code == 303
        cookies.append(answer.cookies["__Host-bp_session"])
    assert all(app.get("/", cookie=cookie).status_code == 200 for cookie in cookies[:10])
    metrics = app.client.get(f"http://127.0.0.1:{app.port}/metrics").text
    match = re.search(r'billportal_sign_ins_total\{reason="ok",result="success"\} ([0-9.]+)', metrics)
    assert match is not None
    assert float(match.group(1)) == 40  # both workers' sign-ins, whichever answered the scrape
