"""The server's own URLs (from the settings, never from the Host header), and URLs a company configured."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.requests import Request

from billportal.core.config import Settings
from billportal.web.hosts import host_port


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` appended to whatever query it already has."""
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def base_url(request: Request, settings: Settings) -> str:
    """``{scheme}://{base domain}[:port]``: what portal links and the API's own origin are built from.

    The host is always the configured base domain. Only the scheme the request came
    by (https from a trusted proxy) and a port written as digits are taken from the
    request, so that a Host header such as ``dashboard.example:@evil.example`` can
    never lend a link its host.
    """
    scheme = request.url.scheme if request.url.scheme in ("http", "https") else "https"
    port = host_port(request.headers.get("host", ""))
    default = 443 if scheme == "https" else 80
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{scheme}://{settings.base_domain}{suffix}"


def origin_of(site: str, request: Request, settings: Settings) -> str:
    """The origin of one of the server's sites, such as ``https://dashboard.{base domain}``."""
    scheme, _, rest = base_url(request, settings).partition("://")
    return f"{scheme}://{site}.{rest}"
