"""Email sign-in end to end: the real app over HTTP, its mail sent by the mail deliverer to a real SMTP server."""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from billportal.app import build_app
from billportal.portal.email_sign_in import ANSWER_SECONDS
from billportal.services.mail import MailConfig, MailDeliverer
from billportal.storage import schema as t
from tests import factories
from tests.conftest import World, run
from tests.functional.dashboard_support import SSO, admin_of_acme
from tests.functional.test_api import dashboard as api_client
from tests.functional.test_api import error, new_key
from tests.functional.test_dashboard_cli import cli
from tests.mail_server import MailServer, smtp_server

__all__ = ["cli"]  # a fixture, imported so that it is found here

WILE = "wile@example.com"
COOKIE = "__Host-bp_session"
_LINK = re.compile(r"https://acme\.localhost(/login/email/[A-Za-z0-9_-]+)")
_CODE = re.compile(r"code on the sign-in page: ([0-9]{6})")


@pytest.fixture(scope="module")
def smtp() -> Iterator[MailServer]:
    with smtp_server() as server:
        yield server


@dataclass
class Mail:
    """The world with email sign-in on for acme, and its mail going to a real SMTP server."""

    world: World
    inbox: MailServer
    app: Any

    def client(self, address: str = "203.0.113.7", **kwargs: Any) -> TestClient:
        return TestClient(
            self.app, base_url="https://acme.localhost", follow_redirects=False, client=(address, 40000), **kwargs
        )

    def deliver(self) -> None:
        """Send what the queue holds, as the serving process's deliverer does."""
        config = MailConfig.from_settings(
            replace(self.world.settings, smtp_url=f"smtp://{self.inbox.host}:{self.inbox.port}")
        )
        run(MailDeliverer(self.world.store, config).run_until_idle(self.world.clock.now))

    def ask(self, browser: TestClient, email: str = WILE, **fields: str) -> Any:
        return browser.post("/login/email", data={"email": email, **fields})

    def newest(self, address: str = WILE) -> tuple[str, str]:
        """The path of the newest link sent to ``address``, and its code."""
        self.deliver()
        found = self.sign_in_mails(address)
        assert found, f"no mail to {address}"
        text = _text(found[-1])
        link, code = _LINK.search(text), _CODE.search(text)
        assert link is not None, text
        assert code is not None, text
        return link[1], code[1]

    def sign_in_mails(self, address: str) -> list[EmailMessage]:
        return [r.message for r in self.inbox.by_kind("sign_in") if address in r.recipients]

    def reasons(self) -> list[tuple[str, str, str]]:
        events = run(self.world.store.sign_in_events(self.world.acme.id, limit=100))
        return [(e.method, e.result, e.reason) for e in events]

    def sessions(self) -> int:
        count: int = run(
            self.world.store.read(lambda conn: conn.execute(select(func.count()).select_from(t.sessions)).scalar_one())
        )
        return count


@pytest.fixture
def mail(world: World, smtp: MailServer) -> Mail:
    smtp.received.clear()
    run(factories.company_settings(world.store, world.acme, email_sign_in=True))
    world.store.forget_company("acme")
    return Mail(world, smtp, build_app(world.settings, world.store, world.clock))


def _button(page: str) -> dict[str, str]:
    token = re.search(r'name="token" value="([^"]+)"', page)
    button = re.search(r'name="button" value="([^"]+)"', page)
    assert token is not None
    assert button is not None
    return {"token": token[1], "button": button[1]}


def _signed_in(answer: Any) -> bool:
    return answer.status_code == 303 and any(c.startswith(f"{COOKIE}=") for c in answer.headers.get_list("set-cookie"))


# -- off by default ------------------------------------------------------------------------------------


def test_email_sign_in_is_off_until_the_company_turns_it_on(world: World, smtp: MailServer) -> None:
    browser = world.client()
    page = browser.get("/login")
    assert "Email me a sign-in link" not in page.text
    assert page.status_code == 200
    assert "Open the billing portal from the app or website of Acme Corporation" in page.text
    assert "Sign-in link not valid" in browser.get("/login/email/" + "a" * 43).text
    assert browser.post("/login/email", data={"email": WILE}).status_code == 404
    assert browser.post("/login/code", data={"email": WILE, "code": "123456"}).status_code == 404

    dashboard = admin_of_acme(world)
    policy = dashboard.get(f"{SSO}/policy")
    assert 'name="email_sign_in"' in policy.text
    fields = {"leeway": "60", "max_lifetime": "", "allowed_issuers": "", "sign_in_url": "", "sign_out_url": ""}
    saved = dashboard.post(f"{SSO}/policy", {**fields, "error_url": "", "email_sign_in": "on"})
    assert saved.status_code == 303
    assert world.company("acme").email_sign_in
    assert "email sign-in: off → on" in dashboard.get("/audit").text
    assert "Email me a sign-in link" in world.client().get("/login").text


# -- one answer for every address ---------------------------------------------------------------------


def test_an_unknown_address_gets_the_same_answer_in_the_same_time(mail: Mail) -> None:
    browser = mail.client()
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    bodies: dict[str, str] = {}
    for _ in range(3):
        for kind, address in (("known", WILE), ("unknown", "nobody@example.com")):
            started = time.monotonic()
            answer = mail.ask(browser, address)
            timings[kind].append(time.monotonic() - started)
            assert answer.status_code == 200
            bodies[kind] = answer.text.replace(address, "ADDRESS")
    assert bodies["known"] == bodies["unknown"]
    assert "If Acme Corporation knows this address, a sign-in link is on its way" in bodies["known"]
    for each in timings.values():
        assert min(each) >= ANSWER_SECONDS
    assert abs(statistics.median(timings["known"]) - statistics.median(timings["unknown"])) < 0.1
    mail.deliver()
    assert len(mail.sign_in_mails(WILE)) == 3
    assert mail.sign_in_mails("nobody@example.com") == []
    assert mail.sessions() == 0


def test_a_malformed_address_is_asked_again_without_an_error(mail: Mail) -> None:
    answer = mail.ask(mail.client(), "not an address")
    assert answer.status_code == 400
    assert "Enter an email address." in answer.text


# -- the link: a scanner changes nothing, the button signs in once --------------------------------------


def test_a_scanner_opening_the_link_three_times_signs_nobody_in_and_then_the_button_does(mail: Mail) -> None:
    mail.ask(mail.client(), "WILE@Example.com ", redirect_to="invoices")  # any case, any spaces
    link, _code = mail.newest()
    scanner = mail.client("198.51.100.9")
    for _ in range(3):
        opened = scanner.get(link)
        assert opened.status_code == 200
        assert "set-cookie" not in opened.headers
        assert opened.headers["referrer-policy"] == "no-referrer"
        head = scanner.head(link)
        assert head.status_code == 200
        assert "set-cookie" not in head.headers
    assert mail.sessions() == 0
    assert mail.reasons() == []  # a GET writes nothing, not even to the log

    person = mail.client()
    page = person.get(link)
    assert "Press the button to sign in" in page.text
    answer = person.post("/login/email/confirm", data=_button(page.text))
    assert _signed_in(answer)
    assert answer.headers["location"] == "/invoices"
    assert person.get("/invoices").status_code == 200
    assert mail.reasons() == [("email", "success", "ok")]
    event = run(mail.world.store.sign_in_events(mail.world.acme.id))[0]
    assert event.customer_id == 1234


def test_the_link_is_single_use_after_the_press(mail: Mail) -> None:
    mail.ask(mail.client())
    link, code = mail.newest()
    page = mail.client().get(link)
    assert _signed_in(mail.client().post("/login/email/confirm", data=_button(page.text)))

    again = mail.client().post("/login/email/confirm", data=_button(page.text))
    assert again.status_code == 401
    assert "This sign-in link is not valid, or has expired" in again.text
    assert "Email me a sign-in link" in again.text  # the way to a new one
    reopened = mail.client().get(link)
    assert "Press the button" not in reopened.text
    # Its code went with it.
    assert mail.client().post("/login/code", data={"email": WILE, "code": code}).status_code == 401
    assert mail.reasons()[:2] == [("email", "failure", "email_code_wrong"), ("email", "failure", "email_link_used")]
    assert mail.sessions() == 1


def test_the_button_needs_its_own_token_bound_to_the_link(mail: Mail) -> None:
    mail.ask(mail.client())
    mail.ask(mail.client("203.0.113.8"))
    first, _ = mail.newest()
    token = first.rsplit("/", 1)[1]
    other_page = mail.client().get(first)
    for forged in ({"token": token}, {"token": token, "button": "0" * 64}):
        answer = mail.client().post("/login/email/confirm", data=forged)
        assert answer.status_code == 401
    assert mail.reasons()[0] == ("email", "failure", "email_button_invalid")
    assert mail.sessions() == 0
    assert _signed_in(mail.client().post("/login/email/confirm", data=_button(other_page.text)))


def test_the_link_expires_after_15_minutes(mail: Mail) -> None:
    mail.ask(mail.client())
    link, code = mail.newest()
    page = mail.client().get(link)
    mail.world.clock.advance(15 * 60)
    assert "Press the button" not in mail.client().get(link).text
    answer = mail.client().post("/login/email/confirm", data=_button(page.text))
    assert answer.status_code == 401
    assert mail.reasons()[0] == ("email", "failure", "email_link_expired")
    assert mail.client().post("/login/code", data={"email": WILE, "code": code}).status_code == 401
    assert mail.sessions() == 0


def test_a_link_from_another_companys_portal_is_unknown_here(mail: Mail) -> None:
    mail.ask(mail.client())
    link, _ = mail.newest()
    run(factories.company_settings(mail.world.store, mail.world.globex, email_sign_in=True))
    globex = TestClient(mail.app, base_url="https://globex.localhost", follow_redirects=False)
    assert "Press the button" not in globex.get(link).text


# -- the code -------------------------------------------------------------------------------------------


def test_the_code_signs_in_on_another_device(mail: Mail) -> None:
    mail.ask(mail.client(), redirect_to="/invoices/1")
    _link, code = mail.newest()
    phone = mail.client("192.0.2.50")
    answer = phone.post("/login/code", data={"email": "Wile@example.com", "code": f"{code[:3]} {code[3:]}"})
    assert _signed_in(answer)
    assert answer.headers["location"] == "/invoices/1"
    assert mail.reasons() == [("email", "success", "ok")]
    replay = mail.client().post("/login/code", data={"email": WILE, "code": code})
    assert replay.status_code == 401


def test_the_code_dies_after_five_wrong_tries(mail: Mail) -> None:
    mail.ask(mail.client())
    link, code = mail.newest()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    guesser = mail.client("192.0.2.77")
    for _ in range(5):
        answer = guesser.post("/login/code", data={"email": WILE, "code": wrong})
        assert answer.status_code == 401
        assert "That code is not right" in answer.text
    dead = guesser.post("/login/code", data={"email": WILE, "code": code})
    assert dead.status_code == 401
    assert "tried too many times" in dead.text
    reasons = [reason for _, _, reason in mail.reasons()]
    assert reasons == ["email_code_exhausted"] + ["email_code_wrong"] * 5
    assert mail.sessions() == 0
    # The link itself is still good for the person who holds it.
    page = mail.client().get(link)
    assert _signed_in(mail.client().post("/login/email/confirm", data=_button(page.text)))


# -- rate limits ------------------------------------------------------------------------------------------


def test_links_asked_for_one_address_are_limited(mail: Mail) -> None:
    for n in range(5):
        assert mail.ask(mail.client(f"203.0.113.{n + 20}")).status_code == 200
    limited = mail.ask(mail.client("203.0.113.99"))
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    mail.deliver()
    assert len(mail.sign_in_mails(WILE)) == 5
    # Other addresses are not held back.
    assert mail.ask(mail.client("203.0.113.99"), "someone@example.com").status_code == 200


def test_links_asked_for_from_one_network_are_limited_an_ipv6_client_as_its_64(mail: Mail) -> None:
    world = mail.world
    app = build_app(replace(world.settings, email_sign_ins_per_ip="3/hour"), world.store, world.clock)

    def client(address: str) -> TestClient:
        return TestClient(app, base_url="https://acme.localhost", follow_redirects=False, client=(address, 40000))

    for n in range(3):
        assert mail.ask(client(f"2001:db8:1:2::{n + 1}"), f"person{n}@example.com").status_code == 200
    # Another host of the same /64 shares the allowance; another /64 has its own.
    assert mail.ask(client("2001:db8:1:2:ffff::9"), "person9@example.com").status_code == 429
    assert mail.ask(client("2001:db8:1:3::1"), "person9@example.com").status_code == 200


def test_failed_codes_from_one_address_are_limited(mail: Mail) -> None:
    world = mail.world
    app = build_app(replace(world.settings, login_failures_per_ip="3/minute"), world.store, world.clock)
    guesser = TestClient(app, base_url="https://acme.localhost", follow_redirects=False, client=("192.0.2.9", 1))
    for _ in range(3):
        assert guesser.post("/login/code", data={"email": WILE, "code": "000000"}).status_code == 401
    assert guesser.post("/login/code", data={"email": WILE, "code": "000000"}).status_code == 429
    assert ("email", "failure", "rate_limited") in mail.reasons()


# -- login CSRF, recovery, the sign-in page -------------------------------------------------------------


def test_another_sites_page_cannot_post_the_forms(mail: Mail) -> None:
    mail.ask(mail.client())
    _link, code = mail.newest()
    for headers in (
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "https://evil.example"},
    ):
        answer = mail.client().post("/login/code", data={"email": WILE, "code": code}, headers=headers)
        assert answer.status_code == 403
    assert mail.sessions() == 0
    # A page with no referrer makes the browser send Origin: null; Sec-Fetch-Site says where it came from.
    same = {"sec-fetch-site": "same-origin", "origin": "null"}
    assert _signed_in(mail.client().post("/login/code", data={"email": WILE, "code": code}, headers=same))


def test_a_bad_link_with_no_remote_sign_in_shows_the_email_form(mail: Mail) -> None:
    world = mail.world
    expired = world.token({"sub": 1234, "iss": "Ruby Backend", "exp": world.clock.now - 3600})
    answer = mail.client().get(f"/login/{expired}")
    assert answer.status_code == 401
    assert 'action="/login/email"' in answer.text
    assert "expired" not in answer.text.split("<main", 1)[1].split("has expired")[0]  # no reason code shown
    assert mail.reasons()[0] == ("sso", "failure", "expired")


def test_a_signed_out_visit_is_sent_to_the_email_form_and_comes_back_to_the_page(mail: Mail) -> None:
    browser = mail.client()
    visit = browser.get("/invoices")
    assert visit.status_code == 303
    assert visit.headers["location"] == "/login?redirect_to=invoices"
    form = browser.get(visit.headers["location"])
    assert 'name="redirect_to" value="invoices"' in form.text
    mail.ask(browser, redirect_to="invoices")
    link, _ = mail.newest()
    answer = browser.post("/login/email/confirm", data=_button(browser.get(link).text))
    assert answer.headers["location"] == "/invoices"


def test_the_sign_in_event_names_the_method_in_the_dashboards_log(mail: Mail) -> None:
    mail.ask(mail.client())
    _link, code = mail.newest()
    assert _signed_in(mail.client().post("/login/code", data={"email": WILE, "code": code}))
    sso = mail.world.token()
    assert mail.client().get(f"/login/{sso}").status_code == 303
    assert [method for method, _, _ in mail.reasons()] == ["sso", "email"]
    # The dashboard's log, its CSV and the API say so too.
    dashboard = admin_of_acme(mail.world)
    assert "by email" in dashboard.get(f"{SSO}/log").text
    csv_lines = dashboard.get(f"{SSO}/log.csv").text.splitlines()
    assert csv_lines[0].endswith(',"method"')
    assert csv_lines[1].endswith(',"sso"')
    assert csv_lines[2].endswith(',"email"')
    api = api_client(mail.world, new_key(mail.world))
    events = api.get("/api/v1/sign_in_events").json()["data"]
    assert [e["method"] for e in events] == ["sso", "email"]


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    content: str = body.get_content()
    return content


def test_the_email_carries_the_link_and_code_and_no_session(mail: Mail) -> None:
    mail.ask(mail.client())
    mail.deliver()
    message = mail.sign_in_mails(WILE)[-1]
    assert message["Subject"] == "Sign in to the billing portal of Acme Corporation"
    assert message["X-Billportal-Kind"] == "sign_in"
    text = _text(message)
    assert _LINK.search(text)
    assert _CODE.search(text)
    html = message.get_body(("html",))
    assert html is not None
    # Only hashes are stored: the link's token is nowhere in the table of links.
    token = _LINK.search(text)[1].rsplit("/", 1)[1]  # type: ignore[index]
    rows = run(mail.world.store.read(lambda conn: conn.execute(select(t.email_sign_ins)).all()))
    assert rows
    assert all(token.encode() not in bytes(row.link_hash) and len(row.link_hash) == 32 for row in rows)


def test_the_cli_turns_email_sign_in_on_and_off(world: World, cli: Any) -> None:
    status, out, err = cli("email-sign-in", "show", "--tenant", "acme")
    assert status == 0, err
    assert (status, json.loads(out)) == (0, {"tenant": "acme", "email_sign_in": False, "changed": False})
    status, out, err = cli("email-sign-in", "on", "--tenant", "acme")
    assert status == 0, err
    assert json.loads(out) == {"tenant": "acme", "email_sign_in": True, "changed": True}
    assert world.company("acme").email_sign_in
    assert "Email me a sign-in link" in world.client().get("/login").text
    status, out, _ = cli("email-sign-in", "off", "--tenant", "acme")
    assert json.loads(out)["email_sign_in"] is False
    assert world.client().post("/login/email", data={"email": WILE}).status_code == 404
    status, _out, err = cli("email-sign-in", "on", "--tenant", "nope")
    assert status != 0
    assert len(err.strip().splitlines()) == 1


def test_the_api_turns_email_sign_in_on_and_off(world: World) -> None:
    api = api_client(world, new_key(world))
    assert api.get("/api/v1/company").json()["email_sign_in"] is False
    turned = api.patch("/api/v1/company", json={"email_sign_in": True})
    assert turned.status_code == 200, turned.text
    assert turned.json()["email_sign_in"] is True
    assert world.company("acme").email_sign_in
    assert "Email me a sign-in link" in world.client().get("/login").text
    error(api.patch("/api/v1/company", json={"email_sign_in": "yes"}), 400, "invalid_field", "email_sign_in")
    assert api.patch("/api/v1/company", json={"email_sign_in": False}).json()["email_sign_in"] is False


def test_expired_links_are_pruned_a_day_after_their_end(mail: Mail) -> None:
    mail.ask(mail.client())

    def links() -> int:
        count: int = run(
            mail.world.store.read(
                lambda conn: conn.execute(select(func.count()).select_from(t.email_sign_ins)).scalar_one()
            )
        )
        return count

    world = mail.world
    run(world.store.prune_sessions(world.clock.now + 15 * 60 + 60, world.settings.session_idle_seconds))
    assert links() == 1  # expired, and kept a day so that a late press is logged as expired
    run(world.store.prune_sessions(world.clock.now + 15 * 60 + 86400, world.settings.session_idle_seconds))
    assert links() == 0


def test_the_sign_in_page_without_email_sign_in_sends_to_the_companys_app(world: World) -> None:
    run(factories.company_settings(world.store, world.acme, sign_in_url="https://app.acme.example/portal"))
    world.store.forget_company("acme")
    answer = world.client().get("/login", params={"redirect_to": "/invoices/3"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "https://app.acme.example/portal?redirect_to=%2Finvoices%2F3"
    hostile = world.client().get("/login", params={"redirect_to": "https://evil.example"})
    assert hostile.headers["location"] == "https://app.acme.example/portal?redirect_to=my_account"


def test_an_invoice_emails_link_signs_in_once_on_that_invoice_and_scanners_cannot_spend_it(mail: Mail) -> None:
    """With email sign-in on, the link in an invoice's email is a sign-in link for that customer and invoice."""
    world = mail.world
    invoice = run(factories.invoice(world.store, world.acme.id, 1234, now=world.clock.now))
    mail.deliver()
    (received,) = [r for r in mail.inbox.by_kind("invoice_issued") if WILE in r.recipients][-1:]
    link = _LINK.search(_text(received.message))
    assert link is not None, _text(received.message)
    scanner = mail.client("198.51.100.9")
    for _ in range(3):  # a mail scanner following the link, as Safe Links does
        assert scanner.get(link[1]).status_code == 200
        assert scanner.head(link[1]).status_code == 200
    assert mail.sessions() == 0
    person = mail.client()
    page = person.get(link[1])
    answer = person.post("/login/email/confirm", data=_button(page.text))
    assert _signed_in(answer)
    assert answer.headers["location"] == f"/invoices/{invoice.id}"
    assert invoice.number in person.get(answer.headers["location"]).text
    # Opened twice: the second press signs nobody in.
    again = mail.client().post("/login/email/confirm", data=_button(page.text))
    assert again.status_code == 401
    assert mail.sessions() == 1


def test_without_email_sign_in_an_invoices_email_links_to_the_page_itself(world: World, smtp: MailServer) -> None:
    smtp.received.clear()
    invoice = run(factories.invoice(world.store, world.acme.id, 1234, now=world.clock.now))
    config = MailConfig.from_settings(replace(world.settings, smtp_url=f"smtp://{smtp.host}:{smtp.port}"))
    run(MailDeliverer(world.store, config).run_until_idle(world.clock.now))
    texts = [_text(r.message) for r in smtp.by_kind("invoice_issued") if WILE in r.recipients]
    assert any(f"https://acme.localhost/invoices/{invoice.id}" in text for text in texts), texts
    assert not any("/login/email/" in text for text in texts)
