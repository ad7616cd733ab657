"""Security headers on every answer, and the Content-Security-Policy of each page."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BASE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; object-src 'none'"
)
DEFAULT_CSP = f"{_BASE_CSP}; form-action 'self'; frame-ancestors 'none'"
# The only source expressions a company's settings may add to a policy: nothing
# that could end a directive (";"), add a keyword ('unsafe-inline') or a scheme.
_SOURCE = re.compile(r"'self'|https?://(?:\*\.)?[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?", re.IGNORECASE)


def origin_of(url: str) -> str | None:
    """The scheme://host[:port] of an absolute http(s) URL, or None."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not hostname:
        return None
    origin = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
    return origin if _SOURCE.fullmatch(origin) else None


def content_security_policy(
    form_targets: Iterable[str] = (),
    frame_ancestors: Iterable[str] = (),
    gateway_urls: Iterable[str] = (),
    *,
    frame_script: bool = False,
) -> str:
    """A strict policy: no inline script or style, forms only to ourselves and named origins.

    ``form_targets`` are URLs a form may end up at (a sign-out URL that the
    sign-out POST redirects to: browsers apply form-action to redirects too).
    ``gateway_urls`` (the payment pages of a company that takes cards through a
    gateway's own script, and only those) are the origins whose script, frames and
    requests the page may use, beside our own script. ``frame_script``: the page is
    framed by an allowed site and loads our own script that tells the host page where it
    is (``static/framed.js``, docs/embedding.md): ``script-src 'self'``, nothing inline.
    """
    forms = " ".join(["'self'", *sorted({o for o in map(origin_of, form_targets) if o})])
    ancestors = " ".join(sorted({source for source in frame_ancestors if _SOURCE.fullmatch(source)})) or "'none'"
    policy = f"{_BASE_CSP}; form-action {forms}; frame-ancestors {ancestors}"
    gateway = " ".join(sorted({o for o in map(origin_of, gateway_urls) if o}))
    if gateway:
        policy += f"; script-src 'self' {gateway}; frame-src {gateway}; connect-src {gateway}"
    elif frame_script:
        policy += "; script-src 'self'"
    return policy


# The headers every answer carries; a view may set its own CSP and referrer policy (_OWN).
EVERY_ANSWER: Final = (
    (b"content-security-policy", DEFAULT_CSP.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
)
_OWN: Final = frozenset({b"content-security-policy", b"referrer-policy"})


class SecurityHeaders:
    """Adds the headers every answer carries, unless the view set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in EVERY_ANSWER if name not in present or name not in _OWN]
                if https:
                    headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
