"""URLs a company configured, with billportal's own query parameters added."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` appended to whatever query it already has."""
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
