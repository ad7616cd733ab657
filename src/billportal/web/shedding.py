"""Load shedding: answer 503 at once rather than queue, when answers run late.

An event loop shares itself among every request it has accepted, so when more
arrive than it can answer, every answer takes longer, and latency grows without
bound: with 1,500 clients at once, waits reached 10 s. A request's latency is
measured from its first byte being read (stamped by ``web/protocol.py``) to its
answer's last, against ``BILLPORTAL_SHED_LATENCY_MS`` (the target). Past either
bound below, a request is answered ``503`` with ``Retry-After: 1`` at once, which
costs a fraction of answering it, so those in progress finish sooner and those let
through stay near the target:

* **Requests in progress**: at most ``limit``. It starts at
  ``BILLPORTAL_MAX_IN_FLIGHT``; after each ``WINDOW`` in which most answers were
  late, it falls to what that window's rate answers within the target (Little's
  law: rate x target), never below ``MIN_LIMIT``; after each other window it rises
  by ``INCREASE``, back to the maximum once the load has passed.
* **A standing queue** (CoDel's rule): when every answer for ``INTERVAL`` (at least
  ``MIN_LIMIT`` of them) was late, a request that itself waited over the target
  before it could start is refused: it queued behind others, and would be late too.

A burst smaller than ``MIN_LIMIT``, a lone slow request (an export), a client that
sends one request after another, or the process descheduled for a moment trips
neither. ``/healthz``, ``/readyz`` and ``/metrics`` are never shed. Shedding is the
outermost layer and answers with bytes made once, so that refusing costs about 30 µs
(60 with the access log) against some 300 for a sign-in: counted in
``billportal_requests_shed_total{reason}``, logged at most once every
``LOG_EVERY_SECONDS``.
"""

from __future__ import annotations

import logging
import math
import time

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billportal.core.metrics import SHED
from billportal.web.errors import error_page
from billportal.web.operations import OPERATIONS_PATHS
from billportal.web.security import EVERY_ANSWER

log = logging.getLogger("billportal.load")
LOG_EVERY_SECONDS = 10.0
RETRY_AFTER = "1"
# The scope's extension that holds when the request's first byte was parsed: {"at": time.monotonic()}.
ARRIVED = "billportal.arrived"
INTERVAL = 0.1  # seconds in which every answer (at least MIN_LIMIT of them) was late: the server is behind
# The bound on requests in progress adapts within [MIN_LIMIT, max_in_flight]: at the end of each WINDOW in
# which most answers were late, down to what the window's rate answers within the target (Little's law);
# else up by INCREASE, back to max_in_flight once the load has passed.
WINDOW = 0.05
MIN_LIMIT = 32
INCREASE = 0.05


def _answer(response: Response) -> tuple[Message, Message]:
    """``response`` as the two messages that send it, with the headers every answer carries."""
    headers = [*response.raw_headers, *EVERY_ANSWER]  # what SecurityHeaders adds, which this layer is outside
    start: Message = {"type": "http.response.start", "status": response.status_code, "headers": headers}
    return start, {"type": "http.response.body", "body": response.body}


class _Answers:
    """The 503 answers, made at the first shed request (the page's template is not loaded before)."""

    api: tuple[Message, Message] | None = None
    page: tuple[Message, Message] | None = None

    @classmethod
    def of(cls, scope: Scope) -> tuple[Message, Message]:
        if cls.api is None or cls.page is None:
            headers = {"Retry-After": RETRY_AFTER, "Cache-Control": "no-store"}
            error = {"code": "overloaded", "message": "too many requests at once; retry shortly", "field": None}
            body = {"error": error}
            cls.api = _answer(JSONResponse(body, status_code=503, headers=headers))
            cls.page = _answer(error_page(503, headers=headers))
        return cls.api if str(scope["path"]).startswith("/api/") else cls.page


class LoadShedding:
    """503 with Retry-After, at once, past an adaptive bound on requests in progress, or for a request
    that queued while every answer ran late (``shed_latency_ms``: the target; 0, none)."""

    def __init__(self, app: ASGIApp, max_in_flight: int, shed_latency_ms: int = 0) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.target = shed_latency_ms / 1000 if shed_latency_ms > 0 else math.inf
        self.in_flight = 0
        self.limit = max_in_flight  # requests in progress admitted now
        self._window_start = time.monotonic()
        self._window_answers = 0
        self._window_late = 0
        self._late_since: float | None = None  # since when every answer has been late ...
        self._late_count = 0  # ... and how many
        self._answered_at = -math.inf  # when the last request (not shed) was answered
        self._shed_since_log = 0
        self._logged_at = -LOG_EVERY_SECONDS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPERATIONS_PATHS:
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        arrived = float(scope.get("extensions", {}).get(ARRIVED, {}).get("at") or now)
        if self.in_flight >= self.limit:
            reason = "in_flight"
        elif now - arrived > self.target and self.behind():  # it queued, behind others that were late
            reason = "latency"
        else:
            reason = ""
        if reason:
            self._note_shed(reason)
            start, body = _Answers.of(scope)
            await send({**start, "headers": list(start["headers"])})  # a copy: whoever sends it may add headers
            await send(body)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self._answered(arrived)

    def behind(self) -> bool:
        """Whether every answer for the last ``INTERVAL`` took too long (and answers still come)."""
        if self._late_since is None or self._late_count < MIN_LIMIT:
            return False
        now = time.monotonic()
        if now - self._answered_at > INTERVAL:
            self._late_since = None  # nothing answered for a while: nothing queues
            return False
        return now - self._late_since >= INTERVAL

    def _answered(self, arrived: float) -> None:
        now = time.monotonic()
        late = now - arrived > self.target
        if not late:
            self._late_since = None
        elif self._late_since is None or now - self._answered_at > INTERVAL:
            self._late_since, self._late_count = now, 1
        else:
            self._late_count += 1
        self._answered_at = now
        self._window_answers += 1
        self._window_late += late
        if now - self._window_start >= WINDOW:
            if 2 * self._window_late > self._window_answers:
                answerable = int(self._window_answers / (now - self._window_start) * self.target)
                self.limit = max(min(MIN_LIMIT, self.max_in_flight), min(self.limit, answerable))
            else:
                self.limit = min(self.max_in_flight, self.limit + max(1, int(self.limit * INCREASE)))
            self._window_start, self._window_answers, self._window_late = now, 0, 0

    def _note_shed(self, reason: str) -> None:
        SHED.labels(reason).inc()
        self._shed_since_log += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            log.warning(
                "overloaded (%s): %d requests in progress, at most %d now (BILLPORTAL_MAX_IN_FLIGHT %d), answers"
                " late past %.0f ms (BILLPORTAL_SHED_LATENCY_MS); %d answered 503 since the last note",
                reason,
                self.in_flight,
                self.limit,
                self.max_in_flight,
                self.target * 1000,
                self._shed_since_log,
            )
            self._logged_at, self._shed_since_log = now, 0
