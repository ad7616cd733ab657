"""Queries for webhooks: endpoints, the outbox of events, deliveries and the delivery log.

An event goes into the outbox (``webhook_events``) in the transaction of the change that
caused it, with one delivery row per endpoint that wants it. Deliverers claim due rows
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite writes one at a time) and lease them
for a while, so that no two processes send one delivery at once; an object's events go
to an endpoint in order (a delivery waits while an earlier one of its object is pending).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, Row, Table, and_, delete, exists, insert, select, update

from billportal.storage import schema as t
from billportal.storage.bounds import fits
from billportal.storage.records import WebhookAttempt, WebhookDelivery, WebhookEndpoint

RESPONSE_HEAD_BYTES = 512


def _record(cls: Any, row: Row[Any] | Any) -> Any:
    mapping = row._mapping
    return cls(**{f.name: mapping[f.name] for f in fields(cls)})


def new_event_id() -> str:
    """The event's id, sent as ``webhook-id``: receivers use it to process each event once."""
    return "msg_" + secrets.token_urlsafe(18)


# -- endpoints


def endpoints(conn: Connection, company_id: int) -> list[WebhookEndpoint]:
    c = t.webhook_endpoints.c
    rows = conn.execute(select(t.webhook_endpoints).where(c.company_id == company_id).order_by(c.id))
    return [_record(WebhookEndpoint, row) for row in rows]


def endpoint(conn: Connection, company_id: int, endpoint_id: int, *, lock: bool = False) -> WebhookEndpoint | None:
    c = t.webhook_endpoints.c
    if not fits(c.id, endpoint_id):
        return None
    query = select(t.webhook_endpoints).where(c.company_id == company_id, c.id == endpoint_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else _record(WebhookEndpoint, row)


def insert_endpoint(conn: Connection, values: Mapping[str, Any]) -> int:
    endpoint_id: int = conn.execute(
        insert(t.webhook_endpoints).values(**values).returning(t.webhook_endpoints.c.id)
    ).scalar_one()
    return endpoint_id


def update_endpoint(conn: Connection, company_id: int, endpoint_id: int, values: Mapping[str, Any]) -> None:
    c = t.webhook_endpoints.c
    conn.execute(update(t.webhook_endpoints).where(c.company_id == company_id, c.id == endpoint_id).values(**values))


def delete_endpoint(conn: Connection, company_id: int, endpoint_id: int) -> bool:
    c = t.webhook_endpoints.c
    d = t.webhook_deliveries.c
    # Its deliveries (and their attempts, by cascade) go with it; SQLite enforces no cascade unless asked.
    conn.execute(delete(t.webhook_attempts).where(t.webhook_attempts.c.endpoint_id == endpoint_id))
    conn.execute(delete(t.webhook_deliveries).where(d.endpoint_id == endpoint_id, d.company_id == company_id))
    return bool(
        conn.execute(delete(t.webhook_endpoints).where(c.company_id == company_id, c.id == endpoint_id)).rowcount
    )


def subscribers(conn: Connection, company_id: int) -> list[tuple[int, tuple[str, ...]]]:
    """The company's enabled endpoints with the event types each wants (one indexed read)."""
    c = t.webhook_endpoints.c
    rows = conn.execute(select(c.id, c.event_types).where(c.company_id == company_id, c.enabled.is_(True)))
    return [(row.id, tuple(row.event_types.split())) for row in rows]


def sealed_secrets(conn: Connection) -> list[tuple[int, int, str, str]]:
    """Every stored signing secret: (endpoint id, company id, column, sealed text), for master key rotation."""
    c = t.webhook_endpoints.c
    found = []
    for row in conn.execute(select(c.id, c.company_id, c.secret_sealed, c.previous_secret_sealed)):
        found.append((row.id, row.company_id, "secret_sealed", row.secret_sealed))
        if row.previous_secret_sealed:
            found.append((row.id, row.company_id, "previous_secret_sealed", row.previous_secret_sealed))
    return found


def reseal_secret(conn: Connection, endpoint_id: int, column: str, old: str, new: str) -> None:
    c = t.webhook_endpoints.c
    conn.execute(update(t.webhook_endpoints).where(c.id == endpoint_id, c[column] == old).values({column: new}))


# -- the outbox


def record_event(
    conn: Connection,
    company_id: int,
    endpoint_ids: Sequence[int],
    *,
    event_type: str,
    object_kind: str,
    object_id: str,
    payload: Callable[[str], Mapping[str, Any]],
    now: int,
) -> str:
    """Put an event in the outbox with one delivery per endpoint; returns its id. ``payload(event_id)`` is the body."""
    event_id = new_event_id()
    body = json.dumps(payload(event_id), ensure_ascii=False, separators=(",", ":"), default=str)
    row_id: int = conn.execute(
        insert(t.webhook_events)
        .values(
            company_id=company_id,
            event_id=event_id,
            type=event_type,
            object_kind=object_kind,
            object_id=object_id,
            payload=body,
            created_at=now,
        )
        .returning(t.webhook_events.c.id)
    ).scalar_one()
    conn.execute(
        insert(t.webhook_deliveries),
        [
            {
                "company_id": company_id,
                "endpoint_id": endpoint_id,
                "event_id": row_id,
                "object_key": f"{object_kind}:{object_id}"[:100],
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "locked_until": 0,
                "created_at": now,
                "updated_at": now,
            }
            for endpoint_id in endpoint_ids
        ],
    )
    return event_id


def events(conn: Connection, company_id: int, limit: int = 1000) -> list[tuple[str, str, str]]:
    """The company's events in the outbox, oldest first: (event id, type, JSON body)."""
    c = t.webhook_events.c
    rows = conn.execute(
        select(c.event_id, c.type, c.payload).where(c.company_id == company_id).order_by(c.id).limit(limit)
    )
    return [(row.event_id, row.type, row.payload) for row in rows]


# -- delivering


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery leased to this process: what to send, where, and with which secrets."""

    delivery_id: int
    company_id: int
    endpoint_id: int
    url: str
    secret_sealed: str
    previous_secret_sealed: str
    previous_until: int | None
    event_id: str
    payload: str
    attempts: int
    created_at: int


def anything_due(conn: Connection, now: int) -> bool:
    """Whether a pending delivery is due (a read, so that an idle deliverer takes no write lock)."""
    return due_in(conn, t.webhook_deliveries, now)


def due_in(conn: Connection, queue: Table, now: int) -> bool:
    """Whether a leased queue (webhook deliveries, mail) has a pending row due and not leased now."""
    q = queue.c
    due = select(q.id).where(q.state == "pending", q.next_attempt_at <= now, q.locked_until <= now).limit(1)
    return conn.execute(due).first() is not None


def claim(conn: Connection, *, now: int, limit: int, lease: int) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries, the oldest first; none whose object has an earlier one pending."""
    d, e, ev = t.webhook_deliveries.c, t.webhook_endpoints.c, t.webhook_events.c
    earlier = t.webhook_deliveries.alias()
    waits = exists().where(
        earlier.c.endpoint_id == d.endpoint_id,
        earlier.c.object_key == d.object_key,
        earlier.c.state == "pending",
        earlier.c.id < d.id,
    )
    due = (
        select(d.id)
        .where(d.state == "pending", d.next_attempt_at <= now, d.locked_until <= now, ~waits)
        .where(exists().where(e.id == d.endpoint_id, e.enabled.is_(True)))
        .order_by(d.next_attempt_at, d.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(conn.execute(due).scalars())
    if not ids:
        return []
    conn.execute(update(t.webhook_deliveries).where(d.id.in_(ids)).values(locked_until=now + lease))
    rows = conn.execute(
        select(
            d.id,
            d.company_id,
            d.endpoint_id,
            d.attempts,
            d.created_at,
            e.url,
            e.secret_sealed,
            e.previous_secret_sealed,
            e.previous_until,
            ev.event_id,
            ev.payload,
        )
        .join(t.webhook_endpoints, e.id == d.endpoint_id)
        .join(t.webhook_events, ev.id == d.event_id)
        .where(d.id.in_(ids))
        .order_by(d.id)
    )
    return [
        Claimed(
            delivery_id=row.id,
            company_id=row.company_id,
            endpoint_id=row.endpoint_id,
            url=row.url,
            secret_sealed=row.secret_sealed,
            previous_secret_sealed=row.previous_secret_sealed,
            previous_until=row.previous_until,
            event_id=row.event_id,
            payload=row.payload,
            attempts=row.attempts,
            created_at=row.created_at,
        )
        for row in rows
    ]


def finish(
    conn: Connection,
    claimed: Claimed,
    *,
    now: int,
    status_code: int | None,
    duration_ms: int,
    error: str,
    response_head: str,
    state: str,
    next_attempt_at: int,
) -> None:
    """Log the attempt and move the delivery to ``state`` (pending again: tried at ``next_attempt_at``)."""
    conn.execute(
        insert(t.webhook_attempts).values(
            delivery_id=claimed.delivery_id,
            endpoint_id=claimed.endpoint_id,
            at=now,
            status_code=status_code,
            duration_ms=duration_ms,
            error=error[:200],
            response_head=response_head,
        )
    )
    d = t.webhook_deliveries.c
    conn.execute(
        update(t.webhook_deliveries)
        .where(d.id == claimed.delivery_id)
        .values(
            state=state,
            attempts=d.attempts + 1,
            next_attempt_at=next_attempt_at,
            locked_until=0,
            last_status=status_code,
            updated_at=now,
        )
    )


def endpoint_result(conn: Connection, endpoint_id: int, *, ok: bool, now: int, disable_after: int) -> bool:
    """Note the endpoint's success or failure; disabled after failing ``disable_after`` seconds (True: just now)."""
    c = t.webhook_endpoints.c
    if ok:
        conn.execute(
            update(t.webhook_endpoints)
            .where(c.id == endpoint_id, c.failing_since.is_not(None))
            .values(failing_since=None)
        )
        return False
    conn.execute(
        update(t.webhook_endpoints).where(c.id == endpoint_id, c.failing_since.is_(None)).values(failing_since=now)
    )
    reason = "every delivery failed for three days: fix the receiver, then enable the endpoint again"
    disabled = conn.execute(
        update(t.webhook_endpoints)
        .where(c.id == endpoint_id, c.enabled.is_(True), c.failing_since <= now - disable_after)
        .values(enabled=False, disabled_reason=reason, updated_at=now)
    ).rowcount
    return bool(disabled)


# -- the delivery log


def deliveries(
    conn: Connection, company_id: int, endpoint_id: int, *, limit: int, before_id: int | None = None
) -> list[WebhookDelivery]:
    """The endpoint's deliveries, newest first."""
    d, ev = t.webhook_deliveries.c, t.webhook_events.c
    query = (
        select(
            d.id,
            d.endpoint_id,
            ev.event_id,
            ev.type,
            d.object_key,
            d.state,
            d.attempts,
            d.next_attempt_at,
            d.last_status,
            d.created_at,
            d.updated_at,
        )
        .join(t.webhook_events, ev.id == d.event_id)
        .where(d.company_id == company_id, d.endpoint_id == endpoint_id)
        .order_by(d.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(d.id < before_id)
    return [_record(WebhookDelivery, row) for row in conn.execute(query)]


def attempts(conn: Connection, delivery_ids: Sequence[int]) -> dict[int, list[WebhookAttempt]]:
    """Each delivery's attempts, oldest first."""
    a = t.webhook_attempts.c
    found: dict[int, list[WebhookAttempt]] = {delivery_id: [] for delivery_id in delivery_ids}
    if delivery_ids:
        rows = conn.execute(select(t.webhook_attempts).where(a.delivery_id.in_(list(delivery_ids))).order_by(a.id))
        for row in rows:
            found[row.delivery_id].append(_record(WebhookAttempt, row))
    return found


def redeliver(
    conn: Connection,
    company_id: int,
    endpoint_id: int,
    *,
    now: int,
    event_id: str | None = None,
    failed_since: int | None = None,
) -> int:
    """Send again one event (by its id) or every failed one since a time; returns how many will go."""
    d, ev = t.webhook_deliveries.c, t.webhook_events.c
    where = [d.company_id == company_id, d.endpoint_id == endpoint_id]
    if event_id is not None:
        where.append(d.event_id.in_(select(ev.id).where(ev.event_id == event_id, ev.company_id == company_id)))
        where.append(d.state != "pending")
    else:
        where += [d.state == "failed", d.updated_at >= (failed_since or 0)]
    count = conn.execute(
        update(t.webhook_deliveries)
        .where(and_(*where))
        .values(state="pending", next_attempt_at=now, locked_until=0, created_at=now, updated_at=now)
    ).rowcount
    return int(count)
