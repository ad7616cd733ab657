"""An open-loop HTTP/1.1 load generator on raw asyncio sockets and uvloop.

wrk measures the most a server can do with 16 connections kept busy (closed loop).
Latency at a given rate needs the opposite: requests sent on a fixed schedule, at
``start + i / rate``, whether or not earlier ones were answered (open loop, as
wrk2 does; wrk2 is not in Debian). A request never waits for a busy connection:
the pool opens another, up to ``max_connections``. Latency is counted from the
time the request was *due* (or from when it was written, if that was earlier),
so a stalled server cannot hide behind a waiting generator (no coordinated
omission); the generator's own lateness (from the due time to when it handed the
request to a connection) is reported beside it as "lag": a large lag means the
machine could not run the generator on time.

It is written with protocol callbacks, not a task per request, so that it costs
a few microseconds per request and leaves the CPU to the server under test.
Every run is bounded: a fixed number of requests and a hard deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import uvloop  # uvicorn[standard] brings it

from bench.common import COOKIE_NAME, HOST_HEADER

Check = Callable[["Request", int, bytes, bytes], bool]
SWEEP_SECONDS = 0.1
TIMER_RESOLUTION = 0.001


@dataclass(frozen=True, slots=True)
class Request:
    raw: bytes
    tag: int = 0  # the customer id, for checks and kept cookies


def get(path: str, cookie: str = "", tag: int = 0) -> Request:
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST_HEADER}", "User-Agent: billportal-bench/loadgen"]
    if cookie:
        lines.append(f"Cookie: {COOKIE_NAME}={cookie}")
    return Request(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), tag)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


@dataclass
class Second:
    """One second of a run, by due time."""

    ok: int = 0
    status_4xx: int = 0
    status_5xx: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    max_lag: float = 0.0  # the generator's worst lateness that second: a stall of the machine, not the server


@dataclass
class Result:
    rate: float
    planned: int
    sent: int = 0
    completed: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    failed_checks: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds
    lags: list[float] = field(default_factory=list)  # seconds the generator dispatched after the due time
    seconds: dict[int, Second] = field(default_factory=dict)
    cookies: list[tuple[int, str]] = field(default_factory=list)  # (customer, session cookie) per 303
    elapsed: float = 0.0
    max_open: int = 0
    not_sent: int = 0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        lag = sorted(self.lags)
        ms = 1000.0
        return {
            "rate": round(self.rate, 1),
            "planned": self.planned,
            "sent": self.sent,
            "not_sent": self.not_sent,
            "completed": self.completed,
            "achieved_rate": round(self.completed / self.elapsed, 1) if self.elapsed else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "failed_checks": self.failed_checks,
            "latency_ms": {
                "p50": round(percentile(lat, 50) * ms, 3),
                "p90": round(percentile(lat, 90) * ms, 3),
                "p99": round(percentile(lat, 99) * ms, 3),
                "p999": round(percentile(lat, 99.9) * ms, 3),
                "max": round(lat[-1] * ms, 3) if lat else float("nan"),
            },
            "lag_ms": {"p50": round(percentile(lag, 50) * ms, 3), "p99": round(percentile(lag, 99) * ms, 3)},
            "max_connections_open": self.max_open,
            "timeline": [
                {
                    "second": second,
                    "ok": bucket.ok,
                    "4xx": bucket.status_4xx,
                    "5xx": bucket.status_5xx,
                    "errors": bucket.errors,
                    "p99_ms": round(percentile(sorted(bucket.latencies), 99) * ms, 3) if bucket.latencies else None,
                    "max_lag_ms": round(bucket.max_lag * ms, 3),
                }
                for second, bucket in sorted(self.seconds.items())
            ],
        }

    def percentile_curve(self) -> list[tuple[float, float]]:
        """(percentile, ms) points for a latency-by-percentile plot."""
        lat = sorted(self.latencies)
        points = [50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99]
        return [(p, percentile(lat, p) * 1000) for p in points if lat]


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, generator: LoadGenerator) -> None:
        self.generator = generator
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.request: Request | None = None
        self.due = 0.0
        self.sent = 0.0
        self.closed = False
        self.timed_out = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def send(self, request: Request, due: float) -> None:
        assert self.transport is not None
        self.request, self.due, self.sent = request, due, time.perf_counter()
        self.transport.write(request.raw)
        self.generator.sent(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end])  # as sent: cookie values are case-sensitive
        lower = head.lower()
        length = 0
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = lower.find(b"\r\n", at + 2)
            length = int(lower[at + 17 : stop if stop >= 0 else len(lower)])
        total = end + 4 + length
        if len(self.buffer) < total:
            return
        body = bytes(self.buffer[end + 4 : total]) if self.generator.check is not None else b""
        del self.buffer[:total]
        request, self.request = self.request, None
        if request is not None:
            self.generator.answered(self, request, int(head[9:12]), head, body)

    def connection_lost(self, exc: Exception | None) -> None:
        del exc  # a lost connection is counted the same whatever the cause
        self.closed = True
        request, self.request = self.request, None
        self.generator.lost(self, request)

    def expire(self) -> None:
        self.timed_out = True
        if self.transport is not None:
            self.transport.abort()


def _cookie_from(head: bytes) -> str:
    marker = b"\r\nset-cookie: " + COOKIE_NAME.lower().encode() + b"="
    at = head.lower().find(marker)
    if at < 0:
        return ""
    start = at + len(marker)
    stop = head.find(b";", start)
    return head[start:stop].decode("latin-1")


class LoadGenerator:
    """Sends requests to 127.0.0.1:port over a pool of keep-alive connections."""

    def __init__(
        self,
        port: int,
        *,
        max_connections: int = 256,
        initial_connections: int = 32,
        timeout: float = 5.0,
        keep_cookies: bool = False,
        check: Check | None = None,
    ) -> None:
        self.port = port
        self.max_connections = max_connections
        self.initial_connections = initial_connections
        self.timeout = timeout
        self.keep_cookies = keep_cookies
        self.check = check
        self.idle: list[_Connection] = []
        self.busy: set[_Connection] = set()
        self.pending: deque[tuple[Request, float]] = deque()
        self.open = 0
        self.connecting = 0
        self.outstanding = 0
        self.stopped = False
        self.closing = False
        self.result = Result(0.0, 0)
        self.start = 0.0
        self.slot = asyncio.Event()

    # -- the pool ----------------------------------------------------------------------

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(lambda: _Connection(self), "127.0.0.1", self.port)
        return protocol

    def _grow(self) -> None:
        self.connecting += 1
        task = asyncio.get_running_loop().create_task(self._connect())
        task.add_done_callback(self._grown)

    def _grown(self, task: asyncio.Task[_Connection]) -> None:
        self.connecting -= 1
        if task.cancelled() or task.exception() is not None:
            if self.pending:
                _, due = self.pending.popleft()
                self._error("connect", due)
            return
        self.open += 1
        self.result.max_open = max(self.result.max_open, self.open)
        self._next(task.result())

    def _next(self, conn: _Connection) -> None:
        """A free connection takes the oldest waiting request, or waits itself."""
        if conn.closed or self.closing:
            return
        if self.pending and not self.stopped:
            request, due = self.pending.popleft()
            conn.send(request, due)
        else:
            self.idle.append(conn)

    def _dispatch(self, request: Request, due: float) -> None:
        self.outstanding += 1
        lag = time.perf_counter() - due
        self.result.lags.append(lag)
        bucket = self._bucket(due)
        bucket.max_lag = max(bucket.max_lag, lag)
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                conn.send(request, due)
                return
        self.pending.append((request, due))
        if self.open + self.connecting < self.max_connections:
            self._grow()

    # -- callbacks from the connections --------------------------------------------------

    def sent(self, conn: _Connection) -> None:
        self.busy.add(conn)
        self.result.sent += 1

    def _bucket(self, due: float) -> Second:
        second = int(due - self.start)
        bucket = self.result.seconds.get(second)
        if bucket is None:
            bucket = self.result.seconds[second] = Second()
        return bucket

    def _finished(self) -> None:
        self.outstanding -= 1
        self.slot.set()

    def _error(self, kind: str, due: float) -> None:
        self.result.errors[kind] += 1
        self._bucket(due).errors += 1
        self._finished()

    def answered(self, conn: _Connection, request: Request, status: int, head: bytes, body: bytes) -> None:
        done = time.perf_counter()
        self.busy.discard(conn)
        result = self.result
        latency = done - min(conn.due, conn.sent)
        result.completed += 1
        result.statuses[status] += 1
        result.latencies.append(latency)
        bucket = self._bucket(conn.due)
        bucket.latencies.append(latency)
        if status >= 500:
            bucket.status_5xx += 1
        elif status >= 400:
            bucket.status_4xx += 1
        else:
            bucket.ok += 1
        if self.keep_cookies and status == 303:
            cookie = _cookie_from(head)
            if cookie:
                result.cookies.append((request.tag, cookie))
        if self.check is not None and not self.check(request, status, head, body):
            result.failed_checks += 1
        self._finished()
        self._next(conn)

    def lost(self, conn: _Connection, request: Request | None) -> None:
        self.busy.discard(conn)
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)
        self.open -= 1
        if request is not None:
            self._error("timeout" if conn.timed_out else "reset", conn.due)
        if self.pending and not self.stopped and not self.closing:
            self._grow()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            limit = time.perf_counter() - self.timeout
            for conn in [c for c in self.busy if c.sent < limit]:
                conn.expire()

    async def _open_pool(self, count: int) -> None:
        for _ in range(count):
            conn = await self._connect()
            self.open += 1
            self.idle.append(conn)
        self.result.max_open = self.open

    async def _drain(self, deadline: float) -> None:
        while self.outstanding > 0 and time.perf_counter() < deadline:
            if self.stopped and not self.busy and not self.connecting:
                break
            await asyncio.sleep(0.01)
        self.closing = True
        self.result.not_sent = len(self.pending)
        self.pending.clear()
        for conn in [*self.idle, *self.busy]:
            if conn.transport is not None:
                conn.transport.abort()
        self.idle.clear()
        await asyncio.sleep(0)

    # -- the two ways to send -------------------------------------------------------------

    async def open_loop(
        self,
        requests: Sequence[Request],
        rate: float,
        *,
        events: Sequence[tuple[float, Callable[[], None]]] = (),
    ) -> Result:
        """Send ``requests`` at ``rate`` per second; ``events`` are (seconds after start, callback)."""
        loop = asyncio.get_running_loop()
        self.result = Result(rate, len(requests))
        await self._open_pool(min(self.initial_connections, self.max_connections))
        interval = 1.0 / rate
        self.start = time.perf_counter() + 0.05
        hard_end = self.start + len(requests) * interval + self.timeout + 5
        handles = [loop.call_later(0.05 + at, callback) for at, callback in events]
        sweeper = loop.create_task(self._sweep())
        index, total = 0, len(requests)
        while index < total and not self.stopped:
            now = time.perf_counter()
            if now > hard_end:
                break
            while index < total and self.start + index * interval <= now:
                self._dispatch(requests[index], self.start + index * interval)
                index += 1
            if index < total:
                # uvloop's timers tick in whole milliseconds: a shorter sleep would spin.
                await asyncio.sleep(max(TIMER_RESOLUTION, self.start + index * interval - time.perf_counter()))
        self.result.not_sent += total - index
        await self._drain(hard_end)
        sweeper.cancel()
        for handle in handles:
            handle.cancel()
        self.result.elapsed = time.perf_counter() - self.start
        return self.result

    async def closed_loop(self, requests: Sequence[Request], concurrency: int, *, deadline: float) -> Result:
        """Send ``requests`` as fast as ``concurrency`` connections allow, for at most ``deadline`` seconds."""
        loop = asyncio.get_running_loop()
        self.result = Result(0.0, len(requests))
        self.max_connections = concurrency
        await self._open_pool(concurrency)
        self.start = time.perf_counter()
        end = self.start + deadline
        sweeper = loop.create_task(self._sweep())
        for request in requests:
            while self.outstanding >= concurrency and time.perf_counter() < end:
                self.slot.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.slot.wait(), timeout=0.5)
            if time.perf_counter() >= end:
                break
            self._dispatch(request, time.perf_counter())
        await self._drain(end)
        sweeper.cancel()
        self.result.elapsed = time.perf_counter() - self.start
        return self.result


def run(coroutine_factory: Callable[[], Any]) -> Any:
    """Run one load coroutine on a fresh uvloop event loop."""
    return uvloop.run(coroutine_factory())


def stop_after(generator: LoadGenerator, action: Callable[[], None]) -> Callable[[], None]:
    """An event callback that runs ``action`` (a kill, say) and stops sending."""

    def fire() -> None:
        generator.stopped = True
        with contextlib.suppress(ProcessLookupError):
            action()

    return fire
