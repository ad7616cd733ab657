"""uvicorn's HTTP/1.1 protocol (httptools) with a bound on the size of a request's head.

httptools sets no limit of its own: uvicorn would read a header of any size into
memory before the app sees the request. This protocol counts the bytes of each
request up to the blank line that ends its headers and, past
:data:`MAX_HEAD_BYTES`, answers 414 (the request line alone is too long) or 431
without parsing any further: no more than one read (at most 256 KiB) is ever
held. What the client still sends is read and dropped for a moment before the
connection closes, so that the client reads the answer rather than a reset.

A request answered before its body was read to the end (a form past its cap, a
body that is not a form) ends its connection the same way: uvicorn would read on
to find the next request, parsing whatever the client chose to send (1 MiB of
one-byte chunks costs seconds of the server's time, an endless stream forever).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from billportal.web.security import DEFAULT_CSP

MAX_HEAD_BYTES: Final = 16 * 1024
LINGER_SECONDS: Final = 2.0

_REASONS: Final = {414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


def _refusal(status: int) -> bytes:
    body = b"The request is too large.\n"
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
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
        self._new_head()

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

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._new_head()

    def on_response_complete(self) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not self.transport.is_closing():
            # Answered with its body still unread: no reading on for a next request.
            self.server_state.total_requests += 1
            self._drop_and_close()
            return
        super().on_response_complete()

    def _refuse(self, status: int) -> None:
        self.transport.write(_refusal(status))
        self._drop_and_close()

    def _drop_and_close(self) -> None:
        """Read and drop what the client still sends for a moment, then close (it reads the answer, not a reset)."""
        self._refused = True
        transport = self.transport
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)
