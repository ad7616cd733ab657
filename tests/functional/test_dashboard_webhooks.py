"""Settings > Developers > Webhooks over HTTP: add (with the password again), the secret once, rotate, log, remove."""

from __future__ import annotations

import re

from sqlalchemy import Connection

from billportal.services.webhooks import RETRY_WINDOW, Deliverer, Webhooks
from billportal.storage import webhooks as outbox
from tests import factories
from tests.conftest import World, run
from tests.functional.dashboard_support import PASSWORD, admin_of_acme

WEBHOOKS = "/settings/developers/webhooks"
_SECRET = re.compile(r'id="webhook-secret"[^>]*value="(whsec_[^"]+)"')


def _shown(html: str) -> str:
    match = _SECRET.search(html)
    assert match, "no secret on the page"
    return match.group(1)


def test_add_show_once_rotate_log_and_remove(world: World) -> None:
    dashboard = admin_of_acme(world)
    empty = dashboard.get(WEBHOOKS)
    assert empty.status_code == 200
    assert "No endpoints yet" in empty.text
    assert f'href="{WEBHOOKS}" aria-current="page"' in empty.text

    form = {"url": "https://hooks.example/in", "type_customer.created": "on", "description": "CRM sync"}
    asked = dashboard.post(WEBHOOKS, form)
    assert asked.status_code == 200  # sudo: the password again
    assert "needs your password again" in asked.text
    added = dashboard.post(WEBHOOKS, {**form, "password": PASSWORD})
    assert added.status_code == 303, added.text
    page = dashboard.get(added.headers["location"])
    secret = _shown(page.text)
    (endpoint,) = run(Webhooks(world.store).endpoints(world.acme.id))
    assert endpoint.types == ("customer.created",)
    assert secret not in dashboard.get(added.headers["location"]).text  # shown once
    assert "This secret was shown once" in dashboard.get(added.headers["location"]).text

    rotated = dashboard.post(f"{WEBHOOKS}/{endpoint.id}/rotate", {"password": PASSWORD})
    assert rotated.status_code == 303
    new_page = dashboard.get(rotated.headers["location"])
    assert _shown(new_page.text) != secret
    assert "The previous secret also signs every event until" in new_page.text

    # A delivery that cannot resolve its host: the log shows the attempt and why it failed.
    run(factories.customer(world.store, world.acme.id, id=90, now=world.clock.now))
    run(Deliverer(world.store, timeout=2).run_once(world.clock.now))
    log = dashboard.get(f"{WEBHOOKS}/deliveries?endpoint={endpoint.id}")
    assert log.status_code == 200
    assert "customer.created" in log.text
    assert "no answer" in log.text
    assert "does not resolve" in log.text

    off = dashboard.post(f"{WEBHOOKS}/{endpoint.id}/enabled", {"enabled": "off"})
    assert off.headers["location"] == f"{WEBHOOKS}?notice=disabled"
    assert not run(Webhooks(world.store).endpoint(world.acme.id, endpoint.id)).enabled

    confirm = dashboard.post(f"{WEBHOOKS}/{endpoint.id}/remove", {})
    assert "Remove this endpoint?" in confirm.text
    assert run(Webhooks(world.store).endpoints(world.acme.id))
    removed = dashboard.post(f"{WEBHOOKS}/{endpoint.id}/remove", {"confirm": "yes"})
    assert removed.headers["location"] == f"{WEBHOOKS}?notice=removed"
    assert run(Webhooks(world.store).endpoints(world.acme.id)) == []


def test_bad_input_is_explained_on_the_page(world: World) -> None:
    dashboard = admin_of_acme(world)
    answer = dashboard.post(WEBHOOKS, {"url": "http://hooks.example/in", "password": PASSWORD})
    assert answer.status_code == 400
    assert "url must start with https://" in answer.text
    answer = dashboard.post(WEBHOOKS, {"url": "https://hooks.example/in", "password": PASSWORD})
    assert answer.status_code == 400
    assert "event_types must name at least one" in answer.text
    assert dashboard.post(f"{WEBHOOKS}/99999/rotate", {"password": PASSWORD}).status_code == 404
    assert dashboard.get(f"{WEBHOOKS}/deliveries?endpoint=99999").status_code == 404


def test_a_disabled_endpoint_is_flagged(world: World) -> None:
    dashboard = admin_of_acme(world)
    shown = run(factories.webhook_endpoint(world.store, world.acme.id, now=world.clock.now, url="https://h.example/x"))
    now = world.clock.now

    def fail_for_three_days(conn: Connection) -> bool:
        outbox.endpoint_result(conn, shown.endpoint.id, ok=False, now=now, disable_after=RETRY_WINDOW)
        return outbox.endpoint_result(
            conn, shown.endpoint.id, ok=False, now=now + RETRY_WINDOW, disable_after=RETRY_WINDOW
        )

    assert run(world.store.write(fail_for_three_days))
    page = dashboard.get(WEBHOOKS)
    assert "https://h.example/x is turned off." in page.text
    assert "every delivery failed for three days" in page.text
