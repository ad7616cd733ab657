"""A customer's live sessions for their Security page, each named by a handle that is neither its id nor its hash."""

from __future__ import annotations

import hashlib

from billportal.storage import sessions as queries
from billportal.storage.records import Company, Session, SessionInfo
from billportal.web import sessions
from billportal.web.context import Context


def handle_of(id_hash: bytes) -> str:
    """A session's name in the page's forms: a hash of its hash, useless as a cookie or as a lookup key."""
    return hashlib.sha256(b"billportal session handle:" + id_hash).hexdigest()[:32]


async def _live(context: Context, company: Company, current: Session) -> list[tuple[bytes, SessionInfo]]:
    now = context.clock()
    rows = await context.store.read(
        lambda conn: queries.of_customer(conn, company.id, current.customer_id, current.contact_id)
    )
    found = []
    for row in rows:
        session = Session(
            row.id_hash, company.id, current.customer_id, "", row.created_at, row.last_seen_at, row.expires_at
        )
        cut_off = company.session_cutoff is not None and row.created_at <= company.session_cutoff
        if cut_off or not sessions.is_live(session, now, context.timeouts):
            continue
        is_current = row.id_hash == current.id_hash
        last_seen = now if is_current else row.last_seen_at
        info = SessionInfo(handle_of(row.id_hash), row.device, row.created_at, last_seen, is_current)
        found.append((row.id_hash, info))
    found.sort(key=lambda pair: (not pair[1].current, -pair[1].last_seen_at))
    return found


async def live_sessions(context: Context, company: Company, current: Session) -> list[SessionInfo]:
    """The customer's sessions that are still live, this one first, then the most recently seen."""
    return [info for _, info in await _live(context, company, current)]


async def end(context: Context, company: Company, current: Session, handles: set[str] | None) -> int:
    """End the customer's sessions named by ``handles`` (None: every one but this), never this one."""
    chosen = [
        id_hash
        for id_hash, info in await _live(context, company, current)
        if not info.current and (handles is None or info.handle in handles)
    ]
    ended = await context.store.write(
        lambda conn: queries.end(conn, company.id, current.customer_id, chosen, current.contact_id)
    )
    cache = context.store.session_cache
    if cache is not None:
        for id_hash in chosen:
            await cache.drop(id_hash)
    return ended
