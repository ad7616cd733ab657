"""The portal inside a company's own app: which requests are framed, and which framed sign-in is allowed.

A company lists the origins that may frame its portal (CSP ``frame-ancestors``, set in the
dashboard). A sign-in link that arrives in a frame of one of them gets its own session cookie,
``SameSite=None; Secure; Partitioned`` (CHIPS: kept per top-level site), apart from the top-level
``SameSite=Lax`` one: a request in a frame reads only the framed cookie, any other request only
the top-level one, so the two never mix (docs/embedding.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from starlette.requests import Request

from billportal.web.security import origin_of

FRAME_DESTINATIONS: Final = frozenset({"iframe", "frame"})
# A host app is another origin than the portal: the frame's first request is cross-site
# (or same-site, for an app on a sibling host). "same-origin" would be the portal framing
# itself, "none" no page at all.
_FRAMING_SITES: Final = frozenset({"cross-site", "same-site"})


def is_framed(request: Request) -> bool:
    """Whether the browser loads this request into a frame (``Sec-Fetch-Dest: iframe`` or ``frame``)."""
    return request.headers.get("sec-fetch-dest", "").strip().lower() in FRAME_DESTINATIONS


_DEFAULT_PORTS: Final = {"https": ":443", "http": ":80"}


def _normal(origin: str) -> str:
    """An origin as browsers send it: lower-case, without its scheme's default port."""
    origin = origin.lower().rstrip("/")
    scheme = origin.partition("://")[0]
    default = _DEFAULT_PORTS.get(scheme, "")
    return origin.removesuffix(default) if default else origin


def framing_origin(request: Request) -> str | None:
    """The origin of the page that frames this request, from its ``Referer`` (None: not sent or not a URL)."""
    referer = request.headers.get("referer", "")
    origin = origin_of(referer) if referer else None
    return _normal(origin) if origin else None


def framed_sign_in_allowed(request: Request, allowed: Iterable[str]) -> bool:
    """A framed sign-in is allowed only from a listed site, and only when the browser says which one.

    ``Sec-Fetch-Site`` must name another origin (cross-site or same-site) and the ``Referer``'s
    origin must be one of ``allowed``. A frame whose page sends no ``Referer`` cannot be told
    apart from any other site's, so it is refused too.
    """
    origins = {_normal(origin) for origin in allowed}
    if not origins:
        return False
    if request.headers.get("sec-fetch-site", "").strip().lower() not in _FRAMING_SITES:
        return False
    return framing_origin(request) in origins


def frame_origins(request: Request, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The origins a framed page's script may post to: the allow-list, for a framed request; else none."""
    return allowed if allowed and is_framed(request) else ()
