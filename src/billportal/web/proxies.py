"""Forwarded headers, believed only from the proxies named in ``BILLPORTAL_TRUSTED_PROXIES``.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are handled by uvicorn's own
middleware; ``X-Forwarded-Host`` (which chooses the company!) is handled here,
before that middleware replaces the peer address with the forwarded one. From
anyone else all three are ignored.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware


class TrustedProxies:
    def __init__(self, app: ASGIApp, trusted: tuple[str, ...]) -> None:
        self.trusted = list(trusted)
        self.forwarded = ProxyHeadersMiddleware(app, trusted_hosts=self.trusted)  # type: ignore[arg-type]
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.trusted or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        if client and client[0] in self.forwarded.trusted_hosts:
            forwarded_host = None
            for name, value in scope["headers"]:
                if name == b"x-forwarded-host":
                    # The nearest proxy appends last: its value is the one we trust.
                    forwarded_host = value.split(b",")[-1].strip()
            if forwarded_host:
                scope["headers"] = [(n, v) for n, v in scope["headers"] if n != b"host"] + [(b"host", forwarded_host)]
        await self.forwarded(scope, receive, send)  # type: ignore[arg-type]
