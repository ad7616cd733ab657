"""A new secret carried across post/redirect/get, so that it is shown once and a reload makes nothing.

The POST that makes an API key answers 303 to ``?created={id}`` and sets a
short-lived cookie holding the key sealed with the master keys (the one seal,
:mod:`billportal.core.crypto`), bound to the admin's session, the company and the
key id. The GET that follows opens it, shows the key and clears the cookie; a
reload finds no cookie and says the key was shown once. The key is in no URL,
so never in an access log; a cookie copied to another session, or naming another
key, does not open.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from billportal.core.config import Settings
from billportal.core.crypto import MasterKeys, Sealed, SealError
from billportal.web import sessions

SHOWN_ONCE_SECONDS: Final = 300


def cookie_name(settings: Settings) -> str:
    # __Host-: only over https, host-only, Path=/; the plain name is for http development.
    return "__Host-bp_shown_once" if settings.cookie_secure else "bp_shown_once"


def _purpose(session_hash: bytes, key_id: int, kind: str) -> str:
    return f"{kind}-shown-once:session:{session_hash.hex()}:key:{key_id}"


def carry(
    response: Response,
    settings: Settings,
    master_keys: MasterKeys,
    *,
    secret: str,
    session_hash: bytes,
    company_id: int,
    key_id: int,
    now: int,
    kind: str = "api-key",
) -> None:
    """Set the cookie that takes ``secret`` to the page after the redirect (for at most five minutes)."""
    payload = f"{now + SHOWN_ONCE_SECONDS}:{secret}".encode()
    sealed = master_keys.seal(payload, _purpose(session_hash, key_id, kind), company_id)
    response.headers.append(
        "set-cookie",
        sessions.cookie_header(
            cookie_name(settings), sealed.as_text(), secure=settings.cookie_secure, max_age=SHOWN_ONCE_SECONDS
        ),
    )


def take(
    request: Request,
    settings: Settings,
    master_keys: MasterKeys,
    *,
    session_hash: bytes,
    company_id: int,
    key_id: int,
    now: int,
    kind: str = "api-key",
) -> str | None:
    """The secret carried for this session and key, if it is still fresh (then :func:`forget` the cookie)."""
    raw = request.cookies.get(cookie_name(settings))
    if raw is None:
        return None
    try:
        opened = master_keys.unseal(Sealed.from_text(raw), _purpose(session_hash, key_id, kind), company_id)
    except SealError:
        return None
    until, _, secret = opened.decode("utf-8", "replace").partition(":")
    if not until.isdigit() or now >= int(until) or not secret:
        return None
    return secret


def forget(request: Request, response: Response, settings: Settings) -> None:
    """Clear the cookie on the page that showed (or would have shown) the secret: a reload shows nothing."""
    name = cookie_name(settings)
    if name in request.cookies:
        response.headers.append("set-cookie", sessions.clear_cookie_header(name, secure=settings.cookie_secure))
