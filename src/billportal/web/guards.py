"""What a view declares it needs before it runs: who must be signed in, a form with its CSRF token, a recent password.

Each site turns these into a decorator on its views (``@customer(...)`` in the
portal, ``@admin(...)`` in the dashboard, ``@api_key(...)`` in the API), so that
a handler reads like its feature and the checks are written once. Every declaration is kept in
:data:`DECLARED`, which the security suite walks: a route that changes data
must declare a checked form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Guard:
    """A view's requirements."""

    session: str  # "customer" (the portal), "admin" (the dashboard) or "api_key" (the API)
    form: bool = False  # a posted form, read by billportal.web.forms, whose CSRF token matches the session's
    sudo: bool = False  # the admin entered their password again within the last minutes
    page: str = ""  # the portal's page id, where a remote sign-in sends the customer back to
    same_origin: bool = False  # a POST, PATCH or DELETE from another site (Origin, Sec-Fetch-Site) is refused
    json_body: bool = False  # a body is application/json, and a POST or PATCH must send a JSON object
    scope: str = ""  # the API key scope the operation needs
    area: str = (
        ""  # the dashboard's part of the company a view reads or changes (AREAS); the admin's role must allow it
    )
    needs: str = ""  # the portal: what a contact's role must allow (services/contacts.py PERMISSIONS)


# The dashboard's areas, which an admin's role opens: "account" is the admin's own (their password,
# their sessions) and open to every role.
AREAS: Final = ("account", "company", "billing", "developer", "admins")

# The areas each role (services/admins.py ROLES) opens. A read-only admin reads what it opens and
# posts no form outside "account"; the API's scopes belong to areas too (SCOPE_AREAS).
ROLE_AREAS: Final[dict[str, frozenset[str]]] = {
    "owner": frozenset(AREAS),
    "admin": frozenset(AREAS) - {"admins"},
    "developer": frozenset({"account", "developer"}),
    "billing": frozenset({"account", "billing"}),
    "read_only": frozenset(AREAS) - {"admins"},
}
READ_ONLY: Final = "read_only"

# The area each API key scope (services/api_keys.py SCOPES) belongs to: the dashboard's role that opens that
# area is the one whose work the scope automates. Keys are per company and made in the "developer" area.
SCOPE_AREAS: Final[dict[str, str]] = {
    "documents:read": "billing",
    "documents:write": "billing",
    "sign_in_links": "developer",
    "sso_keys": "developer",
    "sign_in_events:read": "developer",
    "payment_settings": "company",
    "webhooks": "developer",
    "company": "company",
}


def role_opens(role: str, area: str, *, writes: bool = False) -> bool:
    """Whether an admin in ``role`` may enter ``area`` (to post a form there, with ``writes``)."""
    if area == "account":
        return True
    if area not in ROLE_AREAS.get(role, frozenset()):
        return False
    return not (writes and role == READ_ONLY)


DECLARED: Final[dict[Callable[..., Any], Guard]] = {}


def declare(view: Callable[..., Any], guard: Guard) -> None:
    DECLARED[view] = guard


def declared(endpoint: Callable[..., Any]) -> Guard | None:
    """The guard a route's endpoint (a bound method or a function) declared, if any."""
    return DECLARED.get(getattr(endpoint, "__func__", endpoint))
