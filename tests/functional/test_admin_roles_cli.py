"""``billportal admin`` with roles: create and grant take --role, set-role and remove keep the last owner."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import World, run
from tests.functional.dashboard_support import ADMIN_EMAIL, make_admin
from tests.functional.test_dashboard_cli import cli

__all__ = ["cli"]  # the fixture that runs the command in this process


def roles_of(world: World) -> dict[str, str]:
    from billportal.services.admins import members_of

    return {m.admin.email: m.role for m in run(members_of(world.store, world.acme.id))}


def test_create_grant_set_role_remove_and_list(world: World, cli: Any) -> None:
    make_admin(world)  # an owner of acme
    status, out, _ = cli("admin", "create", "--tenant", "acme", "--email", "dev@acme.example", "--role", "developer")
    assert status == 0
    assert json.loads(out)["admin"]["role"] == "developer"
    assert cli("admin", "grant", "--tenant", "globex", "--email", "dev@acme.example", "--role", "read_only")[0] == 0
    assert roles_of(world) == {ADMIN_EMAIL: "owner", "dev@acme.example": "developer"}

    status, out, _ = cli("admin", "set-role", "--tenant", "acme", "--email", "dev@acme.example", "--role", "billing")
    assert status == 0
    assert json.loads(out)["changed"] is True
    listed = json.loads(cli("admin", "list", "--tenant", "acme")[1])
    assert {a["email"]: a["role"] for a in listed} == {ADMIN_EMAIL: "owner", "dev@acme.example": "billing"}

    trail = run(world.store.admins.audit_events(world.acme.id))
    changed = next(e for e in trail if e.action == "admin.role_changed")
    assert (changed.actor, changed.detail) == ("cli", "dev@acme.example: role developer -> billing")

    assert cli("admin", "remove", "--tenant", "acme", "--email", "dev@acme.example")[0] == 0
    assert roles_of(world) == {ADMIN_EMAIL: "owner"}
    dev = run(world.store.admins.admin_by_email("dev@acme.example"))
    assert dev is not None
    memberships = run(world.store.admins.memberships(dev.id))
    assert [(m.username, m.role) for m in memberships] == [("globex", "read_only")]


def test_the_last_owner_stays_and_mistakes_are_one_line(world: World, cli: Any) -> None:
    make_admin(world)
    for args in (
        ("set-role", "--tenant", "acme", "--email", ADMIN_EMAIL, "--role", "admin"),
        ("remove", "--tenant", "acme", "--email", ADMIN_EMAIL),
    ):
        status, out, err = cli("admin", *args)
        assert status != 0, args
        assert out == ""
        assert "last owner" in err
        assert len(err.strip().splitlines()) == 1
    assert roles_of(world) == {ADMIN_EMAIL: "owner"}
    status, _, err = cli("admin", "set-role", "--tenant", "acme", "--email", "nobody@acme.example", "--role", "admin")
    assert status != 0
    assert "not an admin of acme" in err
    with pytest.raises(SystemExit) as exited:  # argparse: usage and one line, exit 2
        cli("admin", "set-role", "--tenant", "acme", "--email", ADMIN_EMAIL, "--role", "superuser")
    assert exited.value.code == 2
