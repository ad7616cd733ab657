"""The dashboard's admins over HTTP: sign-in, sessions, CSRF, sudo mode, password change, switcher."""

from __future__ import annotations

import pytest

from billportal.dashboard.auth import SUDO_SECONDS
from billportal.storage.records import AuditEvent
from tests.conftest import ACME_KEY, World, run
from tests.functional.dashboard_support import (
    ADMIN_COOKIE,
    ADMIN_EMAIL,
    PASSWORD,
    SSO,
    Dashboard,
    admin_of_acme,
    attempt_sign_in,
    form_token,
    make_admin,
    sign_in,
)


def audit_trail(world: World, company: str = "acme") -> list[AuditEvent]:
    return run(world.store.admins.audit_events(world.company(company).id))


def test_pages_need_a_signed_in_admin(world: World) -> None:
    client = world.client("dashboard")
    for path in ("/", "/settings/company", SSO, f"{SSO}/policy", f"{SSO}/log", f"{SSO}/log.csv", "/audit", "/account"):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/sign-in"


def test_admin_signs_in_with_a_host_only_cookie_and_signs_out(world: World) -> None:
    make_admin(world)
    client = world.client("dashboard")
    response = attempt_sign_in(client, ADMIN_EMAIL.upper(), PASSWORD)  # emails are not case-sensitive
    assert response.status_code == 303
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(ADMIN_COOKIE))
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Domain" not in cookie  # host-only: never sent to acme.localhost
    page = client.get(SSO)
    assert page.status_code == 200
    assert "Acme Corporation" in page.text
    assert ADMIN_EMAIL in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert [e.action for e in audit_trail(world)] == ["admin.signed_in"]

    stolen = client.cookies[ADMIN_COOKIE]
    out = client.post("/sign-out", data={"csrf_token": form_token(page.text)})
    assert out.status_code == 303
    assert out.headers["location"].startswith("/sign-in")
    # The session ended on the server: the old cookie opens nothing.
    replay = world.client("dashboard", cookies={ADMIN_COOKIE: stolen})
    assert replay.get(SSO).headers["location"] == "/sign-in"


def test_admin_cookie_is_not_a_customer_session(world: World) -> None:
    dashboard = admin_of_acme(world)
    cookie = dashboard.client.cookies[ADMIN_COOKIE]
    portal = world.client("acme", cookies={"__Host-bp_session": cookie, ADMIN_COOKIE: cookie})
    assert portal.get("/").status_code == 401  # "please sign in": no customer session


def test_wrong_password_and_unknown_email_get_the_same_answer(world: World) -> None:
    make_admin(world)
    client = world.client("dashboard")
    wrong = attempt_sign_in(client, ADMIN_EMAIL, "not the password at all")
    unknown = attempt_sign_in(client, "nobody@acme.example", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "Email or password is incorrect." in wrong.text
    assert "Email or password is incorrect." in unknown.text
    assert ADMIN_COOKIE not in client.cookies
    failed = audit_trail(world)
    assert [e.action for e in failed] == ["admin.sign_in_failed"]
    assert failed[0].actor == ADMIN_EMAIL
    assert failed[0].ip == "testclient"


def test_sign_in_form_needs_its_csrf_token(world: World) -> None:
    make_admin(world)
    client = world.client("dashboard")
    client.get("/sign-in")
    response = client.post("/sign-in", data={"csrf_token": "forged", "email": ADMIN_EMAIL, "password": PASSWORD})
    assert response.status_code == 403
    assert ADMIN_COOKIE not in client.cookies
    # A fresh client has no form cookie at all: a cross-site form cannot sign anyone in.
    bare = world.client("dashboard")
    response = bare.post("/sign-in", data={"csrf_token": "x", "email": ADMIN_EMAIL, "password": PASSWORD})
    assert response.status_code == 403


POSTS = [
    (f"{SSO}/enabled", {"enabled": "off"}),
    (f"{SSO}/keys/rotate", {"grace": "1h"}),
    (f"{SSO}/policy", {"leeway": "0", "max_lifetime": "", "allowed_issuers": ""}),
    (f"{SSO}/revoke/links", {}),
    (f"{SSO}/revoke/customer", {"customer": "1234"}),
    (f"{SSO}/try/link", {"customer": "1234"}),
    ("/account/password", {"current_password": PASSWORD, "new_password": "x" * 20, "confirm_password": "x" * 20}),
    ("/switch", {"company_id": "1"}),
    ("/sign-out", {}),
]


@pytest.mark.parametrize(("path", "data"), POSTS)
@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_every_form_refuses_a_post_without_its_csrf_token(
    world: World, path: str, data: dict[str, str], token: str | None
) -> None:
    dashboard = admin_of_acme(world)
    kid = world.company("acme").sso_keys[0].kid
    fields = dict(data) if token is None else {**data, "csrf_token": token}
    response = dashboard.client.post(path, data=fields)
    assert response.status_code == 403
    assert "This form has expired" in response.text
    acme = world.company("acme")
    assert acme.sso_enabled
    assert [k.kid for k in acme.sso_keys] == [kid]
    assert acme.policy.leeway == 60
    assert acme.policy.iat_cutoff is None
    assert dashboard.get(SSO).status_code == 200  # still signed in, password unchanged
    assert [e.action for e in audit_trail(world)] == ["admin.signed_in"]


def test_reveal_needs_the_password_and_is_recorded(world: World) -> None:
    dashboard = admin_of_acme(world)
    kid = world.company("acme").sso_keys[0].kid
    keys_page = dashboard.get(SSO)
    assert ACME_KEY not in keys_page.text  # masked
    path = f"{SSO}/keys/{kid}/reveal"

    asked = dashboard.post(path)
    assert asked.status_code == 200
    assert "Confirm your password" in asked.text
    assert ACME_KEY not in asked.text

    wrong = dashboard.post(path, {"password": "guess guess guess"})
    assert wrong.status_code == 403
    assert ACME_KEY not in wrong.text
    assert not [e for e in audit_trail(world) if e.action == "sso.key_revealed"]

    shown = dashboard.post(path, {"password": PASSWORD})
    assert shown.status_code == 200
    assert ACME_KEY in shown.text
    assert shown.headers["cache-control"] == "no-store"

    # Sudo mode: for a few minutes the password is not asked again, but each reveal is recorded.
    again = dashboard.post(path)
    assert ACME_KEY in again.text
    revealed = [e for e in audit_trail(world) if e.action == "sso.key_revealed"]
    assert len(revealed) == 2
    assert revealed[0].actor == ADMIN_EMAIL
    assert revealed[0].detail == f"key {kid}"
    assert revealed[0].ip == "testclient"
    assert revealed[0].user_agent == "testclient"

    world.clock.advance(SUDO_SECONDS)
    later = dashboard.post(path)
    assert "Confirm your password" in later.text
    assert ACME_KEY not in later.text

    # The audit trail page says who and when, and never shows the key.
    trail = dashboard.get("/audit")
    assert "SSO key revealed" in trail.text
    assert ACME_KEY not in trail.text


def test_reveal_is_only_for_the_active_key(world: World) -> None:
    dashboard = admin_of_acme(world)
    old_kid = world.company("acme").sso_keys[0].kid
    dashboard.post(f"{SSO}/keys/rotate", {"grace": "1h"})
    response = dashboard.post(f"{SSO}/keys/{old_kid}/reveal", {"password": PASSWORD})
    assert response.status_code == 404
    assert ACME_KEY not in response.text


def test_wrong_passwords_in_sudo_are_limited(world: World) -> None:
    dashboard = admin_of_acme(world)
    kid = world.company("acme").sso_keys[0].kid
    path = f"{SSO}/keys/{kid}/reveal"
    for _ in range(4):
        assert dashboard.post(path, {"password": "guess guess guess"}).status_code == 403
    blocked = dashboard.post(path, {"password": "guess guess guess"})
    assert "Too many wrong passwords" in blocked.text
    still_blocked = dashboard.post(path, {"password": PASSWORD})
    assert ACME_KEY not in still_blocked.text


def test_failed_sign_ins_are_rate_limited(world: World) -> None:
    make_admin(world)
    client = world.client("dashboard")
    answers = [attempt_sign_in(client, ADMIN_EMAIL, f"wrong password {n}").status_code for n in range(10)]
    assert answers == [401] * 9 + [429]
    blocked = attempt_sign_in(client, ADMIN_EMAIL, PASSWORD)  # even the right password waits
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in blocked.text
    assert ADMIN_COOKIE not in client.cookies


def test_one_time_password_must_be_changed_first(world: World) -> None:
    make_admin(world, must_change=True)
    client = world.client("dashboard")
    response = attempt_sign_in(client, ADMIN_EMAIL, PASSWORD)
    assert response.headers["location"] == "/account"
    assert client.get(SSO).headers["location"] == "/account"
    account = client.get("/account")
    assert "one-time password" in account.text
    new = "a much better passphrase"
    changed = client.post(
        "/account/password",
        data={
            "csrf_token": form_token(account.text),
            "current_password": PASSWORD,
            "new_password": new,
            "confirm_password": new,
        },
    )
    assert changed.status_code == 303
    assert client.get(SSO).status_code == 200
    assert attempt_sign_in(world.client("dashboard"), ADMIN_EMAIL, PASSWORD).status_code == 401
    assert attempt_sign_in(world.client("dashboard"), ADMIN_EMAIL, new).status_code == 303


def test_password_change_checks_and_ends_other_sessions(world: World) -> None:
    make_admin(world)
    laptop = sign_in(world)
    phone = sign_in(world)
    new = "another long passphrase"

    def change(current: str, password: str, confirm: str) -> int:
        data = {"current_password": current, "new_password": password, "confirm_password": confirm}
        return laptop.post("/account/password", data).status_code

    assert change(PASSWORD, "short", "short") == 400
    assert change(PASSWORD, new, new + "x") == 400
    assert change("not my password!", new, new) == 403
    assert change(PASSWORD, new, new) == 303
    assert laptop.get(SSO).status_code == 200
    assert phone.get(SSO).headers["location"] == "/sign-in"
    assert "admin.password_changed" in [e.action for e in audit_trail(world)]


def test_sessions_end_when_idle_and_at_their_absolute_limit(world: World) -> None:
    dashboard = admin_of_acme(world)
    settings = world.settings
    world.clock.advance(settings.session_idle_seconds - 1)
    assert dashboard.get(SSO).status_code == 200  # activity keeps it alive
    world.clock.advance(settings.session_idle_seconds)
    assert dashboard.get(SSO).headers["location"] == "/sign-in"

    active = sign_in(world)
    for _ in range(settings.session_absolute_seconds // (settings.session_idle_seconds // 2) + 1):
        world.clock.advance(settings.session_idle_seconds // 2)
        if active.get(SSO).status_code != 200:
            break
    else:
        pytest.fail("the session outlived its absolute limit")
    assert active.get(SSO).headers["location"] == "/sign-in"


def test_company_switcher_for_an_admin_of_several_companies(world: World) -> None:
    admin_id = make_admin(world)
    run(world.store.admins.grant(admin_id, world.company("globex").id))
    dashboard = sign_in(world)
    page = dashboard.get(SSO)
    assert "Switch" in page.text
    assert "Acme Corporation" in page.text
    globex = world.company("globex")
    switched = dashboard.post("/switch", {"company_id": str(globex.id)})
    assert switched.status_code == 303
    page = dashboard.get(f"{SSO}/log")
    assert f'<option value="{globex.id}" selected>Globex' in page.text
    # Changes now apply to globex, not acme.
    dashboard.post(f"{SSO}/enabled", {"enabled": "off", "confirm": "yes"})
    assert not world.company("globex").sso_enabled
    assert world.company("acme").sso_enabled


def test_an_admin_cannot_switch_to_another_company(world: World) -> None:
    dashboard = admin_of_acme(world)
    response = dashboard.post("/switch", {"company_id": str(world.company("globex").id)})
    assert response.status_code == 404
    dashboard.post(f"{SSO}/enabled", {"enabled": "off", "confirm": "yes"})
    assert world.company("globex").sso_enabled


def test_audit_trail_is_per_company(world: World) -> None:
    dashboard = admin_of_acme(world)
    make_admin(world, email="hank@globex.example", company="globex")
    globex = sign_in(world, email="hank@globex.example")
    globex.post(f"{SSO}/enabled", {"enabled": "off", "confirm": "yes"})
    page = dashboard.get("/audit")
    assert "hank@globex.example" not in page.text
    assert "Single sign-on turned off" not in page.text
    assert ADMIN_EMAIL in page.text


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"content-type": "multipart/form-data; boundary=x"}, b"--x\r\nnot a part", 400),
        ({"content-type": "multipart/form-data"}, b"no boundary", 400),
        ({"content-type": "application/x-www-form-urlencoded"}, b"a=" + b"x" * 70_000, 413),
        ({"content-type": "application/x-www-form-urlencoded"}, b"\xff\xfe=\xff", 400),  # not UTF-8
    ],
)
def test_malformed_forms_get_an_error_page(world: World, headers: dict[str, str], body: bytes, status: int) -> None:
    dashboard: Dashboard = admin_of_acme(world)
    response = dashboard.client.post(f"{SSO}/policy", content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert world.company("acme").policy.leeway == 60
