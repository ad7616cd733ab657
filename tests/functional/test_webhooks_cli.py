"""``billportal webhooks ...``: endpoints from a script, the secret printed once, delivery by the command."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import factories
from tests.conftest import World, run
from tests.functional.test_dashboard_cli import cli
from tests.webhook_receiver import receiving

__all__ = ["cli"]  # a fixture, imported so that it is found here


@pytest.fixture(autouse=True)
def test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLPORTAL_WEBHOOKS_TEST_MODE", "1")


def test_add_list_rotate_deliver_log_redeliver_remove(world: World, cli: Any) -> None:
    with receiving() as receiver:
        status, out, err = cli(
            "webhooks", "add", "--tenant", "acme", "--url", receiver.url, "--events", "customer.created"
        )
        assert (status, err) == (0, "")
        added = json.loads(out)
        assert added["secret"].startswith("whsec_")
        assert added["event_types"] == ["customer.created"]
        receiver.secrets.append(added["secret"])
        status, out, _ = cli("webhooks", "list", "--tenant", "acme")
        (listed,) = json.loads(out)
        assert "secret" not in listed
        assert added["secret"] not in out
        endpoint = str(listed["id"])

        status, out, _ = cli("webhooks", "rotate", "--tenant", "acme", endpoint, "--overlap", "600")
        rotated = json.loads(out)
        assert rotated["secret"] != added["secret"]
        receiver.secrets.append(rotated["secret"])

        run(factories.customer(world.store, world.acme.id, id=70, now=world.clock.now))
        status, out, _ = cli("webhooks", "deliver", "--once")
        assert json.loads(out) == {"tried": 1}
        assert receiver.received[0].verified_by == [0, 1]

        status, out, _ = cli("webhooks", "log", "--tenant", "acme", endpoint)
        (delivery,) = json.loads(out)
        assert delivery["state"] == "delivered"
        assert delivery["attempts"][0]["status_code"] == 200
        status, out, _ = cli("webhooks", "redeliver", "--tenant", "acme", endpoint, "--event", delivery["event_id"])
        assert json.loads(out) == {"redelivering": 1}
        cli("webhooks", "deliver", "--once")
        assert receiver.counts()[delivery["event_id"]] == 2

        status, out, _ = cli("webhooks", "remove", "--tenant", "acme", endpoint)
        assert status == 0
        assert json.loads(cli("webhooks", "list", "--tenant", "acme")[1]) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "--tenant", "acme", "--url", "ftp://x", "--events", "all"), "url must start with https://"),
        (("add", "--tenant", "acme", "--url", "https://h.example", "--events", "nope"), "unknown: nope"),
        (("add", "--tenant", "nobody", "--url", "https://h.example", "--events", "all"), "nobody"),
        (("rotate", "--tenant", "acme", "999"), "no such webhook endpoint"),
        (("remove", "--tenant", "acme", "999"), "no such webhook endpoint"),
        (("change", "--tenant", "acme", "999"), "nothing to change"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(cli: Any, args: tuple[str, ...], message: str) -> None:
    status, out, err = cli("webhooks", *args)
    assert status != 0
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
