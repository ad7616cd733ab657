"""Running the server: uvicorn with billportal's logging and proxy settings."""

from __future__ import annotations

import uvicorn

from billportal.config import Settings
from billportal.web.logging import log_config


def serve(settings: Settings, *, host: str, port: int, workers: int = 1) -> int:
    """Serve until interrupted. Each worker process builds its own app from the environment."""
    uvicorn.run(
        "billportal.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=log_config(access_log=settings.access_log),
        access_log=settings.access_log,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        server_header=False,
        date_header=True,
        timeout_graceful_shutdown=10,
        h11_max_incomplete_event_size=16 * 1024,
    )
    return 0
