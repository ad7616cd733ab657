"""The server's own URLs (from the settings, never from the Host header), and URLs a company configured."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from billportal._links import portal_url
from billportal.core.config import Settings


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` appended to whatever query it already has."""
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def origin_of(site: str, settings: Settings) -> str:
    """The origin of one of the server's sites, such as ``https://dashboard.{base domain}``.

    Built from the configured public URL (``Settings.base_url``), never from a request's
    Host header, so that ``Host: dashboard.example:@evil.example`` can lend it nothing.
    """
    return portal_url(site, settings.base_url)
