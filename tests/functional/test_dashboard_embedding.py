"""Settings > Single Sign-On > Embedding: the sites allowed to frame a company's portal."""

from __future__ import annotations

import pytest

from tests.conftest import World
from tests.functional.dashboard_support import admin_of_acme
from tests.functional.test_dashboard_sso import save_policy


def _frame_ancestors(world: World, company: str = "acme") -> str:
    policy: str = world.client(company).get("/signed-out").headers["content-security-policy"]
    return next(part.strip() for part in policy.split(";") if part.strip().startswith("frame-ancestors"))


def test_no_site_may_frame_the_portal_by_default(world: World) -> None:
    assert _frame_ancestors(world) == "frame-ancestors 'none'"


def test_listed_sites_may_frame_this_company_only(world: World) -> None:
    dashboard = admin_of_acme(world)
    answer = save_policy(dashboard, frame_ancestors="https://app.acme.example\nhttps://Intranet.acme.example:8443/\n")
    assert answer.status_code == 303
    assert _frame_ancestors(world) == "frame-ancestors https://app.acme.example https://intranet.acme.example:8443"
    assert _frame_ancestors(world, "globex") == "frame-ancestors 'none'"
    form = dashboard.get(answer.headers["location"])
    assert "https://app.acme.example" in form.text
    assert save_policy(dashboard, frame_ancestors="").status_code == 303
    assert _frame_ancestors(world) == "frame-ancestors 'none'"


@pytest.mark.parametrize(
    "value",
    [
        "http://app.acme.example",  # http only for localhost
        "https://app.acme.example/path",
        "'unsafe-inline'",
        "https://app.acme.example; script-src *",
        "*",
        "javascript:alert(1)",
    ],
)
def test_anything_but_an_origin_is_refused_and_nothing_saved(world: World, value: str) -> None:
    dashboard = admin_of_acme(world)
    answer = save_policy(dashboard, frame_ancestors=value)
    assert answer.status_code == 400
    assert 'id="frame_ancestors-error"' in answer.text
    assert _frame_ancestors(world) == "frame-ancestors 'none'"
