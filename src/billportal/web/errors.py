"""Friendly error pages, and the guard that turns any failure into one."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billportal.core import i18n
from billportal.core.crypto import SealError
from billportal.core.errors import StorageUnavailable
from billportal.core.i18n import N_
from billportal.web.logging import redact_all
from billportal.web.templates import render

log = logging.getLogger("billportal.errors")

_TITLES = {
    400: (N_("Bad request"), N_("The request could not be understood.")),
    401: (N_("Sign-in needed"), N_("Please sign in again.")),
    403: (N_("Not allowed"), N_("This request was refused.")),
    404: (N_("Page not found"), N_("There is nothing at this address.")),
    405: (N_("Not allowed"), N_("This address does not accept that kind of request.")),
    413: (N_("Too large"), N_("The request is larger than this page accepts.")),
    414: (N_("Address too long"), N_("The address is longer than any page of this site.")),
    431: (N_("Request too large"), N_("The request's headers are larger than this site accepts.")),
    429: (N_("Too many attempts"), N_("Please wait a moment, then try again.")),
    500: (N_("Something went wrong"), N_("The error has been logged. Please try again in a moment.")),
    503: (N_("Temporarily unavailable"), N_("The service is busy or restarting. Please try again in a moment.")),
}


def error_page(status_code: int, message: str | None = None, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The error page, in the request's language (a message passed in is looked up in the catalogs too)."""
    title, default = _TITLES.get(status_code, (N_("Error"), N_("The request could not be completed.")))
    text = i18n.gettext(message or default)
    return render(
        "error.html", status_code=status_code, headers=headers, title=i18n.gettext(title), message=text, company=None
    )


class ErrorGuard:
    """Never a traceback to the client: a storage outage is a 503, a bug a 500; both logged with their cause.

    ``answer`` makes the error response (the HTML error page; the API's is JSON).
    """

    def __init__(self, app: ASGIApp, answer: Callable[..., Response] = error_page) -> None:
        self.app = app
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except StorageUnavailable as exc:
            log.warning(
                "storage unavailable on %s %s: %s; answered 503", scope.get("method"), _path_for_log(scope), _cause(exc)
            )
            if not started:
                await self.answer(503, headers={"Retry-After": "5"})(scope, receive, send)
        except SealError as exc:
            # The server's configuration, not the request: /readyz says so too.
            log.error(  # noqa: TRY400 - the message says what to fix; the traceback would not
                "a stored secret did not open on %s %s: %s; answered 503 (check BILLPORTAL_MASTER_KEY)",
                scope.get("method"),
                _path_for_log(scope),
                exc,
            )
            if not started:
                await self.answer(503, headers={"Retry-After": "5"})(scope, receive, send)
        except MultiPartException:
            # A form body over its limits (fields, sizes) or malformed: the client's fault.
            if not started:
                await self.answer(400)(scope, receive, send)
        except HTTPException as exc:
            if not started:
                await self.answer(exc.status_code if 400 <= exc.status_code < 500 else 500)(scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: a page, never a traceback
            # A bug: logged with its cause and its traceback, redacted of anything token- or key-shaped.
            log.error(  # noqa: TRY400 - the traceback is in the message, redacted; exc_info would print it raw
                "unhandled %s on %s %s\n%s",
                type(exc).__name__,
                scope.get("method"),
                _path_for_log(scope),
                redact_all("".join(traceback.format_exception(exc))),
            )
            if not started:
                await self.answer(500)(scope, receive, send)


def _cause(exc: StorageUnavailable) -> str:
    """What made the storage unavailable, in one line: ``the database could not be read (OperationalError: ...)``."""
    cause = exc.__cause__
    if cause is None:
        return str(exc)
    detail = redact_all(str(getattr(cause, "orig", None) or cause).split("\n", 1)[0])[:300]
    return f"{exc} ({type(getattr(cause, 'orig', None) or cause).__name__}: {detail})"


def _path_for_log(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    return "/login/[redacted]" if path.startswith("/login/") else path
