"""One time format for people (the company's zone, named) and ISO 8601 UTC for programs (issue 19.9)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tests import factories
from tests.conftest import World, run
from tests.functional.dashboard_support import SSO, admin_of_acme
from tests.functional.test_dashboard_cli import cli  # noqa: F401  (the fixture)

NOON_UTC = int(datetime(2027, 1, 15, 12, tzinfo=UTC).timestamp())  # 05:00 MST in Denver


def test_every_page_and_output_writes_time_one_way(world: World, cli: Any) -> None:  # noqa: F811
    world.clock.now = NOON_UTC
    run(factories.company_settings(world.store, world.company("acme"), time_zone="America/Denver"))
    assert world.client("acme").get(f"/login/{world.token()}").status_code == 303
    dashboard = admin_of_acme(world)
    assert dashboard.post(f"{SSO}/keys/rotate", {"grace": "1h"}).status_code == 303

    log = dashboard.get(f"{SSO}/log").text
    assert "Jan 15, 2027, 05:00:00 MST" in log
    keys = dashboard.get(SSO).text
    assert "signs in until Jan 15, 2027, 06:00 MST" in keys
    audit = dashboard.get("/audit").text
    assert "Jan 15, 2027, 05:00:00 MST" in audit
    assert "retiring until Jan 15, 2027, 06:00:00 MST" in audit  # the detail, too
    for page in (log, keys, audit):
        assert " UTC" not in page
        assert "2027-01-15" not in page

    csv_text = dashboard.get(f"{SSO}/log.csv").text
    assert "2027-01-15T12:00:00Z" in csv_text

    status, out, _ = cli("sso-key", "list", "--tenant", "acme", "--json")
    assert status == 0
    assert json.loads(out)[0]["created"].endswith("Z")
    status, out, _ = cli("sso-key", "list", "--tenant", "acme")
    assert status == 0
    assert "signs in until Jan 15, 2027, 06:00 MST" in out
