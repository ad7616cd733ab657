"""Jinja2 rendering, with autoescaping on for every template."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from billportal.core.money import format_money

environment = Environment(
    loader=PackageLoader("billportal", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


def format_datetime(timestamp: int | None, zone: str = "UTC", seconds: bool = False) -> str:
    """A UNIX time as ``2026-11-05 14:03 MST`` in a time zone (UTC if unknown); logs add the seconds."""
    if timestamp is None:
        return "never"
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    pattern = "%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z"
    return datetime.fromtimestamp(timestamp, UTC).astimezone(tz).strftime(pattern)


def format_date(iso: str | None) -> str:
    """An ISO date as ``Nov 5, 2026``."""
    if not iso:
        return ""
    try:
        day = date.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{day:%b} {day.day}, {day.year}"


environment.filters["money"] = format_money
environment.filters["datetime"] = format_datetime
environment.filters["date"] = format_date

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def render(name: str, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """Render a template to an HTML response; pages never get cached by default."""
    body = environment.get_template(name).render(**context)
    merged = dict(NO_STORE)
    if headers:
        merged.update(headers)
    return HTMLResponse(body, status_code=status_code, headers=merged)
