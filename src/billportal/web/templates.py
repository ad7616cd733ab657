"""Jinja2 rendering, with autoescaping on for every template, in the request's language.

The gettext callables installed here read the request's locale (core/i18n.py: a context
variable), so one environment serves every language and requests never race.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from billportal.core import i18n
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
    extensions=["jinja2.ext.i18n"],
)
environment.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext, npgettext=i18n.npgettext
)
# A message stored with a record (a gateway's answer): looked up as it is, never %-formatted as _() does.
environment.globals["tr"] = i18n.gettext
environment.globals["html_lang"] = i18n.html_lang
environment.globals["current_locale"] = i18n.current
environment.globals["locales"] = i18n.LOCALES


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
