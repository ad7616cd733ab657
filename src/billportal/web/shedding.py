"""Load shedding: past a bound on requests in progress, answer 503 at once rather than queue.

An event loop serves every request it has accepted in turn, so latency grows with
the number in progress: with 1,500 clients at once, waits reached 10 s. Past
``BILLPORTAL_MAX_IN_FLIGHT`` requests in progress in this process, a new one is
answered ``503`` with ``Retry-After: 1`` in a millisecond, and the ones in progress
keep their latency. ``/healthz``, ``/readyz`` and ``/metrics`` are never shed.
"""

from __future__ import annotations

import logging
import time

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from billportal.web.errors import error_page
from billportal.web.operations import OPERATIONS_PATHS

log = logging.getLogger("billportal.load")
LOG_EVERY_SECONDS = 10.0
RETRY_AFTER = "1"


def _overloaded(scope: Scope) -> Response:
    headers = {"Retry-After": RETRY_AFTER, "Cache-Control": "no-store"}
    if str(scope["path"]).startswith("/api/"):
        body = {"error": {"code": "overloaded", "message": "too many requests at once; retry shortly", "field": None}}
        return JSONResponse(body, status_code=503, headers=headers)
    return error_page(503, headers=headers)


class LoadShedding:
    """At most ``max_in_flight`` requests in progress; past it, 503 with Retry-After at once."""

    def __init__(self, app: ASGIApp, max_in_flight: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._shed_since_log = 0
        self._logged_at = -LOG_EVERY_SECONDS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPERATIONS_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            self._note_shed()
            await _overloaded(scope)(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    def _note_shed(self) -> None:
        self._shed_since_log += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            log.warning(
                "overloaded: %d requests in progress (BILLPORTAL_MAX_IN_FLIGHT); %d answered 503 since the last note",
                self.in_flight,
                self._shed_since_log,
            )
            self._logged_at, self._shed_since_log = now, 0
