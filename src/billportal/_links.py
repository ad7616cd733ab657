"""Sign-in links, made the way a company's backend makes them (needs only PyJWT).

This module is part of the SDK: it must not import anything from the server.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

_DURATION = re.compile(r"(?P<count>[0-9]+)(?P<unit>[smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_BASE_URL = "http://localhost:8000"


_LOCALE = re.compile(r"[a-z]{2,3}([_-][A-Za-z0-9]{2,8})?")


def parse_duration(value: int | str) -> int:
    """Seconds from ``300``, ``"300"``, ``"5m"``, ``"1h"`` or ``"1d"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        match = _DURATION.fullmatch(str(value).strip().lower())
        if match is None:
            raise ValueError(f"not a duration: {str(value)[:20]!r} (use e.g. 300, 5m, 1h, 1d)")
        seconds = int(match["count"]) * _UNIT_SECONDS[match["unit"]]
    if not 0 < seconds <= 366 * 86400:
        raise ValueError("the lifetime must be between 1 second and 366 days")
    return seconds


def make_token(
    sso_key: str,
    customer_id: int | str,
    *,
    issuer: str = "billportal",
    ttl: int | str = 300,
    single_use: bool = False,
    kid: str | None = None,
    now: int | None = None,
    locale: str | None = None,
) -> str:
    """An HS256 JWT for ``customer_id``, as the seed product documents it.

    ``locale``: the portal's language for this sign-in (``de``, ``pt_BR``; docs/integration.md lists them).
    """
    if not sso_key:
        raise ValueError("the SSO key is empty")
    if locale is not None and not _LOCALE.fullmatch(locale):
        raise ValueError("the locale must look like de, fr or pt_BR")
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "sub": int(customer_id) if str(customer_id).isdigit() else customer_id,
        "iss": issuer,
        "iat": issued,
        "exp": issued + parse_duration(ttl),
    }
    if single_use:
        claims["jti"] = uuid.uuid4().hex
    if locale:
        claims["locale"] = locale
    headers = {"kid": kid} if kid else None
    import jwt  # here: a server process that only builds portal URLs (the mail deliverer) loads no PyJWT

    return jwt.encode(claims, sso_key, algorithm="HS256", headers=headers)


def portal_url(company: str, base_url: str = DEFAULT_BASE_URL) -> str:
    """``https://{company}.{base}`` from ``base_url`` = ``https://{base}``."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("base_url must look like https://portal.example.com")
    return f"{parts.scheme}://{company}.{parts.netloc}"


def sign_in_url(
    sso_key: str,
    company: str,
    customer_id: int | str,
    *,
    issuer: str = "billportal",
    ttl: int | str = 300,
    redirect_to: str | None = None,
    single_use: bool = False,
    base_url: str = DEFAULT_BASE_URL,
    kid: str | None = None,
    now: int | None = None,
    locale: str | None = None,
) -> str:
    """A sign-in URL for one customer: ``{portal}/login/{token}[?redirect_to=page_id]``.

    ``locale`` (``de``, ``fr``, ``pt_BR``...) goes into the token as its ``locale`` claim.
    """
    token = make_token(
        sso_key, customer_id, issuer=issuer, ttl=ttl, single_use=single_use, kid=kid, now=now, locale=locale
    )
    url = f"{portal_url(company, base_url)}/login/{quote(token, safe='')}"
    if redirect_to:
        url += "?" + urlencode({"redirect_to": redirect_to})
    return url
