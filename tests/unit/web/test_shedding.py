"""The load-shedding layer's two bounds, driven on a real event loop with an app whose answers take a set time.

The server process's side (arrival stamps, the 503 pages, a backlog after a stall) is in
tests/functional/test_connections.py; its effect under an open loop past the maximum, in make bench.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import Message, Receive, Scope, Send

from billportal.web.shedding import ARRIVED, MIN_LIMIT, LoadShedding

TARGET_MS = 20


class Timed:
    """An app whose every answer takes ``delay`` seconds (awaited: the loop serves others meanwhile)."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.in_progress = 0
        self.most_in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        del scope, receive
        self.in_progress += 1
        self.most_in_progress = max(self.most_in_progress, self.in_progress)
        try:
            await asyncio.sleep(self.delay)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        finally:
            self.in_progress -= 1


async def _request(shedding: LoadShedding, *, queued: float = 0.0) -> int:
    """One request that waited ``queued`` seconds before it could start; its status."""
    scope: Scope = {
        "type": "http",
        "path": "/page",
        "headers": [],
        "extensions": {ARRIVED: {"at": time.monotonic() - queued}},
    }
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await shedding(scope, receive, send)
    return status


async def _open_loop(shedding: LoadShedding, per_tick: int, seconds: float) -> list[int]:
    """``per_tick`` requests every 10 ms for ``seconds``, not waiting for answers; every status."""
    tasks = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        tasks += [asyncio.create_task(_request(shedding)) for _ in range(per_tick)]
        await asyncio.sleep(0.01)
    return list(await asyncio.gather(*tasks))


def test_when_answers_run_late_the_bound_falls_and_the_excess_is_refused_then_it_recovers() -> None:
    async def scenario() -> None:
        app = Timed()
        shedding = LoadShedding(app, max_in_flight=256, shed_latency_ms=TARGET_MS)
        app.delay = 0.2  # every answer ten times the target, and 20 more requests every 10 ms
        statuses = await _open_loop(shedding, per_tick=20, seconds=0.8)
        assert set(statuses) == {200, 503}
        assert shedding.limit == MIN_LIMIT  # what answers within the target at this rate, at the floor
        assert statuses.count(503) > statuses.count(200)
        assert app.most_in_progress <= 256

        app.delay = 0.001  # the load has passed: answers in time again
        for _ in range(600):
            assert await _request(shedding) == 200
            await asyncio.sleep(0.004)
        assert shedding.limit == 256

    asyncio.run(scenario())


def test_a_burst_below_the_floor_and_a_client_sending_one_at_a_time_are_never_refused() -> None:
    async def scenario() -> None:
        app = Timed()
        shedding = LoadShedding(app, max_in_flight=256, shed_latency_ms=TARGET_MS)
        app.delay = 0.05  # late, every one
        for _ in range(3):
            burst = await asyncio.gather(*[_request(shedding) for _ in range(MIN_LIMIT - 1)])
            assert set(burst) == {200}
        for _ in range(2 * MIN_LIMIT):  # one after another, each late
            assert await _request(shedding) == 200

    asyncio.run(scenario())


def test_while_every_answer_is_late_a_request_that_queued_is_refused_and_one_that_did_not_is_served() -> None:
    async def scenario() -> None:
        app = Timed()
        shedding = LoadShedding(app, max_in_flight=256, shed_latency_ms=TARGET_MS)
        app.delay = 0.05
        # Late answers, back to back, for over INTERVAL (0.1 s): a standing queue.
        for _ in range(4):
            assert set(await asyncio.gather(*[_request(shedding) for _ in range(MIN_LIMIT - 1)])) == {200}
        assert shedding.behind()
        assert await _request(shedding, queued=0.03) == 503  # waited past the target before it started
        assert await _request(shedding, queued=0.0) == 200  # started at once: served

    asyncio.run(scenario())


def test_with_no_target_nothing_is_refused_below_max_in_flight() -> None:
    async def scenario() -> None:
        app = Timed()
        shedding = LoadShedding(app, max_in_flight=256, shed_latency_ms=0)
        app.delay = 0.2
        statuses = await _open_loop(shedding, per_tick=10, seconds=0.4)
        assert set(statuses) == {200}
        assert shedding.limit == 256

    asyncio.run(scenario())
