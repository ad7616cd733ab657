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


DECLARED: Final[dict[Callable[..., Any], Guard]] = {}


def declare(view: Callable[..., Any], guard: Guard) -> None:
    DECLARED[view] = guard


def declared(endpoint: Callable[..., Any]) -> Guard | None:
    """The guard a route's endpoint (a bound method or a function) declared, if any."""
    return DECLARED.get(getattr(endpoint, "__func__", endpoint))
