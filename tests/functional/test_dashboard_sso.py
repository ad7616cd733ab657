"""Settings > Developers > Single Sign-On over HTTP: what each setting does to ``/login``."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from tests import factories
from tests.conftest import ACME_KEY, World, run
from tests.functional.dashboard_support import PASSWORD, SSO, Dashboard, admin_of_acme, make_admin, sign_in

SESSION = "__Host-bp_session"


def login(world: World, token: str, **kwargs: Any) -> tuple[int, str]:
    """Open a sign-in link on acme's portal: (status, reason code of the newest log entry)."""
    response = world.client("acme", **kwargs).get(f"/login/{token}")
    newest = run(world.store.sign_in_events(world.company("acme").id, limit=1))[0]
    return response.status_code, newest.reason


def signs_in(world: World, token: str) -> bool:
    status, reason = login(world, token)
    return status == 303 and reason == "ok"


def reveal_active(dashboard: Dashboard, world: World) -> tuple[str, str]:
    """(kid, key) of the active key, as an admin reveals it."""
    kid = next(k.kid for k in world.company("acme").sso_keys if k.state == "active")
    page = dashboard.post(f"{SSO}/keys/{kid}/reveal", {"password": PASSWORD})
    match = re.search(r'id="sso-key"[^>]*value="([^"]+)"', page.text)
    assert match, page.text
    return kid, match.group(1)


def claims(world: World, **extra: Any) -> dict[str, Any]:
    now = world.clock.now
    return {"sub": 1234, "iss": "Ruby Backend", "iat": now, "exp": now + 300, **extra}


# -- rotation ------------------------------------------------------------------------


def test_rotation_with_grace_old_and_new_keys_both_sign_in_until_the_old_is_revoked(world: World) -> None:
    dashboard = admin_of_acme(world)
    old_kid = world.company("acme").sso_keys[0].kid
    old_link = world.token(claims(world))  # made by the company's backend before the rotation

    rotated = dashboard.post(f"{SSO}/keys/rotate", {"grace": "1h"})
    assert rotated.status_code == 303
    new_kid, new_key = reveal_active(dashboard, world)
    assert new_kid != old_kid
    assert new_key != ACME_KEY
    page = dashboard.get(SSO)
    assert "retiring" in page.text
    assert "Revoke now" in page.text

    assert signs_in(world, old_link)
    assert signs_in(world, world.token(claims(world)))  # still made with the old key
    assert signs_in(world, world.token(claims(world), key=new_key))

    revoked = dashboard.post(f"{SSO}/keys/{old_kid}/revoke")
    assert revoked.status_code == 303
    assert login(world, world.token(claims(world))) == (401, "key_revoked")
    assert signs_in(world, world.token(claims(world), key=new_key))
    actions = [e.action for e in run(world.store.admins.audit_events(world.company("acme").id))]
    assert actions[:3] == ["sso.key_revoked", "sso.key_revealed", "sso.key_rotated"]


def test_the_old_key_stops_when_the_grace_period_ends(world: World) -> None:
    dashboard = admin_of_acme(world)
    dashboard.post(f"{SSO}/keys/rotate", {"grace": "1h"})
    _, new_key = reveal_active(dashboard, world)
    world.clock.advance(3600 - 1)
    assert signs_in(world, world.token(claims(world)))
    world.clock.advance(1)
    assert login(world, world.token(claims(world))) == (401, "key_retired")
    assert signs_in(world, world.token(claims(world), key=new_key))
    assert "retired" in sign_in(world).get(SSO).text  # the first session idled out meanwhile


@pytest.mark.parametrize(("grace", "seconds"), [("24h", 86400), ("7d", 7 * 86400)])
def test_longer_grace_periods(world: World, grace: str, seconds: int) -> None:
    dashboard = admin_of_acme(world)
    dashboard.post(f"{SSO}/keys/rotate", {"grace": grace})
    world.clock.advance(seconds - 60)
    assert signs_in(world, world.token(claims(world)))
    world.clock.advance(60)
    assert login(world, world.token(claims(world)))[1] == "key_retired"


def test_rotation_without_grace_stops_the_old_key_at_once(world: World) -> None:
    dashboard = admin_of_acme(world)
    dashboard.post(f"{SSO}/keys/rotate", {"grace": "none", "confirm": "yes"})
    assert login(world, world.token(claims(world))) == (401, "key_revoked")
    _, new_key = reveal_active(dashboard, world)
    assert signs_in(world, world.token(claims(world), key=new_key))


def test_the_active_key_cannot_be_revoked_and_grace_must_be_offered(world: World) -> None:
    dashboard = admin_of_acme(world)
    kid = world.company("acme").sso_keys[0].kid
    assert dashboard.post(f"{SSO}/keys/{kid}/revoke").status_code == 409
    assert dashboard.post(f"{SSO}/keys/rotate", {"grace": "3d"}).status_code == 400
    assert [k.state for k in world.company("acme").sso_keys] == ["active"]
    assert signs_in(world, world.token(claims(world)))


def test_a_kid_in_the_header_picks_the_key(world: World) -> None:
    dashboard = admin_of_acme(world)
    old_kid = world.company("acme").sso_keys[0].kid
    dashboard.post(f"{SSO}/keys/rotate", {"grace": "1h"})
    new_kid, new_key = reveal_active(dashboard, world)
    assert signs_in(world, world.token(claims(world), kid=old_kid))
    assert signs_in(world, world.token(claims(world), key=new_key, kid=new_kid))
    # Checked against the named key only: another usable key does not rescue it.
    assert login(world, world.token(claims(world), kid=new_kid)) == (401, "signature_invalid")
    assert login(world, world.token(claims(world), key=new_key, kid=old_kid)) == (401, "signature_invalid")
    assert login(world, world.token(claims(world), kid="sso_000000000000")) == (401, "kid_unknown")
    dashboard.post(f"{SSO}/keys/{old_kid}/revoke")
    assert login(world, world.token(claims(world), kid=old_kid)) == (401, "key_revoked")


def test_weak_imported_key_shows_a_warning(world: World) -> None:
    company_id = run(factories.company(world.store, "shorty", "secret", weak=True, now=world.clock.now)).id
    make_admin(world, email="sam@shorty.example", company="shorty")
    dashboard = sign_in(world, email="sam@shorty.example")
    page = dashboard.get(SSO)
    assert "The active key is weak" in page.text
    dashboard.post(f"{SSO}/keys/rotate", {"grace": "1h"})
    assert "The active key is weak" not in dashboard.get(SSO).text
    assert company_id


# -- SSO on and off, and the policy ----------------------------------------------------


def test_turning_sso_off_refuses_every_link(world: World) -> None:
    dashboard = admin_of_acme(world)
    dashboard.post(f"{SSO}/enabled", {"enabled": "off", "confirm": "yes"})
    assert login(world, world.token(claims(world))) == (401, "sso_disabled")
    assert "sso_disabled" in dashboard.get(SSO).text
    dashboard.post(f"{SSO}/enabled", {"enabled": "on"})
    assert signs_in(world, world.token(claims(world)))


POLICY = {
    "leeway": "60",
    "max_lifetime": "",
    "allowed_issuers": "",
    "sign_in_url": "",
    "sign_out_url": "",
    "error_url": "",
}


def save_policy(dashboard: Dashboard, **changes: str) -> Any:
    return dashboard.post(f"{SSO}/policy", {**POLICY, **changes})


def test_leeway(world: World) -> None:
    dashboard = admin_of_acme(world)
    now = world.clock.now
    late = {"sub": 1234, "exp": now - 30}
    assert signs_in(world, world.token(late))  # within the default 60 s
    assert save_policy(dashboard, leeway="0").status_code == 303
    assert login(world, world.token(late)) == (401, "expired")
    assert save_policy(dashboard, leeway="45").status_code == 303
    assert signs_in(world, world.token(late))


def test_maximum_link_lifetime(world: World) -> None:
    dashboard = admin_of_acme(world)
    day_long = claims(world, exp=world.clock.now + 86400)
    assert signs_in(world, world.token(day_long))
    save_policy(dashboard, max_lifetime="5m")
    assert world.company("acme").policy.max_lifetime == 300
    assert login(world, world.token(day_long)) == (401, "lifetime_too_long")
    assert signs_in(world, world.token(claims(world, exp=world.clock.now + 300)))
    # Without iat, the lifetime counts from now.
    assert signs_in(world, world.token({"sub": 1234, "exp": world.clock.now + 200}))


def test_single_use_links(world: World) -> None:
    dashboard = admin_of_acme(world)
    assert signs_in(world, world.token(claims(world)))
    save_policy(dashboard, require_jti="on")
    assert login(world, world.token(claims(world))) == (401, "jti_required")
    once = world.token(claims(world, jti=uuid.uuid4().hex))
    assert signs_in(world, once)
    assert login(world, once) == (401, "jti_replayed")


def test_allowed_issuers(world: World) -> None:
    dashboard = admin_of_acme(world)
    save_policy(dashboard, allowed_issuers="Ruby Backend\r\n  Node Backend  \r\n\r\n")
    assert world.company("acme").policy.allowed_issuers == frozenset({"Ruby Backend", "Node Backend"})
    assert signs_in(world, world.token(claims(world)))
    assert signs_in(world, world.token(claims(world, iss="Node Backend")))
    assert login(world, world.token(claims(world, iss="Python Backend"))) == (401, "issuer_not_allowed")
    assert login(world, world.token({"sub": 1234, "exp": world.clock.now + 60})) == (401, "issuer_not_allowed")


def test_error_url_receives_the_reason_code(world: World) -> None:
    dashboard = admin_of_acme(world)
    save_policy(dashboard, error_url="https://app.acme.example/portal-error?from=billportal")
    portal = world.client("acme")
    expired = portal.get(f"/login/{world.token(claims(world, exp=world.clock.now - 3600))}")
    assert expired.status_code == 303
    target = urlsplit(expired.headers["location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "app.acme.example", "/portal-error")
    assert parse_qs(target.query) == {"from": ["billportal"], "error": ["expired"]}
    forged = portal.get(f"/login/{world.token(claims(world), key='not-acme-key-0123456789abcdefghijkl')}")
    assert parse_qs(urlsplit(forged.headers["location"]).query)["error"] == ["signature_invalid"]
    assert SESSION not in portal.cookies
    save_policy(dashboard, error_url="")
    assert login(world, world.token(claims(world, exp=world.clock.now - 3600)))[0] == 401


def test_sign_in_url_takes_visitors_without_a_session(world: World) -> None:
    dashboard = admin_of_acme(world)
    portal = world.client("acme")
    assert portal.get("/invoices").status_code == 401  # the portal's own "please sign in" page
    save_policy(dashboard, sign_in_url="https://app.acme.example/billing?tab=portal")
    answer = portal.get("/invoices")
    assert answer.status_code == 303
    assert answer.headers["location"] == "https://app.acme.example/billing?tab=portal&redirect_to=invoices"
    assert portal.get("/").headers["location"].endswith("redirect_to=my_account")


def test_sign_out_url_is_where_customers_go_after_signing_out(world: World) -> None:
    dashboard = admin_of_acme(world)
    save_policy(dashboard, sign_out_url="https://app.acme.example/")
    portal = world.client("acme")
    portal.get(f"/login/{world.token(claims(world))}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', portal.get("/").text)
    assert csrf
    out = portal.post("/logout", data={"csrf_token": csrf.group(1)})
    assert out.status_code == 303
    assert out.headers["location"] == "https://app.acme.example/"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sign_in_url", "http://app.acme.example/"),  # http only for localhost
        ("sign_in_url", "javascript:alert(1)"),
        ("sign_out_url", "//evil.example/"),
        ("sign_out_url", "/relative/path"),
        ("error_url", "https://user:pass@app.acme.example/"),
        ("error_url", "https://app.acme.example/#errors"),
        ("error_url", "https://app.acme.example/a b"),
        ("error_url", "https://app.acme.example:99999/"),
        ("sign_in_url", "https://" + "a" * 2000 + ".example/"),
        ("leeway", "-5"),
        ("leeway", "601"),
        ("leeway", "sixty"),
        ("max_lifetime", "forever"),
        ("max_lifetime", "0"),
        ("allowed_issuers", "x" * 201),
    ],
)
def test_policy_form_refuses_bad_values_and_saves_nothing(world: World, field: str, value: str) -> None:
    dashboard = admin_of_acme(world)
    response = save_policy(dashboard, **{"leeway": "10", field: value})  # the good leeway is not saved either
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.text
    assert "Nothing was saved" in response.text
    acme = world.company("acme")
    assert acme.policy.leeway == 60
    assert (acme.sign_in_url, acme.sign_out_url, acme.error_url) == ("", "", "")


@pytest.mark.parametrize(
    "url",
    ["http://localhost:3000/portal", "http://app.localhost/x", "http://127.0.0.1:8080/", "https://a.example/?q=1"],
)
def test_policy_form_accepts_https_and_local_http(world: World, url: str) -> None:
    dashboard = admin_of_acme(world)
    assert save_policy(dashboard, sign_in_url=url).status_code == 303
    assert world.company("acme").sign_in_url == url


def test_policy_changes_are_recorded_with_what_changed(world: World) -> None:
    dashboard = admin_of_acme(world)
    save_policy(dashboard, leeway="30", require_jti="on", error_url="https://app.acme.example/e")
    unchanged = save_policy(dashboard, leeway="30", require_jti="on", error_url="https://app.acme.example/e")
    assert unchanged.headers["location"].endswith("notice=policy_unchanged")
    changes = [e for e in run(world.store.admins.audit_events(world.company("acme").id)) if e.action.startswith("sso.")]
    assert len(changes) == 1
    assert changes[0].detail == (
        "leeway: 60 → 30; single-use links: off → on; error URL: (none) → https://app.acme.example/e"
    )
    form = dashboard.get(f"{SSO}/policy").text
    assert 'value="30"' in form
    assert "checked" in form


# -- revoke ---------------------------------------------------------------------------------


def test_reject_every_link_issued_before_now(world: World) -> None:
    dashboard = admin_of_acme(world)
    before = world.token(claims(world))
    no_iat = world.token({"sub": 1234, "iss": "Ruby Backend", "exp": world.clock.now + 600})
    world.clock.advance(10)
    assert dashboard.post(f"{SSO}/revoke/links").status_code == 303
    assert world.company("acme").policy.iat_cutoff == world.clock.now
    assert login(world, before) == (401, "issued_before_cutoff")
    assert login(world, no_iat) == (401, "iat_missing")
    assert signs_in(world, world.token(claims(world)))  # issued at the cutoff, not before
    assert "are refused now" in dashboard.get(f"{SSO}/revoke").text
    dashboard.post(f"{SSO}/revoke/cutoff")
    assert signs_in(world, before)
    actions = [e.action for e in run(world.store.admins.audit_events(world.company("acme").id))]
    assert actions[:2] == ["sso.cutoff_removed", "sso.links_cut_off"]


def test_sign_one_customer_out_everywhere(world: World) -> None:
    dashboard = admin_of_acme(world)
    browsers = [world.client("acme") for _ in range(2)]
    for browser in browsers:
        browser.get(f"/login/{world.token(claims(world))}")
        assert browser.get("/").status_code == 200
    road_runner = world.client("acme")
    road_runner.get(f"/login/{world.token(claims(world, sub=1235))}")
    response = dashboard.post(f"{SSO}/revoke/customer", {"customer": "1234"})
    assert response.status_code == 200
    assert "2 sessions ended" in response.text
    for browser in browsers:
        assert browser.get("/").status_code == 401
    assert road_runner.get("/").status_code == 200
    assert dashboard.post(f"{SSO}/revoke/customer", {"customer": "99"}).status_code == 404
    assert dashboard.post(f"{SSO}/revoke/customer", {"customer": "abc"}).status_code == 400
    # globex's customer 1234 is another company's: untouched
    assert dashboard.post(f"{SSO}/revoke/customer", {"customer": "77"}).status_code == 404


# -- try it ---------------------------------------------------------------------------------


def test_try_it_makes_a_five_minute_link_that_signs_in(world: World) -> None:
    dashboard = admin_of_acme(world)
    page = dashboard.get(f"{SSO}/try")
    assert 'option value="1234"' in page.text
    made = dashboard.post(f"{SSO}/try/link", {"password": PASSWORD, "customer": "1235", "redirect_to": "invoices"})
    assert made.status_code == 200
    match = re.search(r'id="test-link"[^>]*value="([^"]+)"', made.text)
    assert match
    link = match.group(1).replace("&amp;", "&")
    assert link.startswith("https://acme.localhost/login/")
    assert link.endswith("?redirect_to=invoices")
    assert "would sign in now" in made.text
    token = link.split("/login/", 1)[1].split("?", 1)[0]
    portal = world.client("acme")
    answer = portal.get(f"/login/{token}?redirect_to=invoices")
    assert answer.headers["location"] == "/invoices"
    assert "Road Runner" in portal.get("/").text
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["exp"] - payload["iat"] == 300
    world.clock.now = payload["exp"] + 60  # 5 minutes, and the leeway
    assert login(world, token) == (401, "expired")
    trail = run(world.store.admins.audit_events(world.company("acme").id))
    assert (trail[0].action, trail[0].detail) == ("sso.test_link", "customer 1235")


def test_try_it_follows_the_policy(world: World) -> None:
    dashboard = admin_of_acme(world)
    save_policy(dashboard, require_jti="on", allowed_issuers="Ruby Backend", max_lifetime="2m")
    made = dashboard.post(f"{SSO}/try/link", {"password": PASSWORD, "customer": "1234", "issuer": "Ruby Backend"})
    match = re.search(r'id="test-link"[^>]*value="[^"]*/login/([^"?]+)', made.text)
    assert match
    assert signs_in(world, match.group(1))
    assert "&#34;jti&#34;" in made.text or '"jti"' in made.text


def test_try_it_refuses_unknown_customers(world: World) -> None:
    dashboard = admin_of_acme(world)
    for customer in ("77", "0", "x"):
        response = dashboard.post(f"{SSO}/try/link", {"password": PASSWORD, "customer": customer})
        assert response.status_code == 400
        assert 'id="test-link"' not in response.text


def test_explain_a_pasted_token_or_link(world: World) -> None:
    dashboard = admin_of_acme(world)
    expired = world.token(claims(world, exp=world.clock.now - 3600))
    answer = dashboard.post(f"{SSO}/try/explain", {"token": f"https://acme.localhost/login/{expired}?x=1"})
    assert answer.status_code == 200
    assert "would NOT sign in now" in answer.text
    assert "<code>expired</code>" in answer.text
    assert "The link has expired." in answer.text
    good = dashboard.post(f"{SSO}/try/explain", {"token": world.token(claims(world))})
    assert "would sign in now" in good.text
    unknown = dashboard.post(f"{SSO}/try/explain", {"token": world.token(claims(world, sub=77))})
    assert "customer_unknown" in unknown.text
    garbage = dashboard.post(f"{SSO}/try/explain", {"token": "<script>alert(1)</script>"})
    assert garbage.status_code == 200
    assert "token_malformed" in garbage.text
    assert "<script>alert(1)</script>" not in garbage.text
    assert dashboard.post(f"{SSO}/try/explain", {"token": "  "}).status_code == 400
    assert ACME_KEY not in good.text


def test_explain_knows_a_single_use_link_that_was_used(world: World) -> None:
    dashboard = admin_of_acme(world)
    token = world.token(claims(world, jti="order-1"))
    before = dashboard.post(f"{SSO}/try/explain", {"token": token})
    assert "would sign in now" in before.text
    assert "the first sign-in uses it up" in before.text
    # Explaining is read-only: the link still signs in afterwards, once.
    assert signs_in(world, token)
    after = dashboard.post(f"{SSO}/try/explain", {"token": token})
    assert "would NOT sign in now" in after.text
    assert "<code>jti_replayed</code>" in after.text
    assert "used already" in after.text


def test_explain_says_when_a_retiring_key_stops(world: World) -> None:
    world.clock.now = int(datetime(2027, 1, 15, 12, tzinfo=UTC).timestamp())
    run(factories.company_settings(world.store, world.company("acme"), time_zone="America/Denver"))
    dashboard = admin_of_acme(world)
    old_kid = world.company("acme").sso_keys[0].kid
    token = world.token(claims(world))  # signed with the key about to retire
    assert dashboard.post(f"{SSO}/keys/rotate", {"grace": "1h"}).status_code == 303
    answer = dashboard.post(f"{SSO}/try/explain", {"token": token})
    # 12:00 UTC + 1 h is 06:00 in Denver (MST)
    assert "would sign in now" in answer.text
    assert "until Jan 15, 2027, 06:00:00 MST" in answer.text
    assert f"{old_kid} is retiring: links signed with it stop working at Jan 15, 2027, 06:00:00 MST" in answer.text
    world.clock.now += 3600
    late = sign_in(world).post(f"{SSO}/try/explain", {"token": world.token(claims(world))})
    assert "would NOT sign in now" in late.text


def test_try_it_names_the_pages_it_can_land_on(world: World) -> None:
    page = admin_of_acme(world).get(f"{SSO}/try")
    assert (
        '<option value="balance_forward_statement">Statement, balance forward (balance_forward_statement)</option>'
        in (page.text)
    )
    assert ">Billing details (update_billing_info)</option>" in page.text


# -- dangerous actions ask first ----------------------------------------------------------


def test_turning_sso_off_asks_first(world: World) -> None:
    dashboard = admin_of_acme(world)
    asked = dashboard.post(f"{SSO}/enabled", {"enabled": "off"})
    assert asked.status_code == 200
    assert "Turn single sign-on off?" in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    assert world.company("acme").sso_enabled  # nothing changed yet
    assert signs_in(world, world.token(claims(world)))
    done = dashboard.post(f"{SSO}/enabled", {"enabled": "off", "confirm": "yes"})
    assert done.status_code == 303
    assert not world.company("acme").sso_enabled
    # Turning it back on is not dangerous: one click.
    assert dashboard.post(f"{SSO}/enabled", {"enabled": "on"}).status_code == 303
    assert world.company("acme").sso_enabled


def test_rotating_with_no_grace_asks_first(world: World) -> None:
    dashboard = admin_of_acme(world)
    kids = [k.kid for k in world.company("acme").sso_keys]
    asked = dashboard.post(f"{SSO}/keys/rotate", {"grace": "none"})
    assert asked.status_code == 200
    assert "Rotate with no grace period?" in asked.text
    assert [k.kid for k in world.company("acme").sso_keys] == kids
    assert signs_in(world, world.token(claims(world)))
    # A grace period is not dangerous: one click.
    assert dashboard.post(f"{SSO}/keys/rotate", {"grace": "1h"}).status_code == 303
    assert dashboard.post(f"{SSO}/keys/rotate", {"grace": "none", "confirm": "yes"}).status_code == 303
    assert login(world, world.token(claims(world)))[0] == 401
