"""For operators: request ids, latency metrics, ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` says the process answers; ``/readyz`` says whether it can sign
people in: 200 while its database answers and its master key opens the stored
SSO keys, else 503 with the reasons in the JSON body, so a load balancer stops
sending traffic to a worker that cannot serve. A Redis that does not answer
makes the process degraded (``"status": "degraded"``), still 200: it signs
people in on the database alone. ``/metrics`` (Prometheus text format) answers only clients in
``BILLPORTAL_METRICS_NETWORKS`` (loopback by default); behind a trusted proxy
the client is the forwarded address, so the public never sees it.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import os
import re
import secrets
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.metrics import Counter, Histogram
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billportal.core.errors import StorageUnavailable
from billportal.core.metrics import DATABASE_UP, LATENCY, POOL_IN_USE, REDIS_UP, RESPONSES
from billportal.services.master_keys import SealCheck, check_sso_keys
from billportal.storage.store import Store
from billportal.web.logging import request_id

log = logging.getLogger("billportal.operations")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
OPERATIONS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def route_kind(path: str) -> str:
    """A small, fixed set of labels: paths themselves would explode the metric's cardinality."""
    if path.startswith("/login"):
        return "sign_in"
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/static/") or path == "/theme.css":
        return "static"
    return "page"


@functools.cache
def _latency(kind: str) -> Histogram:
    return LATENCY.labels(kind)  # a labelled child looked up once: .labels() costs more than observing


@functools.cache
def _responses(kind: str, status_class: int) -> Counter:
    return RESPONSES.labels(kind, f"{status_class}xx")


class Observability:
    """Gives each request an id (``X-Request-Id``) and records its latency and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = incoming if _REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
        token = request_id.set(rid)
        kind = route_kind(scope["path"])
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _latency(kind).observe(time.perf_counter() - started)
            _responses(kind, status // 100).inc()
            request_id.reset(token)


def _networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


class Operations:
    """The operator endpoints, answered on any host name."""

    def __init__(self, store: Store, metrics_networks: str = "127.0.0.0/8,::1/128") -> None:
        self.store = store
        self.metrics_networks = _networks(metrics_networks)
        self.sealed: SealCheck | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        response: Response
        if path == "/healthz":
            response = PlainTextResponse("ok\n", headers={"Cache-Control": "no-store"})
        elif path == "/readyz":
            checks, reasons = await self.readiness()
            # Without Redis sign-ins still work (on the database): degraded, but ready.
            ready = checks["database"] and checks["master_key"]
            status = "degraded" if ready and reasons else "ok" if ready else "unavailable"
            response = JSONResponse(
                {"ready": ready, "status": status, "checks": checks, "reasons": reasons},
                status_code=200 if ready else 503,
                headers={"Cache-Control": "no-store"},
            )
        elif self._operator(scope):
            await self.check()
            response = Response(self.metrics(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
        else:
            response = PlainTextResponse("not found\n", status_code=404)
        await response(scope, receive, send)

    def _operator(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not client:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(address in network for network in self.metrics_networks)

    async def startup(self) -> None:
        """Say at once, in the log, what this process will have to do without."""
        await self.check_master_keys()
        if await self.store.redis_answers(timeout=1.0) is False:
            log.warning(
                "Redis at %s does not answer: serving without it until it does (sessions and company "
                "settings from the database, failures counted per process, single-use links answer 503)",
                self.store.redis_address,
            )

    async def check_master_keys(self, timeout: float = 5.0) -> SealCheck | None:
        """Whether the master keys open the stored SSO keys; checked once (None: the database did not answer)."""
        if self.sealed is None:
            try:
                async with asyncio.timeout(timeout):
                    sealed = await check_sso_keys(self.store)
            except (StorageUnavailable, TimeoutError):
                return None
            self.sealed = sealed
            if not sealed.usable:
                log.error(
                    "the master key opens none of the %d stored SSO keys: no sign-in can succeed and /readyz "
                    "answers 503; set the BILLPORTAL_MASTER_KEY that sealed them (or add it to "
                    "BILLPORTAL_PREVIOUS_MASTER_KEYS)",
                    sealed.unopened,
                )
            elif sealed.unopened:
                log.warning(
                    "%d of %d stored SSO keys do not open with the configured master keys",
                    sealed.unopened,
                    sealed.opened + sealed.unopened,
                )
        return self.sealed

    async def readiness(self) -> tuple[dict[str, bool], dict[str, str]]:
        """Each check's outcome, and a reason for each that failed."""
        checks = await self.check()
        reasons: dict[str, str] = {}
        if not checks["database"]:
            reasons["database"] = "the database did not answer within a second"
        sealed = await self.check_master_keys(timeout=1.0)
        checks["master_key"] = sealed is None or sealed.usable
        if not checks["master_key"]:
            reasons["master_key"] = "the master key opens none of the stored SSO keys"
        if checks.get("redis") is False:
            reasons["redis"] = (
                "Redis did not answer (or failed recently): sign-ins and pages continue on the database; "
                "single-use links answer 503"
            )
        return checks, reasons

    async def check(self) -> dict[str, bool]:
        """Ping the database (and Redis), each bounded to a second; set the health gauges."""
        checks: dict[str, bool] = {}
        try:
            async with asyncio.timeout(1.0):
                await self.store.ping()
            checks["database"] = True
        except (StorageUnavailable, TimeoutError):
            checks["database"] = False
        DATABASE_UP.set(1 if checks["database"] else 0)
        redis = await self.store.redis_answers(timeout=1.0)
        if redis is not None:
            checks["redis"] = redis
            REDIS_UP.set(1 if redis else 0)
        in_use = self.store.connections_in_use()
        if in_use is not None:
            POOL_IN_USE.set(in_use)
        return checks

    @staticmethod
    def metrics() -> bytes:
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            # Several worker processes: add up what each one wrote.
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest()
