"""What only a real server process shows: oversized requests refused early, and what reaches its log.

``billportal serve`` runs as it does in production (uvicorn with httptools and
the bound on a request's head from web/protocol.py), on a free port. Oversized
requests are written on raw sockets, so that nothing on the client side trims
them; the server's memory is read from /proc before and after.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from billportal.core.config import Settings
from billportal.storage import open_store
from tests.browser.conftest import LiveServer, live_server
from tests.conftest import run

__all__ = ["live_server"]  # the fixture, shared with the browser tests

KIB = 1024
MIB = 1024 * 1024
# Growth allowed in the server's peak memory while it refuses all of a group's requests.
MAX_GROWTH_KIB = 8 * 1024


def memory_kib(pid: int) -> tuple[int, int]:
    """(resident now, resident at its peak) of a process, in KiB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def exchange(server: LiveServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` on a new connection; return the answer's status, headers and body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        # Refused before it was all sent? The answer is there to read all the same.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    answer = b"".join(chunks)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), answer[:200]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def get(path: str, *extra_headers: str, host: str = "acme") -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}.localhost", "Connection: close", *extra_headers, "", ""]
    return "\r\n".join(lines).encode("latin-1")


@pytest.fixture(scope="module")
def warm(live_server: LiveServer) -> LiveServer:
    """The server after it has rendered each kind of page once (templates load on first use)."""
    for request in (get("/"), get("/login/x"), get("/" + "a" * 9000), get("/signed-out")):
        exchange(live_server, request)
    return live_server


def sign_in_link(server: LiveServer, *args: str) -> str:
    url = server.cli("sso-url", "--tenant", "acme", "--customer", "1234", *args)
    return url.split("/login/", 1)[1]


@pytest.mark.parametrize(
    ("size", "status"),
    [(8 * KIB, 414), (64 * KIB, 414), (MIB, 414), (16 * MIB, 414)],
    ids=["8 KiB", "64 KiB", "1 MiB", "16 MiB"],
)
def test_an_oversized_token_is_refused_early(warm: LiveServer, size: int, status: int) -> None:
    before_rss, before_peak = memory_kib(warm.process.pid)
    for _ in range(3):
        answer, headers, _ = exchange(warm, get("/login/" + "A" * size))
        assert answer == status
        assert headers["x-content-type-options"] == "nosniff"
        assert "unsafe-inline" not in headers["content-security-policy"]
    after_rss, after_peak = memory_kib(warm.process.pid)
    assert after_peak - before_peak < MAX_GROWTH_KIB
    assert after_rss - before_rss < MAX_GROWTH_KIB


@pytest.mark.parametrize(
    "request_head",
    [
        ["X-Padding: " + "b" * (64 * KIB)],
        ["X-Padding: " + "b" * MIB],
        ["X-Padding: " + "b" * (16 * MIB)],
        ["Cookie: __Host-bp_session=" + "c" * MIB],
        [f"X-Many-{n}: v" for n in range(20_000)],
    ],
    ids=["64 KiB header", "1 MiB header", "16 MiB header", "1 MiB cookie", "20000 headers"],
)
def test_oversized_headers_are_refused_early(warm: LiveServer, request_head: list[str]) -> None:
    before_rss, before_peak = memory_kib(warm.process.pid)
    for _ in range(3):
        status, headers, _ = exchange(warm, get("/", *request_head))
        assert status == 431
        assert headers["connection"] == "close"
        assert headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
    after_rss, after_peak = memory_kib(warm.process.pid)
    assert after_peak - before_peak < MAX_GROWTH_KIB
    assert after_rss - before_rss < MAX_GROWTH_KIB


def test_ordinary_requests_pass_the_bound(warm: LiveServer) -> None:
    # Under the bound: an 8 KiB header and a 4 KiB token reach the app as usual.
    assert exchange(warm, get("/signed-out", "X-Padding: " + "b" * (8 * KIB)))[0] == 200
    assert exchange(warm, get("/login/" + "A" * 4000))[0] == 401
    # Several requests on one connection (keep-alive) each get their own bound.
    two = get("/signed-out").replace(b"Connection: close\r\n", b"") + get("/signed-out")
    with socket.create_connection(("127.0.0.1", warm.port), timeout=20) as sock:
        sock.sendall(two)
        answers = b""
        while chunk := sock.recv(65536):
            answers += chunk
    assert answers.count(b"HTTP/1.1 200 OK") == 2


def test_a_head_that_ends_across_two_reads_is_bounded_by_its_own_bytes_only(warm: LiveServer) -> None:
    # The blank line after the headers arrives split over two writes; the 20 KiB body that
    # follows is body, not head, and must not be counted against the 16 KiB bound.
    body = b"csrf_token=" + b"a" * (20 * KIB)
    head = (
        "POST /logout HTTP/1.1\r\nHost: acme.localhost\r\nConnection: close\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r"
    ).encode()
    with socket.create_connection(("127.0.0.1", warm.port), timeout=20) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(head)
        time.sleep(0.2)  # two reads on the server's side, not a measurement
        sock.sendall(b"\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")  # the form's own limit (413), not the head's (431)


@pytest.mark.parametrize("path", ["/login", "/logout"])
def test_an_oversized_body_is_refused_without_being_read(warm: LiveServer, path: str) -> None:
    before_rss, before_peak = memory_kib(warm.process.pid)
    body = b"token=" + b"a" * (16 * MIB)
    for framing in (f"Content-Length: {len(body)}", "Transfer-Encoding: chunked"):
        payload = body if framing.startswith("Content") else b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        request = (
            f"POST {path} HTTP/1.1\r\nHost: acme.localhost\r\nConnection: close\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n{framing}\r\n\r\n"
        ).encode() + payload
        status, _, _ = exchange(warm, request)
        assert status in ((401,) if path == "/login" else (413, 303))  # 413: the form's cap, before reading it
    after_rss, after_peak = memory_kib(warm.process.pid)
    assert after_peak - before_peak < 2 * MAX_GROWTH_KIB
    assert after_rss - before_rss < MAX_GROWTH_KIB


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stream_until_closed(
    server: LiveServer, head: bytes, body: Iterable[bytes], *, limit: float
) -> tuple[bytes, float, float]:
    """Send ``head`` then ``body``'s pieces, on a kept-alive connection, until the server closes it.

    Returns the answer, the seconds until its first byte and the seconds until the
    server closed the connection (``limit`` if it had not by then).
    """
    with socket.create_connection(("127.0.0.1", server.port), timeout=limit) as sock:
        stop = threading.Event()

        def send() -> None:
            with contextlib.suppress(OSError):
                sock.sendall(head)
                for piece in body:
                    if stop.is_set():
                        break
                    sock.sendall(piece)

        sender = threading.Thread(target=send, daemon=True)
        started = time.monotonic()
        sender.start()
        answer, first, closed = b"", limit, limit
        try:
            while time.monotonic() - started < limit:
                data = sock.recv(65536)
                if not data:
                    closed = time.monotonic() - started
                    break
                if not answer:
                    first = time.monotonic() - started
                answer += data
        except (ConnectionResetError, TimeoutError):
            closed = time.monotonic() - started if answer else limit
        finally:
            stop.set()
        sender.join(5)
    return answer, first, closed


@pytest.mark.parametrize("path", ["/logout", "/login"])
@pytest.mark.parametrize("framing", ["1 MiB of & in one-byte chunks", "an endless stream"])
def test_an_unread_body_is_refused_in_milliseconds_and_ends_its_connection(
    warm: LiveServer, path: str, framing: str
) -> None:
    # No session, no Connection: close. Once answered, the server must not read on: uvicorn would
    # parse the rest of the body (one-byte chunks cost a Python call each) or an endless stream forever.
    head = (
        "\r\n".join(
            [
                f"POST {path} HTTP/1.1",
                "Host: acme.localhost",
                "Content-Type: application/x-www-form-urlencoded",
                "Transfer-Encoding: chunked",
            ]
        ).encode()
        + b"\r\n\r\n"
    )
    chunks = b"1\r\n&\r\n" * (8 * KIB)  # 8 KiB of "&", a chunk each
    if framing == "an endless stream":
        body: Iterable[bytes] = itertools.repeat(chunks)
    else:
        body = [*[chunks] * (MIB // (8 * KIB)), b"0\r\n\r\n"]
    cpu_before = cpu_seconds(warm.process.pid)
    answer, first, closed = stream_until_closed(warm, head, body, limit=8.0)
    cpu_used = cpu_seconds(warm.process.pid) - cpu_before
    assert answer.startswith(b"HTTP/1.1 413 " if path == "/logout" else b"HTTP/1.1 401 "), answer[:100]
    assert first < 1.0
    assert closed < first + 4.0  # the server ended the connection (after a short linger), not the client
    assert cpu_used < 1.0


def test_no_token_key_or_session_id_reaches_the_servers_log(warm: LiveServer) -> None:
    good = sign_in_link(warm)
    status, headers, _ = exchange(warm, get(f"/login/{good}"))
    assert status == 303
    session_id = headers["set-cookie"].split(";")[0].split("=", 1)[1]
    exchange(warm, get("/", f"Cookie: __Host-bp_session={session_id}"))
    bad = good[:-4] + "AAAA"
    exchange(warm, get(f"/login/{bad}?redirect_to=invoices"))
    form = f"token={good}".encode()
    exchange(
        warm,
        b"POST /login HTTP/1.1\r\nHost: acme.localhost\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s" % (len(form), form),
    )
    store = open_store(Settings.from_env(warm.env))
    try:
        acme = run(store.company("acme"))
        assert acme is not None
        keys = [key.secret.decode() for key in acme.sso_keys]
    finally:
        store.close()
    log = warm.log()
    assert "/login/[redacted]" in log  # the control: the access log records sign-ins
    for secret in (good, good.split(".")[1], good.split(".")[2], bad.split(".")[2], session_id, *keys):
        assert secret not in log
