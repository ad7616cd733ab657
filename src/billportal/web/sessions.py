"""Sessions: random ids, their hashes, timeouts and the cookie (customers' and, apart, admins')."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol


class SessionLike(Protocol):
    """What these helpers read of a customer's or an admin's session."""

    @property
    def csrf_token(self) -> str: ...
    @property
    def last_seen_at(self) -> int: ...
    @property
    def expires_at(self) -> int: ...


SESSION_ID_BYTES = 32  # 256 bits
TOUCH_INTERVAL = 60  # seconds between writes of last_seen_at, at most
PRUNE_INTERVAL = 10 * 60  # seconds between deletions of the sessions that are over, in each process


def new_session_id() -> str:
    """A new 256-bit session id, as it goes into the cookie."""
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def hash_session_id(session_id: str) -> bytes:
    """What the database keeps: SHA-256 of the id, so a dump holds no usable cookie."""
    return hashlib.sha256(session_id.encode("ascii", "replace")).digest()


def csrf_matches(session: SessionLike, submitted: str) -> bool:
    return same_token(session.csrf_token, submitted)


def same_token(expected: str, submitted: str) -> bool:
    """A constant-time comparison of a token we issued with one a form sent back."""
    return hmac.compare_digest(expected.encode(), submitted.encode("utf-8", "replace"))


@dataclass(frozen=True, slots=True)
class Timeouts:
    idle: int
    absolute: int


def is_live(session: SessionLike, now: int, timeouts: Timeouts) -> bool:
    """Whether a session is neither past its absolute end nor idle too long."""
    return now < session.expires_at and now - session.last_seen_at < timeouts.idle


def touch_interval(timeouts: Timeouts) -> int:
    """Seconds between writes of last_seen_at: well below the idle timeout, so a session in use never idles out."""
    return max(1, min(TOUCH_INTERVAL, timeouts.idle // 4))


def needs_touch(session: SessionLike, now: int, timeouts: Timeouts) -> bool:
    return now - session.last_seen_at >= touch_interval(timeouts)


def cookie_header(name: str, value: str, *, secure: bool, max_age: int, framed: bool = False) -> str:
    """A host-only session cookie: no Domain, Path=/, HttpOnly, SameSite=Lax, Secure.

    ``framed``: the cookie of a sign-in in an allowed frame (docs/embedding.md):
    ``SameSite=None; Secure; Partitioned``, which the browser keeps for that frame's
    top-level site only (CHIPS). It is always Secure: browsers keep no other SameSite=None cookie.
    """
    if framed:
        return f"{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=None; Secure; Partitioned"
    flags = f"{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
    return flags + "; Secure" if secure else flags


def clear_cookie_header(name: str, *, secure: bool, framed: bool = False) -> str:
    """Forgets the cookie (a partitioned one only goes with a Set-Cookie that says Partitioned too)."""
    return cookie_header(name, "", secure=secure, max_age=0, framed=framed)
