"""Email: every kind received by a real SMTP server (aiosmtpd), the outbox folder, bounces, retries, settings.

The deliverer runs as the server runs it, with the tests' clock moved by hand for the retries;
the SMTP server is a real one in a thread, asking for a user name and password.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from billportal.app import build_app
from billportal.core.config import ConfigError, Settings, SmtpServer, smtp_server
from billportal.core.errors import Refused
from billportal.services import mail
from billportal.services.audit import CLI
from billportal.services.billing import estimate_version
from billportal.services.mail import MailConfig, MailDeliverer, MailKind, MailSettings
from billportal.services.webhooks import RETRY_WINDOW, Deliverer
from billportal.storage import mail as queue
from billportal.storage.documents import Scope
from tests import factories
from tests.conftest import MASTER_KEY, World, run
from tests.functional.dashboard_support import ADMIN_EMAIL, admin_of_acme
from tests.functional.portal_world import csrf_token, signed_in
from tests.functional.test_dashboard_cli import cli
from tests.mail_server import MailServer, free_port
from tests.mail_server import smtp_server as running_smtp_server
from tests.webhook_receiver import receiving

__all__ = ["cli"]  # a fixture, imported so that it is found here
# The test server asks for a password over plain text (no certificate to make): aiosmtpd warns of it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SMTP_PASSWORD = "s3cret-Smtp-pass"
SENDER = "billing@portal.test"


@pytest.fixture
def server() -> Iterator[MailServer]:
    with running_smtp_server(logins={"mailer": SMTP_PASSWORD}) as running:
        yield running


def _config(world: World, server: MailServer, *, password: str = SMTP_PASSWORD, port: int | None = None) -> MailConfig:
    smtp = SmtpServer(server.host, port or server.port, tls=False, username="mailer", password=password)
    return MailConfig(world.settings.base_url, SENDER, smtp, world.settings.data_dir / "unused", timeout=5.0)


def _deliver(world: World, config: MailConfig) -> int:
    return run(MailDeliverer(world.store, config, rng=lambda: 0.5).run_until_idle(world.clock.now))


def _messages(world: World, company_id: int | None = None) -> list[queue.MailMessage]:
    return run(MailSettings(world.store).messages(company_id or world.acme.id))


def _customer(world: World, customer_id: int, email: str) -> None:
    run(
        factories.customer(
            world.store, world.acme.id, id=customer_id, name="Marvin Martian", email=email, now=world.clock.now
        )
    )


def test_every_kind_arrives_over_smtp_with_its_text(world: World, server: MailServer) -> None:
    now = world.clock.now
    acme = world.acme.id
    run(factories.admin(world.store, ADMIN_EMAIL, "x" * 12, acme, now=now))
    run(factories.company_settings(world.store, world.acme, accent_color="#7c2d12", support_email="help@acme.example"))
    run(MailSettings(world.store).change(acme, {"statement": True}, actor=CLI, now=now))
    invoices = {i.number: i for i in run(world.billing.documents("invoice", Scope(acme, 1234)))[0]}
    first = invoices["INV-0001"]
    run(factories.payment(world.store, acme, 1234, now=now, amount=1000, applications=[(first.id, 1000)]))
    estimate = run(factories.estimate(world.store, acme, 1234, now=now))
    run(
        world.billing.approve_estimate(
            acme, 1234, estimate.id, approved_by="Wile E.", version=estimate_version(estimate), now=now, valid_on=None
        )
    )
    run(world.billing.update_billing_info(acme, 1234, {"city": "Phoenix"}, now=now))
    run(MailSettings(world.store).statements("2026-11", now=now))

    def autopay(conn: Any) -> None:
        mail.autopay_upcoming(conn, company_id=acme, customer_id=1234, today=date(2026, 11, 29), now=now)
        mail.autopay_failed(conn, company_id=acme, customer_id=1234, invoice_id=first.id, now=now)

    run(world.store.write(autopay))
    with receiving() as receiver:  # an endpoint failing for three days is disabled, and the admins told
        receiver.script[:] = [500] * 10
        run(factories.webhook_endpoint(world.store, acme, now=now, url=receiver.url, event_types=["customer.created"]))
        _customer(world, 60, "")
        hooks = Deliverer(world.store, test_mode=True, timeout=5.0)
        run(hooks.run_until_idle(now))
        run(hooks.run_until_idle(now + RETRY_WINDOW))

    world.clock.advance(RETRY_WINDOW)  # when the endpoint was disabled
    assert _deliver(world, _config(world, server)) == len(_messages(world))
    kinds = {m.kind for m in _messages(world)}
    assert kinds == {k.value for k in MailKind} - {"sign_in", "admin_invitation"}  # each tested on its own
    assert {m.state for m in _messages(world)} == {"sent"}
    portal = "https://acme.localhost"

    issued = [r for r in server.by_kind("invoice_issued") if "INV-0001" in r.message["Subject"]]
    (one,) = issued
    assert one.recipients == ["wile@example.com"]
    assert one.message["Subject"] == "Invoice INV-0001 from Acme Corporation"
    assert "Acme Corporation" in one.message["From"]
    assert SENDER in one.message["From"]
    text, html = one.part("plain"), one.part("html")
    assert "Hello Wile E. Coyote," in text
    assert f"{portal}/invoices/{first.id}" in text
    assert f'href="{portal}/invoices/{first.id}"' in html
    assert "#2563eb" in html  # the accent colour when the invoice was issued
    assert "[[" not in text + html  # every link made

    (receipt,) = server.by_kind("payment_receipt")
    assert "received your payment of $10.00" in receipt.part("plain")
    assert "#7c2d12" in receipt.part("html")  # the company's accent colour, as it is now
    assert "help@acme.example" in receipt.part("plain")
    assert "help@acme.example" in receipt.part("html")
    (approved,) = server.by_kind("estimate_approved")
    assert approved.recipients == [ADMIN_EMAIL]
    assert f"approved estimate {estimate.number}" in approved.part("plain")
    assert "https://dashboard.localhost/customers/1234" in approved.part("plain")
    (changed,) = server.by_kind("billing_details_changed")
    assert changed.recipients == [ADMIN_EMAIL]
    assert 'city: "" -> "Phoenix"' in changed.part("plain")
    (disabled,) = server.by_kind("webhook_endpoint_disabled")
    assert disabled.recipients == [ADMIN_EMAIL]
    assert "failed for three days" in disabled.part("plain")
    upcoming = server.by_kind("autopay_upcoming")
    assert {r.message["Subject"] for r in upcoming} == {
        "AutoPay will pay invoice INV-0001 on Dec 1, 2026",
        "AutoPay will pay invoice INV-0002 on Dec 1, 2026",
    }
    (failed,) = server.by_kind("autopay_failed")
    assert "the charge failed" in failed.part("plain")
    (statement,) = server.by_kind("statement")
    assert statement.message["Subject"] == "Your November 2026 statement from Acme Corporation"
    assert f"{portal}/statements/balance-forward?month=2026-11" in statement.part("plain")
    assert "Closing balance:" in statement.part("plain")

    # Sent once: nothing is due now; a statement or an AutoPay notice is queued once however often asked.
    assert _deliver(world, _config(world, server)) == 0
    assert run(MailSettings(world.store).statements("2026-11", now=now)) == 0
    run(world.store.write(autopay))
    assert [m.kind for m in _messages(world)].count("autopay_upcoming") == 2


def test_without_smtp_messages_are_eml_files_in_the_outbox_folder(world: World) -> None:
    config = MailConfig.from_settings(world.settings)
    assert config.smtp is None
    assert config.where == f"the folder {world.settings.data_dir / 'mail-outbox'}"
    assert _deliver(world, config) == 2  # the world's two invoices to Wile
    files = sorted((world.settings.data_dir / "mail-outbox").glob("*.eml"))
    assert [f.name.split("-", 1)[1] for f in files] == ["invoice_issued.eml"] * 2
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["To"] == "wile@example.com"
    assert message["Subject"].startswith("Invoice INV-000")
    assert message.is_multipart()
    assert {part.get_content_type() for part in message.walk()} >= {"text/plain", "text/html"}
    assert {m.state for m in _messages(world)} == {"sent"}


def test_a_5xx_refusal_marks_the_address_bounced_and_the_company_sees_it(
    world: World, server: MailServer, cli: Any
) -> None:
    now = world.clock.now
    _customer(world, 61, "Gone@Example.com")
    server.refuse["gone@example.com"] = "550 5.1.1 No such mailbox"
    run(factories.invoice(world.store, world.acme.id, 61, now=now))
    _deliver(world, _config(world, server))
    bounced = [m for m in _messages(world) if m.to_address == "Gone@Example.com"]
    assert [(m.state, m.attempts) for m in bounced] == [("bounced", 1)]
    assert "550" in bounced[0].last_error
    assert {r.recipients[0] for r in server.received} == {"wile@example.com"}  # the others went
    # Nothing more is queued to it.
    run(factories.invoice(world.store, world.acme.id, 61, now=now))
    assert len([m for m in _messages(world) if m.to_address == "Gone@Example.com"]) == 1

    key = run(factories.api_key(world.store, world.acme, now=now)).key
    api = TestClient(build_app(world.settings, world.store, world.clock), base_url="https://dashboard.localhost")
    api.headers["Authorization"] = f"Bearer {key}"
    assert api.get("/api/v1/customers/61").json()["email_bounced"] is True
    assert api.get("/api/v1/customers/1234").json()["email_bounced"] is False
    listed = {c["id"]: c["email_bounced"] for c in api.get("/api/v1/customers").json()["data"]}
    assert listed[61] is True
    assert listed[1234] is False
    # A new address is not bounced.
    changed = api.patch("/api/v1/customers/61", json={"email": "marvin@example.com"})
    assert changed.status_code == 200
    assert changed.json()["email_bounced"] is False

    dashboard = admin_of_acme(world)
    page = dashboard.get("/customers/1234")
    assert "bounced" not in page.text
    api.patch("/api/v1/customers/61", json={"email": "gone@example.com"})
    page = dashboard.get("/customers/61")
    assert page.status_code == 200
    assert "Email to this address bounced" in page.text
    assert "No such mailbox" in page.text
    status, out, _ = cli("mail", "unbounce", "--tenant", "acme", "gone@example.com")
    assert status == 0
    assert json.loads(out) == {"cleared": "gone@example.com"}
    status, _, err = cli("mail", "unbounce", "--tenant", "acme", "gone@example.com")
    assert status != 0
    assert "has not bounced" in err
    assert "bounced" not in dashboard.get("/customers/61").text


def test_a_4xx_answer_or_no_server_is_retried_with_backoff(world: World, server: MailServer) -> None:
    server.rcpt_script[:] = ["451 4.7.1 Greylisted, try again later"]
    assert _deliver(world, _config(world, server)) == 2
    states = sorted((m.state, m.attempts, m.last_error[:40]) for m in _messages(world))
    assert states[0][:2] == ("pending", 1)
    assert "451" in _messages(world)[-1].last_error + _messages(world)[0].last_error
    assert len(server.received) == 1
    world.clock.advance(59)
    assert _deliver(world, _config(world, server)) == 0  # the first retry waits a minute (no jitter here)
    world.clock.advance(1)
    assert _deliver(world, _config(world, server)) == 1
    assert {m.state for m in _messages(world)} == {"sent"}
    assert len(server.received) == 2

    # No server listening: retried, then sent once one answers.
    run(factories.invoice(world.store, world.acme.id, 1234, now=world.clock.now))
    assert _deliver(world, _config(world, server, port=free_port())) == 1
    (waiting,) = [m for m in _messages(world) if m.state == "pending"]
    assert waiting.last_error == "could not reach the mail server: SMTPConnectError"
    world.clock.advance(60)
    assert _deliver(world, _config(world, server)) == 1
    assert len(server.received) == 3


def test_a_message_not_sent_in_two_days_fails(world: World, server: MailServer) -> None:
    config = _config(world, server, port=free_port())
    _deliver(world, config)
    world.clock.advance(mail.RETRY_WINDOW)
    _deliver(world, config)
    assert {m.state for m in _messages(world)} == {"failed"}


def test_the_smtp_password_is_never_logged_or_shown(
    world: World, server: MailServer, caplog: pytest.LogCaptureFixture, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-" + SMTP_PASSWORD
    _deliver(world, _config(world, server, password=wrong))
    assert {m.last_error for m in _messages(world)} == {"the mail server refused the user name or password (535)"}
    url = f"smtp://mailer:{SMTP_PASSWORD}@{server.host}:{server.port}"
    settings = Settings.from_env(
        {"BILLPORTAL_SMTP_URL": url, "BILLPORTAL_MASTER_KEY": base64.urlsafe_b64encode(MASTER_KEY).decode()}
    )
    config = MailConfig.from_settings(settings)
    assert config.smtp is not None
    assert config.smtp.password == SMTP_PASSWORD
    assert SMTP_PASSWORD not in repr(settings) + repr(config) + config.where
    monkeypatch.setenv("BILLPORTAL_SMTP_URL", url)
    world.clock.advance(3600)
    status, out, err = cli("mail", "deliver", "--once", "--at", str(world.clock.now))
    assert status == 0
    assert json.loads(out) == {"tried": 2, "to": f"smtp://mailer@{server.host}:{server.port}"}
    assert len(server.received) == 2
    for text in (caplog.text, out, err, *(m.last_error for m in _messages(world))):
        assert SMTP_PASSWORD not in text
        assert wrong not in text
    monkeypatch.setenv("BILLPORTAL_SMTP_URL", "http://mailer:pw@example.com")
    status, _, err = cli("mail", "log", "--tenant", "acme")
    assert status != 0
    assert "BILLPORTAL_SMTP_URL must look like" in err
    assert "pw@" not in err


def test_an_invalid_address_is_refused_at_input(world: World) -> None:
    for bad in ("wile", "wile@", "wile@example", "wile e@example.com", "a@b@example.com", "<wile@example.com>"):
        with pytest.raises(Refused) as refused:
            _customer(world, 62, bad)
        assert refused.value.field == "email"
    key = run(factories.api_key(world.store, world.acme, now=world.clock.now)).key
    api = TestClient(build_app(world.settings, world.store, world.clock), base_url="https://dashboard.localhost")
    api.headers["Authorization"] = f"Bearer {key}"
    answer = api.post("/api/v1/customers", json={"name": "Marvin", "email": "marvin@mars"})
    assert answer.status_code in (400, 422)
    assert answer.json()["error"]["field"] == "email"
    assert api.post("/api/v1/customers", json={"name": "Marvin", "email": "marvin@mars.example"}).status_code == 201


def test_each_kind_is_turned_on_or_off_by_the_api_the_dashboard_and_the_cli(world: World, cli: Any) -> None:
    key = run(factories.api_key(world.store, world.acme, now=world.clock.now, scopes=("company",))).key
    api = TestClient(build_app(world.settings, world.store, world.clock), base_url="https://dashboard.localhost")
    api.headers["Authorization"] = f"Bearer {key}"
    shown = api.get("/api/v1/company").json()["mail_settings"]
    assert shown["invoice_issued"] is True
    assert shown["statement"] is False
    assert "sign_in" not in shown
    changed = api.patch("/api/v1/company", json={"mail_settings": {"invoice_issued": False}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["mail_settings"]["invoice_issued"] is False
    assert api.patch("/api/v1/company", json={"mail_settings": {"nope": True}}).status_code in (400, 422)
    before = len(_messages(world))
    run(factories.invoice(world.store, world.acme.id, 1234, now=world.clock.now))
    assert len(_messages(world)) == before  # turned off: nothing queued

    dashboard = admin_of_acme(world)
    page = dashboard.get("/settings/email")
    assert page.status_code == 200
    assert 'id="mail-invoice_issued" name="invoice_issued" type="checkbox" value="on">' in page.text
    saved = dashboard.post("/settings/email", {"invoice_issued": "on", "statement": "on"})
    assert saved.status_code == 303
    kinds = run(MailSettings(world.store).kinds(world.acme.id))
    assert kinds[MailKind.INVOICE_ISSUED]
    assert kinds[MailKind.STATEMENT]
    assert not kinds[MailKind.PAYMENT_RECEIPT]

    status, out, _ = cli("mail", "settings", "--tenant", "acme", "--on", "payment_receipt", "--off", "statement")
    assert status == 0
    assert json.loads(out)["payment_receipt"] is True
    assert json.loads(out)["statement"] is False
    status, _, err = cli("mail", "settings", "--tenant", "acme", "--off", "sign_in")
    assert status != 0
    assert len(err.strip().splitlines()) == 1
    status, out, _ = cli("mail", "statements", "--month", "2026-11", "--tenant", "acme")
    assert status == 0
    assert json.loads(out) == {"month": "2026-11", "queued": 0}
    status, _, err = cli("mail", "statements", "--month", "November")
    assert status != 0
    assert "YYYY-MM" in err


def test_the_server_sends_mail_in_the_background(world: World, server: MailServer) -> None:
    """No extra process: the app's lifespan runs the mail deliverer beside the webhook one."""
    url = f"smtp://mailer:{SMTP_PASSWORD}@{server.host}:{server.port}"
    settings = dataclasses.replace(world.settings, smtp_url=url)
    with TestClient(build_app(settings, world.store, world.clock), base_url="https://dashboard.localhost"):
        deadline = time.monotonic() + 10
        while len(server.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert len(server.received) == 2


def test_a_link_in_an_email_is_made_by_portal_link_for(world: World, tmp_path: Path) -> None:
    assert mail.portal_marker("/invoices/7") == "[[portal:/invoices/7]]"
    with pytest.raises(ValueError, match="portal path"):
        mail.portal_marker("https://evil.example/")
    link = run(
        world.store.read(
            lambda conn: mail.portal_link_for(
                conn,
                base_url="https://portal.example",
                company="acme",
                company_id=1,
                customer_id=2,
                path="/invoices/7",
                now=0,
            )
        )
    )
    assert link == "https://acme.portal.example/invoices/7"


def test_autopay_tells_the_customer_before_a_charge_and_when_it_fails(
    world: World, server: MailServer, cli: Any
) -> None:
    now = world.clock.now
    run(factories.payment_settings(world.store, world.acme, gateway="test", test_mode=True, now=now))
    run(factories.payment_settings(world.store, world.acme, allow_autopay=True, autopay_retry_days="1,3", now=now))
    client = signed_in(world)
    token = csrf_token(client.get("/payment-methods").text)
    card = {"card_number": "4000 0000 0000 0341", "card_expiry": "04/40", "card_cvc": "123"}  # saves, then declines
    assert client.post("/payment-methods", data={"csrf_token": token, **card}).status_code == 303
    assert client.post("/payment-methods/autopay", data={"csrf_token": token, "autopay": "on"}).status_code == 303
    due = int(datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp())  # the world's invoices are due 2026-12-01
    day = 86400
    for at in (due - 5 * day, due - 2 * day, due - day, due):
        assert cli("autopay", "run", "--at", str(at))[0] == 0
    world.clock.now = due
    _deliver(world, _config(world, server))
    upcoming = server.by_kind("autopay_upcoming")
    assert sorted(str(r.message["Subject"]) for r in upcoming) == [
        "AutoPay will pay invoice INV-0001 on Dec 1, 2026",
        "AutoPay will pay invoice INV-0002 on Dec 1, 2026",
    ]
    assert "will charge $358.90 for invoice INV-0001" in upcoming[0].part("plain") + upcoming[1].part("plain")
    failed = server.by_kind("autopay_failed")
    assert sorted(str(r.message["Subject"]) for r in failed) == [
        "AutoPay could not pay invoice INV-0001",
        "AutoPay could not pay invoice INV-0002",
    ]
    assert {r.recipients[0] for r in upcoming + failed} == {"wile@example.com"}


def test_what_a_slow_server_leaves_is_given_back_before_the_lease_ends(world: World, server: MailServer) -> None:
    slow = dataclasses.replace(_config(world, server), timeout=float(mail.LEASE_SECONDS))  # no time left to send
    assert run(MailDeliverer(world.store, slow).run_once(world.clock.now)) == 0
    assert {(m.state, m.attempts) for m in _messages(world)} == {("pending", 0)}
    assert server.received == []
    assert _deliver(world, _config(world, server)) == 2  # due again at once, not at the lease's end
    assert len(server.received) == 2


def test_the_smtp_url_is_read_and_a_bad_one_refused_without_quoting_it() -> None:
    plain = smtp_server_of("smtp://mail.example.com")
    assert (plain.host, plain.port, plain.tls, plain.username, plain.password) == (
        "mail.example.com",
        587,
        False,
        "",
        "",
    )
    tls = smtp_server_of("smtps://me%40corp:p%40ss%3Aword@mail.example.com")
    assert (tls.port, tls.tls, tls.username, tls.password) == (465, True, "me@corp", "p@ss:word")
    assert tls.shown == "smtps://me@corp@mail.example.com:465"
    assert "p@ss" not in repr(tls)
    # STARTTLS is required before a password goes to another host; used when offered otherwise.
    assert mail._start_tls(smtp_server_of("smtp://u:p@mail.example.com")) is True
    assert mail._start_tls(smtp_server_of("smtp://mail.example.com")) is None
    assert mail._start_tls(smtp_server_of("smtp://u:p@127.0.0.1:2525")) is None
    assert mail._start_tls(tls) is False
    for bad in ("http://mail.example.com", "smtp://", "smtp://u:hunter2@mail.example.com/path", "smtp://h:99999"):
        with pytest.raises(ConfigError) as refused:
            smtp_server_of(bad)
        assert "hunter2" not in str(refused.value)


def smtp_server_of(url: str) -> SmtpServer:
    found = smtp_server(url)
    assert found is not None
    return found


def test_the_portal_refuses_an_address_mail_cannot_go_to_beside_its_field(world: World) -> None:
    client = signed_in(world)
    page = client.get("/billing-info").text
    form = {"csrf_token": csrf_token(page), "name": "Wile E. Coyote", "email": "wile@exämple.com"}
    refused = client.post("/billing-info", data=form)
    assert refused.status_code == 400
    assert "Enter an email address such as name@example.com." in refused.text
    customer = run(world.billing.customer(world.acme.id, 1234))
    assert customer is not None
    assert customer.email == "wile@example.com"


def test_text_that_looks_like_a_link_marker_is_never_made_a_link(world: World, tmp_path: Path) -> None:
    now = world.clock.now
    run(
        factories.customer(
            world.store, world.acme.id, id=63, name="[[portal:/payments]]", email="m@example.com", now=now
        )
    )
    run(factories.invoice(world.store, world.acme.id, 63, now=now))
    config = dataclasses.replace(MailConfig.from_settings(world.settings), outbox=tmp_path)
    _deliver(world, config)
    (sent,) = [p for p in tmp_path.glob("*.eml") if b"m@example.com" in p.read_bytes()]
    message = message_from_bytes(sent.read_bytes(), policy=policy.default)
    for part in ("plain", "html"):  # the name goes into a translated sentence too ("Hello %(name)s,")
        found = message.get_body((part,))
        assert found is not None
        body = found.get_content()
        assert "https://acme.localhost/payments" not in body, part
        assert "https://acme.localhost/invoices/" in body, part


def test_an_admin_invitation_is_emailed_and_its_link_is_not_kept_once_sent(world: World, server: MailServer) -> None:
    from billportal.services import admins as roles

    acme = world.company("acme")
    made = run(
        roles.invite(
            world.store,
            acme,
            "newcomer@example.com",
            role="billing",
            actor=CLI,
            now=world.clock.now,
            link=lambda token: f"https://dashboard.example.test/invitation?token={token}",
        )
    )
    assert made.mailed
    queued = [m for m in _messages(world) if m.kind == "admin_invitation"]
    assert len(queued) == 1
    assert made.token in queued[0].text_body  # until it is sent
    _deliver(world, _config(world, server))
    (received,) = [r for r in server.received if r.recipients == ["newcomer@example.com"]]
    assert f"https://dashboard.example.test/invitation?token={made.token}" in received.part("plain")
    assert "as Billing" in received.part("plain") or "as billing" in received.part("plain").lower()
    (sent,) = [m for m in _messages(world) if m.kind == "admin_invitation"]
    assert sent.state == "sent"
    assert made.token not in sent.text_body + sent.html_body  # the queue keeps no working link


def test_an_invoice_email_to_a_german_customer_arrives_in_german(world: World, server: MailServer) -> None:
    now = world.clock.now
    run(factories.customer(world.store, world.acme.id, id=70, name="Hans Müller", email="hans@example.de", now=now))
    run(world.billing.set_customer_locale(world.acme.id, 70, "de", now=now))
    invoice = run(factories.invoice(world.store, world.acme.id, 70, now=now, due_on="2026-12-01"))
    _deliver(world, _config(world, server))
    (one,) = [r for r in server.by_kind("invoice_issued") if r.recipients == ["hans@example.de"]]
    assert one.message["Subject"] == f"Rechnung {invoice.number} von Acme Corporation"
    text, html = one.part("plain"), one.part("html")
    assert "Guten Tag Hans Müller," in text
    assert f"Acme Corporation hat Ihnen die Rechnung {invoice.number} über" in text
    assert "Offener Betrag:" in text
    assert "Balance due" not in text
    assert '<html lang="de">' in html
    assert f"Rechnung {invoice.number} ansehen" in html
    # The company's default language speaks to a customer who has chosen none; English stays English.
    english = [r for r in server.by_kind("invoice_issued") if r.recipients == ["wile@example.com"]]
    assert all(r.message["Subject"].startswith("Invoice ") for r in english)


def test_messages_to_admins_go_to_the_roles_that_do_that_work(world: World) -> None:
    acme, now = world.acme.id, world.clock.now
    for role in ("owner", "developer", "billing", "read_only"):
        run(factories.admin(world.store, f"{role}@acme.example", "x" * 12, acme, now=now, role=role))

    customer = run(world.billing.customer(acme, 1234))

    def tell(conn: Any) -> None:
        mail.send_to_admins(conn, acme, MailKind.WEBHOOK_ENDPOINT_DISABLED, now=now, url="https://hooks.example/x")
        mail.send_to_admins(conn, acme, MailKind.BILLING_DETAILS_CHANGED, now=now, customer=customer, changes=[])

    run(world.store.write(tell))
    told: dict[str, set[str]] = {}
    for message in _messages(world):
        told.setdefault(message.kind, set()).add(message.to_address)
    assert told["webhook_endpoint_disabled"] == {"owner@acme.example", "developer@acme.example"}
    assert told["billing_details_changed"] == {"owner@acme.example", "billing@acme.example"}


# How each dated kind writes its date in each language: an invoice's due date, a payment's day, a statement's month.
DATED = {
    "de": {"invoice_issued": "01.12.2026", "autopay_upcoming": "01.12.2026", "payment_receipt": "10.11.2026"},
    "fr": {"invoice_issued": "1 déc. 2026", "autopay_upcoming": "1 déc. 2026", "payment_receipt": "10 nov. 2026"},
}
DATED["de"]["statement"], DATED["fr"]["statement"] = "November 2026", "novembre 2026"


@pytest.mark.parametrize("locale", list(DATED))
def test_dates_in_a_customers_email_follow_their_language(world: World, server: MailServer, locale: str) -> None:
    acme, now = world.acme.id, world.clock.now
    address = f"kunde@{locale}.example"
    run(factories.customer(world.store, acme, id=71, name="Client", email=address, now=now))
    run(world.billing.set_customer_locale(acme, 71, locale, now=now))
    invoice = run(factories.invoice(world.store, acme, 71, now=now, due_on="2026-12-01"))
    run(factories.payment(world.store, acme, 71, now=now, amount=1000, applications=[(invoice.id, 1000)]))
    run(MailSettings(world.store).change(acme, {"statement": True}, actor=CLI, now=now))
    run(MailSettings(world.store).statements("2026-11", now=now, company_id=acme))
    run(
        world.store.write(
            lambda conn: mail.autopay_upcoming(conn, company_id=acme, customer_id=71, today=date(2026, 11, 29), now=now)
        )
    )
    _deliver(world, _config(world, server))
    for kind, written in DATED[locale].items():
        (one,) = [r for r in server.by_kind(kind) if r.recipients == [address]]
        whole = one.message["Subject"] + one.part("plain") + one.part("html")
        assert written in whole, kind
        assert "2026-12-01" not in whole, kind  # no ISO date left
        assert "2026-11-10" not in whole, kind
        if kind in ("autopay_upcoming", "statement"):
            assert written in one.message["Subject"], kind


def test_messages_to_admins_stay_english_whatever_the_companys_language(world: World, server: MailServer) -> None:
    acme, now = world.acme.id, world.clock.now
    run(factories.admin(world.store, ADMIN_EMAIL, "x" * 12, acme, now=now))
    run(factories.company_settings(world.store, world.acme, default_locale="de"))
    run(world.billing.update_billing_info(acme, 1234, {"city": "Phoenix"}, now=now))
    estimate = run(factories.estimate(world.store, acme, 1234, now=now))
    run(
        world.billing.approve_estimate(
            acme, 1234, estimate.id, approved_by="Wile E.", version=estimate_version(estimate), now=now, valid_on=None
        )
    )
    _deliver(world, _config(world, server))
    (changed,) = server.by_kind("billing_details_changed")
    assert changed.message["Subject"] == "Wile E. Coyote changed their billing details"
    assert '<html lang="en">' in changed.part("html")
    (approved,) = server.by_kind("estimate_approved")
    assert approved.message["Subject"] == f"Estimate {estimate.number} was approved by Wile E. Coyote"
    assert f"approved estimate <strong>{estimate.number}</strong>" in approved.part("html")
    assert "signed as “Wile E.”" in approved.part("plain")
