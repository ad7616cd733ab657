"""Running the server: uvicorn with billportal's logging and proxy settings."""

from __future__ import annotations

import gc
import logging
import logging.config
import os
import resource
import tempfile
import time
from socket import socket

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from billportal.app import create_app
from billportal.core.config import Settings
from billportal.storage import open_store
from billportal.web.logging import log_config
from billportal.web.protocol import MAX_HEAD_BYTES, limits

log = logging.getLogger("billportal.server")


def raise_file_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard limit (each connection is one); (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft in (hard, resource.RLIM_INFINITY):
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return soft, soft
    return soft, hard


FIRST_DELAY = 0.5
LONGEST_DELAY = 30.0
HEALTHY_AFTER = 60.0  # seconds alive after which a death is no longer "in a row"


class BackoffSupervisor(Multiprocess):
    """uvicorn's supervisor, but a dead worker is restarted after a delay that doubles while it keeps dying.

    uvicorn starts a dead worker again at once, so a worker that keeps dying is
    restarted twice a second, each time with a traceback. Here the delay goes
    0.5 s, 1 s, 2 s ... up to 30 s, and starts over once a worker has lived a
    minute; a worker that could not start at all stops the supervisor, as in uvicorn.
    """

    def __init__(self, config: Config, sockets: list[socket]) -> None:
        super().__init__(config, sockets)
        self._deaths = [0] * self.processes_num
        self._started = [time.monotonic()] * self.processes_num
        self._restart_at: dict[int, float] = {}

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        now = time.monotonic()
        for idx, process in enumerate(self.processes):
            restart_at = self._restart_at.get(idx)
            if restart_at is not None:
                if now >= restart_at:
                    del self._restart_at[idx]
                    self._start(idx, now)
                continue
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error("worker [%s] could not start; stopping", process.pid)
                self.should_exit.set()
                return
            if now - self._started[idx] > HEALTHY_AFTER:
                self._deaths[idx] = 0
            self._deaths[idx] += 1
            delay = min(LONGEST_DELAY, FIRST_DELAY * 2 ** (self._deaths[idx] - 1))
            log.warning(
                "worker [%s] exited (status %s); starting another in %.1f s", process.pid, process.exitcode, delay
            )
            self._restart_at[idx] = now + delay

    def _start(self, idx: int, now: float) -> None:
        process = Process(self.config, self.sockets)
        process.start()
        self.processes[idx] = process
        self._started[idx] = now


def serve(settings: Settings, *, host: str, port: int, workers: int = 1) -> int:
    """Serve until interrupted. Each worker process builds its own app from the environment."""
    if settings.base_domain == "localhost" and not os.environ.get("BILLPORTAL_PUBLIC_URL"):
        # Links and hints name the port this server listens on (workers read it from the environment).
        os.environ["BILLPORTAL_PUBLIC_URL"] = f"http://localhost:{port}"
    # A database that is down, a damaged file, a bad setting: one line from the CLI,
    # before anything is logged, and with --workers N once rather than in every worker
    # (the migrations run here once, too).
    app: ASGIApp | str
    if workers > 1:
        open_store(settings).close()
        app = "billportal.app:create_app"  # each worker builds its own
    else:
        app = create_app()
    logging_config = log_config(access_log=settings.access_log, json_format=settings.log_format == "json")
    logging.config.dictConfig(logging_config)
    before, after = raise_file_limit()
    _, max_connections = limits()
    log.info(
        "open files: limit %s%s; at most %d connections and %d requests in progress per process",
        after,
        f" (raised from {before})" if after != before else "",
        max_connections,
        settings.max_in_flight,
    )
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker writes its metrics here; /metrics adds them up.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="billportal-metrics-")
    config = Config(
        app,
        factory=workers > 1,
        host=host,
        port=port,
        workers=workers,
        log_config=logging_config,
        access_log=settings.access_log,
        # Forwarded headers are handled by the app (web/proxies.py), from trusted proxies only.
        proxy_headers=False,
        server_header=False,
        date_header=True,
        timeout_graceful_shutdown=10,
        # httptools, with the bound on a request's head that it lacks (web/protocol.py).
        http="billportal.web.protocol:BoundedHttpToolsProtocol",
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )
    # `billportal serve` loads with the collector off (cli/server.py): what loading built lives on.
    gc.freeze()
    gc.enable()
    if workers > 1:
        BackoffSupervisor(config, sockets=[config.bind_socket()]).run()
        return 0
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
