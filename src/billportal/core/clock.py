"""The time: integer UNIX seconds (tests pass a clock of their own that they can move).

Also the one way times are written: for people, in the company's time zone with the
zone named (``Dec 1, 2026, 20:50 MST``); for programs (CSV, CLI JSON), ISO 8601 UTC.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.dates import format_date

from billportal.core import i18n

Clock = Callable[[], int]


def system_clock() -> int:
    """Now, in whole UNIX seconds."""
    return int(time.time())


@lru_cache(maxsize=256)
def zone_of(name: str | None) -> ZoneInfo:
    """The IANA time zone ``name``, or UTC when it is unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def is_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone name this system knows (``Europe/Paris``, ``UTC``)."""
    return name in _zone_names()


def _local(timestamp: int, zone: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(timestamp, UTC).astimezone(zone_of(zone))
    except (OverflowError, OSError, ValueError):
        return None


def human_date(day: date | str | None, locale: str | None = None) -> str:
    """A calendar date as people of ``locale`` read it: ``Dec 1, 2026``, ``01.12.2026`` (ISO strings too).

    ``locale``: the request's language when not given.
    """
    if not day:
        return ""
    if isinstance(day, str):
        try:
            parsed = date.fromisoformat(day)
        except ValueError:
            return day
    else:
        parsed = day
    text: str = format_date(parsed, format="medium", locale=locale or i18n.current())
    return text


def human_month(year: int, month: int, locale: str | None = None) -> str:
    """A month as people of ``locale`` write it in a sentence: ``December 2026``, ``décembre 2026``."""
    text: str = format_date(date(year, month, 1), "LLLL y", locale=locale or i18n.current())
    return text


def human_time(
    timestamp: int | None, zone: str | None = "UTC", seconds: bool = False, locale: str | None = None
) -> str:
    """A UNIX time as people read it, in ``zone`` with the zone named: ``Dec 1, 2026, 20:50 MST``."""
    if timestamp is None:
        return i18n.gettext("never")
    local = _local(timestamp, zone)
    if local is None:
        return str(timestamp)
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    return f"{human_date(local.date(), locale)}, {clock} {local:%Z}"


def local_date(timestamp: int, zone: str | None) -> date:
    """The calendar day ``timestamp`` falls on in ``zone``."""
    return datetime.fromtimestamp(timestamp, UTC).astimezone(zone_of(zone)).date()


def iso_utc(timestamp: int | None) -> str | None:
    """A UNIX time for programs: ISO 8601 in UTC, ``2026-12-01T20:50:13Z``."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
