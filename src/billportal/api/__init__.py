"""The REST API under ``/api/v1`` on the dashboard host: JSON in and out, API keys, stable error codes.

:func:`api_mount` is mounted by :func:`billportal.app.dashboard_router`. Its
routes come from :data:`billportal.api.operations.OPERATIONS`, as do the
OpenAPI document (``/api/v1/openapi.json``) and the reference (``/api/v1/docs``).
Every answer under ``/api/v1``, 404, 405, 500 and 503 included, is JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable

from starlette.convertors import CONVERTOR_TYPES
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from billportal.api.docs import STYLESHEET, reference
from billportal.api.errors import error_response, status_error
from billportal.api.openapi import API_PREFIX, openapi_document
from billportal.api.operations import OPERATIONS, Operation
from billportal.api.views import Api
from billportal.web.context import Context
from billportal.web.errors import ErrorGuard
from billportal.web.templates import render

__all__ = ["api_mount", "api_router"]

_PUBLIC_CACHE = {"Cache-Control": "public, max-age=300"}


def _route_path(path: str) -> str:
    return path.replace("{id}", "{id:int}")


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await error_response("not_found")(scope, receive, send)


class _AnyMethod:
    """A view as a plain ASGI app: Starlette then routes every method to it, and it answers 405 itself."""

    def __init__(self, view: Callable[[Request], Awaitable[Response]]) -> None:
        self.view = view

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.view(Request(scope, receive, send))
        await response(scope, receive, send)


def _get_only(view: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def guarded(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return error_response("method_not_allowed", headers={"Allow": "GET, HEAD"})
        return await view(request)

    return guarded


def api_router(context: Context) -> ASGIApp:
    """The API's ASGI app, to mount at ``/api/v1``."""
    api = Api(context)
    by_path: dict[str, dict[str, Operation]] = {}
    for op in OPERATIONS:
        by_path.setdefault(op.path, {})[op.method] = op
    document = json.dumps(openapi_document(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    stylesheet = STYLESHEET.read_bytes()

    async def openapi(_request: Request) -> Response:
        return Response(document, media_type="application/json", headers=_PUBLIC_CACHE)

    async def docs(_request: Request) -> Response:
        return render("api/docs.html", headers=_PUBLIC_CACHE, prefix=API_PREFIX, **reference())

    async def docs_css(_request: Request) -> Response:
        return Response(stylesheet, media_type="text/css", headers=_PUBLIC_CACHE)

    routes = [Route(_route_path(path), _AnyMethod(api.endpoint(ops))) for path, ops in by_path.items()]
    routes += [
        Route("/openapi.json", _AnyMethod(_get_only(openapi))),
        Route("/docs", _AnyMethod(_get_only(docs))),
        Route("/docs.css", _AnyMethod(_get_only(docs_css))),
    ]
    return ErrorGuard(Router(routes=routes, redirect_slashes=False, default=_not_found), answer=status_error)


def api_mount(context: Context) -> Mount:
    """``/api/v1`` on the dashboard host: every path under it, line breaks and all, gets the API's JSON answers."""
    mount = Mount(API_PREFIX, app=api_router(context))
    # Starlette's {path:path} stops at a line break, which would leave such a path to the
    # dashboard's HTML 404; the API answers every path under its prefix itself.
    mount.path_regex = re.compile(f"^{re.escape(API_PREFIX)}/(?P<path>(?s:.*))$")
    mount.param_convertors = {"path": CONVERTOR_TYPES["path"]}
    return mount
