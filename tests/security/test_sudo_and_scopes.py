"""Sudo cannot be sidestepped, and API keys do only what their scopes allow (issue 12.4).

The review's path around sudo: an admin session that never re-entered its
password could not reveal the SSO key, but it could create an API key, and that
key's ``POST /api/v1/sso_keys/rotate`` answered a new active SSO key, which signed
a customer in. "Try it" minted sign-in links without sudo too. Now creating a key
and Try it's link ask for the password again (declared on the routes), and each
API operation needs the scope it declares: a key without ``sso_keys`` can neither
read nor rotate the SSO keys.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from starlette.routing import Route

from billportal.api.operations import OPERATIONS
from billportal.api.views import required_scope
from billportal.app import dashboard_router
from billportal.services import api_keys
from billportal.storage.migrate import alembic_config
from billportal.web.context import Context
from billportal.web.guards import declared
from tests import factories
from tests.conftest import World, run
from tests.functional.dashboard_support import PASSWORD, SSO, admin_of_acme
from tests.functional.test_dashboard_cli import cli
from tests.security.conftest import Documents, database
from tests.security.test_api_routes import acme_value, assert_json_error, call, client, parameters

__all__ = ["cli"]  # a fixture, imported so that it is found here

API_KEYS = "/settings/developers/api-keys"
ALL_SCOPES = tuple(api_keys.SCOPES)
EVERY_SCOPE_FIELD = {f"scope_{scope}": "on" for scope in ALL_SCOPES}


def key_with(world: World, scopes: tuple[str, ...]) -> str:
    return run(factories.api_key(world.store, world.acme, now=world.clock.now, scopes=scopes)).key


# -- sudo --------------------------------------------------------------------------------------------------


def test_an_admin_session_without_sudo_cannot_create_an_api_key(world: World) -> None:
    dashboard = admin_of_acme(world)  # signed in, never asked for the password again
    asked = dashboard.post(API_KEYS, {"name": "sidestep", **EVERY_SCOPE_FIELD})
    assert asked.status_code == 200
    assert "Confirm your password" in asked.text
    assert "bp_live_" not in asked.text
    wrong = dashboard.post(API_KEYS, {"name": "sidestep", "password": "not it", **EVERY_SCOPE_FIELD})
    assert wrong.status_code == 403
    assert "bp_live_" not in wrong.text
    assert run(api_keys.keys_of(world.store, world.acme.id)) == []
    # The replayed form keeps the ticked scopes, and the right password makes the key.
    for scope in ALL_SCOPES:
        assert f'name="scope_{scope}" value="on"' in asked.text
    made = dashboard.post(API_KEYS, {"name": "confirmed", "password": PASSWORD, **EVERY_SCOPE_FIELD})
    assert made.status_code in (200, 303)
    assert [(k.name, k.scopes) for k in run(api_keys.keys_of(world.store, world.acme.id))] == [
        ("confirmed", ALL_SCOPES)
    ]


def test_try_it_needs_a_recent_password_before_it_makes_a_link(world: World) -> None:
    dashboard = admin_of_acme(world)
    asked = dashboard.post(f"{SSO}/try/link", {"customer": "1234"})
    assert asked.status_code == 200
    assert "Confirm your password" in asked.text
    assert "/login/" not in asked.text
    assert 'id="test-link"' not in asked.text
    trail = run(world.store.admins.audit_events(world.acme.id))
    assert "sso.test_link" not in [event.action for event in trail]
    made = dashboard.post(f"{SSO}/try/link", {"customer": "1234", "password": PASSWORD})
    assert re.search(r'id="test-link"[^>]*value="https://acme.localhost/login/', made.text)


def test_every_route_that_yields_a_secret_or_a_link_declares_sudo(world: World) -> None:
    router = dashboard_router(Context(world.settings, world.store, world.clock))
    needs = {
        f"{SSO}/keys/{{kid}}/reveal",
        f"{SSO}/try/link",
        API_KEYS,
        "/settings/developers/webhooks",
        "/settings/developers/webhooks/{endpoint_id:int}/rotate",
    }
    found = set()
    for route in router.routes:
        if isinstance(route, Route) and route.path in needs and route.methods and "POST" in route.methods:
            guard = declared(route.endpoint)
            assert guard is not None
            assert guard.sudo, route.path
            found.add(route.path)
    assert found == needs


# -- scopes ------------------------------------------------------------------------------------------------


def test_a_key_without_sso_keys_cannot_read_or_rotate_them(world: World) -> None:
    others = tuple(scope for scope in ALL_SCOPES if scope != "sso_keys")
    api = client(world, key_with(world, others), bearer=True)
    api.get("/api/v1/customers")  # first use written now
    before = database(world)
    kid = world.company("acme").sso_keys[0].kid
    for method, path in [
        ("GET", "/api/v1/sso_keys"),
        ("POST", "/api/v1/sso_keys/rotate"),
        ("POST", f"/api/v1/sso_keys/{kid}/revoke"),
    ]:
        answer = api.request(method, path, json={"grace_period": "none"} if path.endswith("rotate") else {})
        error = assert_json_error(answer, 403)
        assert error["code"] == "insufficient_scope"
        assert "sso_keys" in error["message"]
        assert '"key"' not in answer.text
    assert database(world) == before
    # The control: a key made for it rotates.
    rotated = client(world, key_with(world, ("sso_keys",)), bearer=True).post(
        "/api/v1/sso_keys/rotate", json={"grace_period": "1h"}
    )
    assert rotated.status_code == 201


def test_every_operation_needs_its_scope(world: World, documents: Documents) -> None:
    for op in OPERATIONS:
        needed = required_scope(op)
        assert needed in api_keys.SCOPES
        api = client(world, key_with(world, tuple(s for s in ALL_SCOPES if s != needed)), bearer=True)
        api.get("/api/v1/customers" if needed != "documents:read" else "/api/v1/sign_in_events")
        before = database(world)
        answer = call(api, op, acme_value(world, documents, op) if parameters(op) else "")
        error = assert_json_error(answer, 403)
        assert error["code"] == "insufficient_scope", op.name
        assert needed in error["message"], op.name
        assert database(world) == before, op.name
    expected = {
        "listCustomers": "documents:read",
        "createInvoice": "documents:write",
        "voidInvoice": "documents:write",
        "createSignInLink": "sign_in_links",
        "listSsoKeys": "sso_keys",
        "rotateSsoKey": "sso_keys",
        "revokeSsoKey": "sso_keys",
        "listSignInEvents": "sign_in_events:read",
    }
    assert {name: required_scope(next(op for op in OPERATIONS if op.name == name)) for name in expected} == expected


def test_the_openapi_document_names_each_operations_scope(world: World) -> None:
    spec = client(world).get("/api/v1/openapi.json").json()
    rotate = spec["paths"]["/sso_keys/rotate"]["post"]
    assert rotate["security"] == [{"basicAuth": ["sso_keys"]}, {"bearerAuth": ["sso_keys"]}]
    assert "`sso_keys` scope" in rotate["description"]
    assert "403" in rotate["responses"]


def test_the_dashboard_shows_and_sets_the_scopes(world: World) -> None:
    dashboard = admin_of_acme(world)
    page = dashboard.get(API_KEYS).text
    for scope in ALL_SCOPES:
        checked = scope in api_keys.DEFAULT_SCOPES
        box = re.search(rf'<input[^>]*name="scope_{re.escape(scope)}"[^>]*>', page)
        assert box, scope
        assert ("checked" in box.group(0)) == checked, scope
    none = dashboard.post(API_KEYS, {"name": "nothing", "password": PASSWORD})
    assert none.status_code == 400
    assert "Choose at least one thing the key may do." in none.text
    assert run(api_keys.keys_of(world.store, world.acme.id)) == []
    made = dashboard.post(API_KEYS, {"name": "rotator", "password": PASSWORD, "scope_sso_keys": "on"})
    assert made.status_code in (200, 303)
    listed = dashboard.get(API_KEYS).text
    row = re.search(r"<tr>\s*<td data-label=\"Name\">rotator</td>.*?</tr>", listed, re.DOTALL)
    assert row
    assert '<td data-label="Scopes" class="scopes"><code>sso_keys</code></td>' in row.group(0)
    for label in ("Key", "Created", "Last used", "State"):
        assert f'data-label="{label}"' in row.group(0)


def test_the_cli_sets_and_lists_the_scopes(world: World, cli: Any) -> None:
    status, out, _ = cli(
        "api-key", "create", "--tenant", "acme", "--name", "rot", "--scope", "sso_keys", "--scope", "documents:read"
    )
    assert status == 0
    made = json.loads(out)
    assert made["scopes"] == ["documents:read", "sso_keys"]
    status, out, _ = cli("api-key", "create", "--tenant", "acme", "--name", "plain")
    assert json.loads(out)["scopes"] == list(api_keys.DEFAULT_SCOPES)
    status, out, _ = cli("api-key", "list", "--tenant", "acme")
    assert "[documents:read sso_keys]" in out
    with pytest.raises(SystemExit):
        cli("api-key", "create", "--tenant", "acme", "--scope", "everything")
    assert len(run(api_keys.keys_of(world.store, world.acme.id))) == 2


def test_keys_made_before_scopes_keep_all_but_the_sso_keys(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    config = alembic_config(f"sqlite:///{path}")
    scripts = ScriptDirectory.from_config(config)
    revision = scripts.get_revision("0005")
    assert revision is not None
    before = revision.down_revision
    assert isinstance(before, str)
    command.upgrade(config, before)
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO companies (id, username, name, created_at, updated_at) VALUES (1, 'acme', 'Acme', 0, 0)"
        )
        db.execute(
            "INSERT INTO api_keys (company_id, prefix, key_hash, name, created_at)"
            " VALUES (1, 'bp_live_old', ?, 'old', 0)",
            (b"\x01" * 32,),
        )
    command.upgrade(config, "head")
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        scopes = conn.execute(sa.text("SELECT scopes FROM api_keys")).scalar_one()
    engine.dispose()
    assert tuple(scopes.split()) == api_keys.DEFAULT_SCOPES
    assert "sso_keys" not in scopes
