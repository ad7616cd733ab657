"""``billportal admin`` and ``billportal sso-key``: the dashboard's operations for operators."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest

from billportal.cli import main
from tests.conftest import ACME_KEY, MASTER_KEY, World, run
from tests.functional.dashboard_support import ADMIN_COOKIE, SSO, attempt_sign_in, sign_in


@pytest.fixture
def cli(world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run ``billportal ARGS`` in this process against the test database: (status, stdout, stderr)."""
    monkeypatch.setenv("BILLPORTAL_DATA_DIR", str(world.settings.data_dir))
    monkeypatch.setenv("BILLPORTAL_MASTER_KEY", base64.urlsafe_b64encode(MASTER_KEY).decode())
    monkeypatch.setenv("BILLPORTAL_DATABASE_URL", world.settings.database_url)
    monkeypatch.setenv("BILLPORTAL_REDIS_URL", world.settings.redis_url)

    def invoke(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        status = main(list(args))
        out, err = capsys.readouterr()
        world.store.forget_company("acme")  # the CLI changed the database behind this process's cache
        return status, out, err

    return invoke


def signs_in(world: World, key: str) -> bool:
    status: int = world.client("acme").get(f"/login/{world.token(key=key)}").status_code
    return status == 303


def test_admin_create_prints_a_one_time_password(world: World, cli: Any) -> None:
    status, out, err = cli("admin", "create", "--tenant", "acme", "--email", "Ops@Acme.example")
    assert status == 0
    created = json.loads(out)
    assert created["admin"]["email"] == "ops@acme.example"
    assert created["sign_in_url"] == "http://dashboard.localhost:8000/sign-in"
    password = created["one_time_password"]
    assert len(password) >= 20
    assert "shown once" in err
    client = world.client("dashboard")
    response = attempt_sign_in(client, "ops@acme.example", password)
    assert response.headers["location"] == "/account"  # must choose a password first
    trail = run(world.store.admins.audit_events(world.company("acme").id))
    assert [(e.action, e.actor, e.detail) for e in trail][-1] == (
        "admin.created",
        "cli",
        "ops@acme.example: role none -> owner",
    )
    assert password not in " ".join(e.detail for e in trail)


def test_admin_create_reads_the_password_from_stdin(world: World, cli: Any) -> None:
    status, out, _ = cli(
        "admin", "create", "--tenant", "acme", "--email", "ops@acme.example", "--password-stdin",
        stdin="my own long passphrase\n",
    )  # fmt: skip
    assert status == 0
    assert "one_time_password" not in json.loads(out)
    dashboard = sign_in(world, email="ops@acme.example", password="my own long passphrase")
    assert dashboard.get(SSO).status_code == 200


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--tenant", "acme", "--email", "x@acme.example", "--password-stdin"], "short\n", "at least 12"),
        (["--tenant", "acme", "--email", "not-an-email"], "", "--email"),
        (["--tenant", "nosuch", "--email", "x@acme.example"], "", "no company"),
    ],
)
def test_admin_create_errors_are_one_line(cli: Any, args: list[str], stdin: str, message: str) -> None:
    status, out, err = cli("admin", "create", *args, stdin=stdin)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert message in err


def test_admin_grant_list_and_reset(world: World, cli: Any) -> None:
    cli("admin", "create", "--tenant", "acme", "--email", "ops@acme.example", "--password-stdin", stdin="x" * 16)
    status, _, err = cli("admin", "create", "--tenant", "globex", "--email", "ops@acme.example")
    assert status == 2
    assert "admin grant" in err
    assert cli("admin", "grant", "--tenant", "globex", "--email", "ops@acme.example")[0] == 0
    assert cli("admin", "grant", "--tenant", "globex", "--email", "ops@acme.example")[0] == 2
    listed = json.loads(cli("admin", "list", "--tenant", "globex")[1])
    assert [a["email"] for a in listed] == ["ops@acme.example"]

    dashboard = sign_in(world, email="ops@acme.example", password="x" * 16)
    assert "Switch" in dashboard.get(SSO).text
    status, out, _ = cli("admin", "reset-password", "--email", "ops@acme.example")
    assert status == 0
    assert dashboard.get(SSO).headers["location"] == "/sign-in"  # sessions ended
    fresh = world.client("dashboard")
    assert attempt_sign_in(fresh, "ops@acme.example", json.loads(out)["one_time_password"]).status_code == 303
    assert ADMIN_COOKIE in fresh.cookies


def test_sso_key_list_rotate_and_revoke(world: World, cli: Any) -> None:
    old_kid = world.company("acme").sso_keys[0].kid
    status, out, _ = cli("sso-key", "list", "--tenant", "acme")
    assert status == 0
    assert old_kid in out
    assert "active" in out
    assert ACME_KEY not in out

    status, out, _ = cli("sso-key", "rotate", "--tenant", "acme", "--grace", "1h")
    assert status == 0
    rotation = json.loads(out)
    assert rotation["previous_kid"] == old_kid
    assert rotation["previous_retiring_until"]
    assert signs_in(world, ACME_KEY)
    assert signs_in(world, rotation["key"])

    listed = json.loads(cli("sso-key", "list", "--tenant", "acme", "--json")[1])
    assert [(k["kid"], k["state"]) for k in listed] == [(rotation["kid"], "active"), (old_kid, "retiring")]

    status, _, err = cli("sso-key", "revoke", "--tenant", "acme", "--kid", rotation["kid"])
    assert status == 2
    assert "rotating" in err
    assert cli("sso-key", "revoke", "--tenant", "acme", "--kid", old_kid)[0] == 0
    assert not signs_in(world, ACME_KEY)
    assert signs_in(world, rotation["key"])
    trail = run(world.store.admins.audit_events(world.company("acme").id))
    assert [(e.action, e.actor) for e in trail][:2] == [("sso.key_revoked", "cli"), ("sso.key_rotated", "cli")]


def test_sso_key_rotate_without_grace(world: World, cli: Any) -> None:
    rotation = json.loads(cli("sso-key", "rotate", "--tenant", "acme", "--grace", "none")[1])
    assert rotation["previous_retiring_until"] is None
    assert not signs_in(world, ACME_KEY)
    assert signs_in(world, rotation["key"])
    with pytest.raises(SystemExit) as refused:  # argparse offers only the dashboard's grace periods
        cli("sso-key", "rotate", "--tenant", "acme", "--grace", "2h")
    assert refused.value.code == 2


def test_sso_key_revoke_before_now_and_sign_out(world: World, cli: Any) -> None:
    portal = world.client("acme")
    portal.get(f"/login/{world.token()}")
    assert portal.get("/").status_code == 200
    status, out, _ = cli("sso-key", "sign-out", "--tenant", "acme", "--customer", "1234")
    assert status == 0
    assert "1 session ended" in out
    assert portal.get("/").status_code == 401
    assert cli("sso-key", "sign-out", "--tenant", "acme", "--customer", "77")[0] == 2

    old = world.token({"sub": 1234, "iat": world.clock.now - 60, "exp": world.clock.now + 600})
    assert cli("sso-key", "revoke-before-now", "--tenant", "acme")[0] == 0
    response = world.client("acme").get(f"/login/{old}")
    assert response.status_code == 401
    newest = run(world.store.sign_in_events(world.company("acme").id, limit=1))[0]
    assert newest.reason == "issued_before_cutoff"


def test_sso_explain_and_the_dashboard_give_the_same_answer(world: World, cli: Any) -> None:
    expired = world.token({"sub": 1234, "exp": world.clock.now - 3600})
    status, out, _ = cli("sso-explain", "--tenant", "acme", "--json", f"https://acme.localhost/login/{expired}?a=b")
    assert status == 1
    assert json.loads(out)["reason"] == "expired"
    status, out, _ = cli("sso-explain", "--tenant", "acme", world.token({"sub": 77, "exp": world.clock.now + 60}))
    assert status == 1
    assert "customer_unknown" in out
    status, out, _ = cli("sso-explain", "--tenant", "acme", world.token())
    assert status == 0
    assert "would sign in now" in out
