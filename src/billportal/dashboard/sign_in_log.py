"""The sign-in log as the dashboard reads it: pages and a CSV export, bounded work at any depth.

Filters by customer or on failures (by result or reason) are ranges of the
indexes in ``schema.py``, exact at any depth. The one filter without an index,
successes of every customer, would make every sign-in pay to write one: it
scans the company's events newest first, a window of ``SCAN_WINDOW`` at a time,
so that no single query holds the database (and, for the embedded build, the
event loop) for long. The page then offers to search the next window; the CSV
export walks every window.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Final

from billportal.core.clock import iso_utc
from billportal.dashboard.forms import LogFilters
from billportal.services import contacts
from billportal.storage.records import SignInEvent
from billportal.storage.store import Store

SCAN_WINDOW: Final = 20_000
COLUMNS: Final = (
    "time",
    "result",
    "reason",
    "customer_id",
    "issuer",
    "kid",
    "ip",
    "user_agent",
    "event_id",
    "method",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection):
# such a cell gets a leading apostrophe, which shows it as text.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r", "\n")


def indexed(filters: LogFilters) -> bool:
    """Whether the filters are an index range (no filter, one customer, or failures only)."""
    failures_only = filters.result == "failure" or (filters.reason is not None and filters.reason != "ok")
    return failures_only or filters.customer_id is not None or (filters.result is None and filters.reason is None)


@dataclass(frozen=True, slots=True)
class LogPage:
    """One page of the log; ``older`` is the ``before`` id of the next page (None: this is the last)."""

    events: list[SignInEvent]
    older: int | None
    window_searched: bool  # a windowed scan that found fewer than a page: ``older`` searches on
    contacts: dict[int, str] = field(default_factory=dict)  # the events' contacts: id -> "Name <email>"


async def _window(
    store: Store, company_id: int, filters: LogFilters, before: int | None, limit: int
) -> tuple[list[SignInEvent], int | None]:
    """The matches among the next window of events, and where the window ends (None: at the oldest)."""
    floor = await store.sign_in_scan_floor(company_id, before, SCAN_WINDOW)
    events = await store.sign_in_events(
        company_id,
        result=filters.result,
        reason=filters.reason,
        customer_id=filters.customer_id,
        before_id=before,
        since_id=floor,
        limit=limit,
    )
    return events, floor


async def log_page(store: Store, company_id: int, filters: LogFilters, before: int | None, size: int) -> LogPage:
    if indexed(filters):
        events = await store.sign_in_events(
            company_id,
            result=filters.result,
            reason=filters.reason,
            customer_id=filters.customer_id,
            before_id=before,
            limit=size + 1,
        )
        floor = None
    else:
        events, floor = await _window(store, company_id, filters, before, size + 1)
    if len(events) > size:
        events = events[:size]
        return LogPage(events, events[-1].id, False, await _contacts(store, company_id, events))
    return LogPage(events, floor, floor is not None, await _contacts(store, company_id, events))


async def _contacts(store: Store, company_id: int, events: list[SignInEvent]) -> dict[int, str]:
    """Who the events' contacts are (a contact removed since is named by id only)."""
    wanted = {e.contact_id for e in events if e.contact_id is not None}
    return await contacts.names(store, company_id, sorted(wanted)) if wanted else {}


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv(rows: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerows((safe_cell(value) for value in row) for row in rows)
    return buffer.getvalue()


def _row(e: SignInEvent) -> tuple[object, ...]:
    at = iso_utc(e.at)
    return (at, e.result, e.reason, e.customer_id, e.issuer, e.kid, e.ip, e.user_agent, e.id, e.method)


async def log_csv(store: Store, company_id: int, filters: LogFilters) -> AsyncIterator[str]:
    """The whole filtered log, newest first, one window of events at a time."""
    yield _csv([COLUMNS])
    before: int | None = None
    while True:
        events, floor = await _window(store, company_id, filters, before, SCAN_WINDOW)
        if events:
            yield _csv(_row(e) for e in events)
        if floor is None:
            return
        before = floor
