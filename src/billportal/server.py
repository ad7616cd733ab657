"""Running the server: uvicorn with billportal's logging and proxy settings."""

from __future__ import annotations

import logging
import logging.config
import os
import resource
import tempfile

import uvicorn
from starlette.types import ASGIApp

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


def serve(settings: Settings, *, host: str, port: int, workers: int = 1) -> int:
    """Serve until interrupted. Each worker process builds its own app from the environment."""
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
    uvicorn.run(
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
    return 0
