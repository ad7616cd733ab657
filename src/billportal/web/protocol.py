"""uvicorn's HTTP/1.1 protocol (httptools) with a bound on the size of a request's head.

httptools sets no limit of its own: uvicorn would read a header of any size into
memory before the app sees the request. This protocol counts the bytes of each
request up to the blank line that ends its headers and, past
:data:`MAX_HEAD_BYTES`, answers 414 (the request line alone is too long) or 431
without parsing any further: no more than one read (at most 256 KiB) is ever
held. What the client still sends is read and dropped for a moment before the
connection closes, so that the client reads the answer rather than a reset.

It also bounds connections (docs/deploy.md#connections-and-load):

* a request's head must be complete within ``BILLPORTAL_HEAD_TIMEOUT_SECONDS`` of
  the connection opening or the previous answer ending, else the connection is
  closed (with a 408 if part of a head arrived): idle and slowloris connections
  do not pile up;
* past ``BILLPORTAL_MAX_CONNECTIONS`` open connections (never more than the
  file-descriptor limit allows), a new connection is answered 503 and closed, and
  a line is logged, so that accepting never fails silently for want of a
  descriptor.

A request answered before its body was read to the end (a form past its cap, a
body that is not a form) ends its connection the same way: uvicorn would read on
to find the next request, parsing whatever the client chose to send (1 MiB of
one-byte chunks costs seconds of the server's time, an endless stream forever).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import time
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from billportal.core.config import Settings
from billportal.web.security import DEFAULT_CSP
from billportal.web.shedding import ARRIVED

log = logging.getLogger("billportal.connections")

MAX_HEAD_BYTES: Final = 16 * 1024
LINGER_SECONDS: Final = 2.0
FD_RESERVE: Final = 64  # descriptors kept for the database, logs and files
LOG_EVERY_SECONDS: Final = 10.0

_REASONS: Final = {
    408: (b"Request Timeout", b"The request took too long to arrive.\n"),
    414: (b"URI Too Long", b"The request is too large.\n"),
    431: (b"Request Header Fields Too Large", b"The request is too large.\n"),
    503: (b"Service Unavailable", b"Too many connections; retry shortly.\n"),
}


@functools.cache
def limits() -> tuple[float, int]:
    """(head timeout in seconds, most connections open at once) for this process."""
    settings = Settings.from_env()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = settings.max_connections if soft == resource.RLIM_INFINITY else soft - FD_RESERVE
    return float(settings.head_timeout_seconds), max(1, min(settings.max_connections, ceiling))


class _CapNotes:
    """Rate-limits the "too many connections" line to one every LOG_EVERY_SECONDS."""

    logged_at = -LOG_EVERY_SECONDS
    refused = 0


def _refusal(status: int) -> bytes:
    reason, body = _REASONS[status]
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
            *([b"retry-after: 1\r\n"] if status == 503 else []),
            b"content-security-policy: " + DEFAULT_CSP.encode("ascii") + b"\r\n",
            b"x-content-type-options: nosniff\r\n",
            b"referrer-policy: no-referrer\r\n",
            b"\r\n",
            body,
        ]
    )


def _head_end(data: bytes) -> int:
    """The index just past the blank line that ends a head in ``data``, or -1."""
    ends = [i + len(mark) for mark in (b"\r\n\r\n", b"\n\n") if (i := data.find(mark)) >= 0]
    return min(ends) if ends else -1


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that refuses a request line plus headers over :data:`MAX_HEAD_BYTES`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._new_head()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        head_timeout, max_connections = limits()
        if len(self.connections) > max_connections:
            self._note_cap(max_connections)
            self._refused = True
            transport.write(_refusal(503))
            transport.close()  # at once: a flood of refused connections must not hold descriptors
            return
        self._head_timer = self.loop.call_later(head_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not self.transport.is_closing():
            # Answered with its body still unread: no reading on for a next request.
            self.server_state.total_requests += 1
            self._drop_and_close()
            return
        super().on_response_complete()
        # The next request's head gets the same bound (uvicorn's keep-alive
        # timeout ends an idle connection sooner, but not one that trickles).
        if not self.transport.is_closing() and self._head_timer is None:
            self._head_timer = self.loop.call_later(limits()[0], self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self._refused:
            return
        if self._head_bytes:
            self._refuse(408)  # part of a head arrived: say why
        else:
            self.transport.close()

    @staticmethod
    def _note_cap(max_connections: int) -> None:
        _CapNotes.refused += 1
        now = time.monotonic()
        if now - _CapNotes.logged_at >= LOG_EVERY_SECONDS:
            log.warning(
                "connection limit reached: %d open (BILLPORTAL_MAX_CONNECTIONS, file descriptors);"
                " %d new connections answered 503 since the last note",
                max_connections,
                _CapNotes.refused,
            )
            _CapNotes.logged_at, _CapNotes.refused = now, 0

    def _new_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._line_bytes = 0  # of the request line, while its end is not yet seen
        self._line_done = False
        self._tail = b""  # the last bytes read, in case the blank line is split across reads

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # dropped while the answer drains
        if self._in_head:
            # A blank line split across reads starts in the tail; one found whole is later.
            joint = _head_end(self._tail + data[:3]) if self._tail else -1
            end = joint - len(self._tail) if joint >= 0 else _head_end(data)
            head = data if end < 0 else data[:end]
            self._head_bytes += len(head)
            if not self._line_done:
                newline = head.find(b"\n")
                self._line_done = newline >= 0
                self._line_bytes += newline if self._line_done else len(head)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(414 if self._line_bytes > MAX_HEAD_BYTES else 431)
                return
            self._tail = data[-3:] if len(data) >= 3 else (self._tail + data)[-3:]
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # When this request began to be read: the app sheds one that then waited too long to start.
        self.scope["extensions"] = {ARRIVED: {"at": time.monotonic()}}

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._new_head()

    def _refuse(self, status: int) -> None:
        self.transport.write(_refusal(status))
        self._drop_and_close()

    def _drop_and_close(self) -> None:
        """Read and drop what the client still sends for a moment, then close (it reads the answer, not a reset)."""
        self._refused = True
        self._stop_head_timer()
        transport = self.transport
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)
