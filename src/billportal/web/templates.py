"""Jinja2 rendering, with autoescaping on for every template."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from billportal.core.clock import human_date, human_time
from billportal.core.money import format_money
from billportal.web.guards import role_opens

environment = Environment(
    loader=PackageLoader("billportal", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


environment.filters["money"] = format_money
environment.filters["datetime"] = human_time
environment.filters["date"] = human_date
environment.globals["role_opens"] = role_opens  # the dashboard's menu shows what the admin's role opens

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def render(name: str, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """Render a template to an HTML response; pages never get cached by default."""
    body = environment.get_template(name).render(**context)
    merged = dict(NO_STORE)
    if headers:
        merged.update(headers)
    return HTMLResponse(body, status_code=status_code, headers=merged)
