"""What each API operation declares (``@api_key(scope=...)``) and the checks that enforce it, in one place.

Each operation needs its scope (``services.api_keys.SCOPES``), chosen when the key
was made: a key without ``sso_keys`` can neither read nor rotate the SSO keys.

A browser can be made to send a request to the API by any page it visits (a
form posted as ``text/plain``), and with credentials it cached. So every
operation refuses a POST, PATCH or DELETE that says it comes from another site
(``Origin`` other than the API's own, built from the settings; ``Sec-Fetch-Site:
cross-site``), and a body that is not ``application/json``, which no form can
send. Programs send neither header, so they are not affected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from starlette.requests import Request

from billportal.api.errors import ApiError
from billportal.core.config import Settings
from billportal.services.api_keys import SCOPES
from billportal.storage.records import ApiCaller
from billportal.web.guards import SCOPE_AREAS, Guard, declare
from billportal.web.urls import origin_of

UNSAFE_METHODS: Final = frozenset({"POST", "PATCH", "DELETE", "PUT"})
_JSON: Final = "application/json"

View = TypeVar("View", bound=Callable[..., Awaitable[Any]])


def api_key(*, scope: str) -> Callable[[View], View]:
    """The operation needs an API key with ``scope``, a same-site (or non-browser) request and a JSON body.

    Its area (``web.guards.SCOPE_AREAS``) is the scope's: the dashboard's part of the company it automates.
    """
    if scope not in SCOPES or scope not in SCOPE_AREAS:
        raise ValueError(f"unknown API key scope {scope!r} (services.api_keys.SCOPES, web.guards.SCOPE_AREAS)")
    guard = Guard("api_key", same_origin=True, json_body=True, scope=scope, area=SCOPE_AREAS[scope])

    def decorate(view: View) -> View:
        declare(view, guard)
        return view

    return decorate


def check_request(request: Request, guard: Guard, settings: Settings) -> None:
    """Refuse, before the key is even looked up, what a cross-site page could have made a browser send."""
    method = request.method
    if guard.same_origin and method in UNSAFE_METHODS:
        origin = request.headers.get("origin")
        fetch_site = request.headers.get("sec-fetch-site", "").strip().lower()
        if fetch_site == "cross-site" or (origin is not None and origin != origin_of("dashboard", settings)):
            raise ApiError("cross_site_request")
    if guard.json_body and (method in ("POST", "PATCH", "PUT") or _has_body(request)):
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != _JSON:
            raise ApiError("unsupported_media_type")


def check_scope(caller: ApiCaller, guard: Guard) -> None:
    """The key must hold the scope the operation declared."""
    if guard.scope not in caller.scopes:
        raise ApiError("insufficient_scope", f"This API key does not have the {guard.scope} scope.")


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return "transfer-encoding" in request.headers or (length is not None and length.strip() not in ("", "0"))
