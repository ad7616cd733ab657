"""Helpers for the dashboard tests: an admin of acme, a signed-in dashboard client, form tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.testclient import TestClient

from tests import factories
from tests.conftest import World, run

ADMIN_EMAIL = "ada@acme.example"
PASSWORD = "correct horse battery staple"
ADMIN_COOKIE = "__Host-bp_admin"
SSO = "/settings/developers/sso"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def make_admin(
    world: World, email: str = ADMIN_EMAIL, password: str = PASSWORD, company: str = "acme", must_change: bool = False
) -> int:
    company_id = world.company(company).id
    return run(
        factories.admin(world.store, email, password, company_id, must_change_password=must_change, now=world.clock.now)
    )


@dataclass
class Dashboard:
    """A signed-in admin's browser: a client with the admin cookie, and the session's CSRF token."""

    client: TestClient
    csrf: str

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self.client.get(path, **kwargs)
        return response

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self.client.post(path, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)
        return response


def attempt_sign_in(client: TestClient, email: str, password: str) -> httpx.Response:
    token = form_token(client.get("/sign-in").text)
    response: httpx.Response = client.post("/sign-in", data={"csrf_token": token, "email": email, "password": password})
    return response


def sign_in(world: World, email: str = ADMIN_EMAIL, password: str = PASSWORD, **client_args: Any) -> Dashboard:
    client = world.client("dashboard", **client_args)
    response = attempt_sign_in(client, email, password)
    assert response.status_code == 303, response.text
    page = client.get(SSO)
    assert page.status_code == 200
    return Dashboard(client, form_token(page.text))


def admin_of_acme(world: World) -> Dashboard:
    make_admin(world)
    return sign_in(world)
