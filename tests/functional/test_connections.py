"""Idle, slow and too many connections, and load shedding: real sockets against a real server process.

Short bounds are set through the environment (BILLPORTAL_HEAD_TIMEOUT_SECONDS,
BILLPORTAL_MAX_CONNECTIONS, BILLPORTAL_MAX_IN_FLIGHT, BILLPORTAL_SHED_LATENCY_MS);
docs/deploy.md states the defaults.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server_process import Embedded

HEAD = b"GET /signed-out HTTP/1.1\r\nHost: acme.localhost\r\n"


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    return sock


def _read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes; and how long that took (``limit`` if it never did)."""
    started = time.monotonic()
    sock.settimeout(limit)
    received = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
        return received, time.monotonic() - started
    return received, limit


def _read_response(sock: socket.socket) -> bytes:
    """One whole response (its head, then Content-Length bytes of body)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65536)
    return head


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Embedded]:
    embedded = Embedded(tmp_path / "data", **request.param)
    embedded.app.start()
    yield embedded
    embedded.app.stop()


@pytest.mark.parametrize("server", [{"BILLPORTAL_HEAD_TIMEOUT_SECONDS": "1"}], indirect=True)
def test_idle_and_slow_connections_are_closed_within_the_head_timeout(server: Embedded) -> None:
    port = server.app.port
    idle = _connect(port)
    slow = _connect(port)
    slow.sendall(HEAD)  # ... and never the blank line
    kept_alive = _connect(port)
    kept_alive.sendall(HEAD + b"\r\n")
    assert _read_response(kept_alive).startswith(b"HTTP/1.1 200")
    kept_alive.sendall(b"GET /signed-out HTTP/1.1\r\n")  # the next request trickles in

    for sock, answer in ((idle, b""), (slow, b"HTTP/1.1 408"), (kept_alive, b"HTTP/1.1 408")):
        with sock:
            received, took = _read_until_closed(sock, limit=5)
            assert received.startswith(answer), received
            assert took < 3, took  # the bound (1 s), on a busy machine

    # Requests that arrive in time are served as before.
    assert server.app.get("/signed-out").status_code == 200


@pytest.mark.parametrize(
    "server", [{"BILLPORTAL_MAX_CONNECTIONS": "10", "BILLPORTAL_HEAD_TIMEOUT_SECONDS": "30"}], indirect=True
)
def test_past_the_connection_cap_new_connections_get_503_and_a_log_line(server: Embedded) -> None:
    held = [_connect(server.app.port) for _ in range(10)]
    time.sleep(0.3)
    with _connect(server.app.port) as refused:
        received, took = _read_until_closed(refused, limit=5)
    assert received.startswith(b"HTTP/1.1 503"), received
    assert b"retry-after: 1" in received.lower()
    assert took < 1
    for sock in held:
        sock.close()
    time.sleep(0.3)
    assert server.app.get("/signed-out").status_code == 200
    assert "connection limit reached" in server.app.log.read_text(errors="replace")


def _lower_file_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))


def test_the_open_files_limit_is_raised_to_the_hard_limit(tmp_path: Path) -> None:
    embedded = Embedded(tmp_path / "data")
    embedded.app.preexec_fn = _lower_file_limit
    embedded.app.start()
    try:
        assert embedded.app.process is not None
        limits = Path(f"/proc/{embedded.app.process.pid}/limits").read_text()
    finally:
        embedded.app.stop()
    match = re.search(r"Max open files\s+(\S+)\s+(\S+)", limits)
    assert match is not None
    assert match.group(1) == match.group(2)
    assert "raised from 256" in embedded.app.log.read_text(errors="replace")


def _collections(embedded: Embedded) -> float:
    """How many times the server's collector has run (generation 0), from its own /metrics."""
    metrics = embedded.app.client.get(f"http://127.0.0.1:{embedded.app.port}/metrics").text
    match = re.search(r'^python_gc_collections_total\{generation="0"\} (\S+)$', metrics, re.MULTILINE)
    assert match is not None
    return float(match.group(1))


def test_the_garbage_collector_runs_again_once_the_server_has_started(tmp_path: Path) -> None:
    # The CLI loads the server with the collector off (start-up is a sixth faster); left off, a
    # worker would never free a cycle again.
    embedded = Embedded(tmp_path / "data")
    embedded.app.start()
    try:
        before = _collections(embedded)
        for _ in range(300):
            assert embedded.app.get("/signed-out").status_code == 200
        after = _collections(embedded)
    finally:
        embedded.app.stop()
    assert after > before


@pytest.mark.parametrize("server", [{"BILLPORTAL_MAX_IN_FLIGHT": "3"}], indirect=True)
def test_past_max_in_flight_requests_are_shed_with_503_and_retry_after(server: Embedded) -> None:
    # Three requests in progress: each waits for a body that does not come.
    waiting = [_connect(server.app.port) for _ in range(3)]
    for sock in waiting:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: acme.localhost\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
        )
    time.sleep(0.5)

    started = time.monotonic()
    shed = server.app.get("/signed-out")
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "1"
    assert time.monotonic() - started < 0.5
    assert server.app.client.get(f"http://127.0.0.1:{server.app.port}/readyz").status_code == 200  # never shed
    api = server.app.client.get(
        f"http://127.0.0.1:{server.app.port}/api/v1/customers", headers={"host": "dashboard.localhost"}
    )
    assert api.status_code == 503
    assert api.json()["error"]["code"] == "overloaded"

    for sock in waiting:
        sock.close()
    time.sleep(0.3)
    assert server.app.get("/signed-out").status_code == 200
    assert "overloaded" in server.app.log.read_text(errors="replace")


def _backlog(server: Embedded, count: int) -> list[bytes]:
    """``count`` requests for My Account (a few ms each), each on its own connection, sent while the
    server is stopped (a stall: the disk, the machine): when it resumes, they are all there at once,
    seconds of work. The head of each answer."""
    assert server.app.process is not None
    request = b"GET / HTTP/1.1\r\nHost: acme.localhost\r\nCookie: __Host-bp_session=%s\r\n\r\n" % (
        server.sign_in().encode()
    )
    socks = [_connect(server.app.port) for _ in range(count)]
    for sock in socks:  # each connection accepted and kept alive
        sock.sendall(HEAD + b"\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
    os.kill(server.app.process.pid, signal.SIGSTOP)
    try:
        for sock in socks:
            sock.sendall(request)
    finally:
        os.kill(server.app.process.pid, signal.SIGCONT)
    try:
        return [_read_response(sock) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize(
    "server", [{"BILLPORTAL_SHED_LATENCY_MS": "5", "BILLPORTAL_MAX_IN_FLIGHT": "100000"}], indirect=True
)
def test_requests_that_queue_after_a_stall_are_shed_with_503_and_retry_after(server: Embedded) -> None:
    heads = _backlog(server, 400)  # far more than one process starts within 5 ms: a standing queue
    shed = [head for head in heads if head.startswith(b"HTTP/1.1 503")]
    served = [head for head in heads if head.startswith(b"HTTP/1.1 200")]
    assert len(shed) + len(served) == len(heads)
    assert len(shed) > len(heads) // 2, (len(shed), len(served))
    assert served  # those that started before the queue was seen to stand
    assert all(b"retry-after: 1" in head.lower() for head in shed)
    # Once the backlog drained, one request at a time is served again.
    time.sleep(0.5)
    for _ in range(20):
        assert server.app.get("/signed-out").status_code == 200
    assert "BILLPORTAL_SHED_LATENCY_MS" in server.app.log.read_text(errors="replace")


@pytest.mark.parametrize(
    "server", [{"BILLPORTAL_SHED_LATENCY_MS": "0", "BILLPORTAL_MAX_IN_FLIGHT": "100000"}], indirect=True
)
def test_with_no_bound_on_queueing_the_same_backlog_is_all_served(server: Embedded) -> None:
    heads = _backlog(server, 400)
    assert all(head.startswith(b"HTTP/1.1 200") for head in heads)


def _workers(pid: int) -> set[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    workers = set()
    for child in map(int, children):
        with contextlib.suppress(FileNotFoundError):
            if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.add(child)
    return workers


def test_a_worker_that_keeps_dying_is_restarted_with_a_growing_delay(tmp_path: Path) -> None:
    embedded = Embedded(tmp_path / "data")
    embedded.app.workers = 2
    embedded.app.start()
    try:
        assert embedded.app.process is not None
        supervisor = embedded.app.process.pid
        delays = []
        for _ in range(3):
            deadline = time.monotonic() + 30
            while len(workers := _workers(supervisor)) < 2:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            victim = max(workers)  # the newest: the same worker slot dies again and again
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()
            while len(_workers(supervisor) - {victim}) < 2:
                assert time.monotonic() < killed + 30
                # The other worker serves meanwhile (a new connection: the old one went with the victim).
                assert httpx.get(f"http://127.0.0.1:{embedded.app.port}/healthz", timeout=10).status_code == 200
                time.sleep(0.05)
            delays.append(time.monotonic() - killed)
    finally:
        embedded.app.stop()
    assert delays[0] >= 0.5
    assert delays[2] >= 2.0, delays  # 0.5 s, 1 s, 2 s: doubling while it keeps dying
    log = embedded.app.log.read_text(errors="replace")
    assert "starting another in 2.0 s" in log
