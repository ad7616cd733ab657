"""The demo and the CLI's hints name the port the server runs on (issue 19.4); a customer pays on it (14)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from billportal.core.config import ConfigError, Settings
from tests.browser.conftest import free_port
from tests.functional.portal_world import csrf_token, text_of


def billportal(*args: str, data: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BILLPORTAL_")}
    environment.update({"BILLPORTAL_DATA_DIR": str(data), **env})
    return subprocess.run(
        [sys.executable, "-m", "billportal", *args],
        check=False,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


def test_the_demo_on_another_port_prints_links_and_hints_for_that_port(tmp_path: Path) -> None:
    done = billportal("demo", "--no-serve", "--port", "8731", data=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("http://acme.localhost:8731/login/ey")
    assert "http://dashboard.localhost:8731" in done.stderr
    assert "More links:  BILLPORTAL_PUBLIC_URL=http://localhost:8731 .venv/bin/billportal sso-url" in done.stderr
    assert ":8000" not in done.stdout + done.stderr
    # The hint, followed, prints a link for that port too; so do tenant create and admin create.
    url = billportal(
        "sso-url",
        "--tenant",
        "acme",
        "--customer",
        "1235",
        data=tmp_path,
        BILLPORTAL_PUBLIC_URL="http://localhost:8731",
    )
    assert url.stdout.startswith("http://acme.localhost:8731/login/"), url.stderr
    made = billportal(
        "tenant",
        "create",
        "roadrunner",
        "--name",
        "Road Runner Inc",
        data=tmp_path,
        BILLPORTAL_PUBLIC_URL="http://localhost:8731",
    )
    assert "http://roadrunner.localhost:8731" in made.stdout, made.stderr


def test_the_default_port_needs_no_hint(tmp_path: Path) -> None:
    done = billportal("demo", "--no-serve", data=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("http://acme.localhost:8000/login/")
    assert "More links:  .venv/bin/billportal sso-url" in done.stderr


def test_a_busy_port_is_said_before_any_link(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = billportal("demo", "--port", str(port), data=tmp_path)
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert f"make demo PORT={port + 1}" in done.stderr
    assert "/login/" not in done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ftp://localhost", "must look like"),
        ("http://user@localhost:8000", "must look like"),
        ("http://localhost:99999", "must look like"),
        ("https://portal.example.com/path", "must look like"),
    ],
)
def test_a_malformed_public_url_is_one_clear_error(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        Settings.from_env({"BILLPORTAL_PUBLIC_URL": value, "BILLPORTAL_MASTER_KEY": "A" * 43})


def test_the_public_url_sets_the_base_domain_and_must_agree_with_it() -> None:
    key = {"BILLPORTAL_MASTER_KEY": "A" * 43}
    settings = Settings.from_env({"BILLPORTAL_PUBLIC_URL": "https://portal.example.com/", **key})
    assert (settings.base_domain, settings.base_url) == ("portal.example.com", "https://portal.example.com")
    with pytest.raises(ConfigError, match=r"BILLPORTAL_BASE_DOMAIN is other\.example"):
        Settings.from_env(
            {"BILLPORTAL_PUBLIC_URL": "https://portal.example.com", "BILLPORTAL_BASE_DOMAIN": "other.example", **key}
        )


def _dollars(text: str) -> Decimal:
    return Decimal(text.replace("$", "").replace(",", ""))


def test_on_the_demo_a_customer_follows_the_printed_link_and_pays_with_the_test_card(tmp_path: Path) -> None:
    """`make demo` end to end: the served demo's printed link signs in, and the test card pays the balance."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BILLPORTAL_")}
    environment["BILLPORTAL_DATA_DIR"] = str(tmp_path)
    with (tmp_path / "demo.log").open("wb") as log:
        demo = subprocess.Popen(
            [sys.executable, "-m", "billportal", "demo", "--port", str(port)],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        assert demo.stdout is not None
        link = ""
        while not link:
            line = demo.stdout.readline()
            assert line, "the demo ended without a link:\n" + (tmp_path / "demo.log").read_text(errors="replace")
            link = next((word for word in line.split() if "/login/" in word), "")
        target = urlsplit(link)
        assert target.netloc == f"acme.localhost:{port}"
        # Python's resolver may not know *.localhost: the loopback address, with the link's host.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"host": target.netloc}, timeout=30) as http:
            deadline = time.monotonic() + 60  # the link is printed just before the server listens
            while True:
                try:
                    http.get("/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the demo did not serve"
                    assert demo.poll() is None, (tmp_path / "demo.log").read_text(errors="replace")
                    time.sleep(0.1)
            signed_in = http.get(target.path)
            assert signed_in.status_code == 303, signed_in.text
            cookie = signed_in.headers["set-cookie"].split(";", 1)[0]
            http.headers["cookie"] = cookie
            page = http.get("/pay")
            assert page.status_code == 200
            text = text_of(page.text)
            assert "Test mode. No real money moves: pay with the test card 4242 4242 4242 4242" in text
            owed = re.search(r"All open invoices \((\$[0-9,.]+)\)", text)
            assert owed is not None, text
            form = {
                "csrf_token": csrf_token(page.text),
                "attempt": page.text.split('name="attempt" value="', 1)[1].split('"', 1)[0],
                "what": "balance",
                "method": "new",
                "card_number": "4242 4242 4242 4242",
                "card_expiry": "12 / 30",
                "card_cvc": "123",
            }
            paid = http.post("/pay", data=form)
            assert paid.status_code == 303, text_of(paid.text)
            result = text_of(http.get(paid.headers["location"]).text)
            assert "Thank you: your payment was received" in result
            assert f"{owed[1]} was paid with Visa ending 4242." in result
            due = re.search(r"Balance due (-?\$[0-9,.]+)", text)
            now = re.search(r"Your balance now (-?\$[0-9,.]+)", result)
            assert due is not None
            assert now is not None
            assert _dollars(now[1]) == _dollars(due[1]) - _dollars(owed[1])  # what was owed, paid; credit kept
            invoices = text_of(http.get("/invoices").text)
            assert re.search(r"\d{4} (Open|Past due) \$", invoices) is None, invoices  # every invoice's status
            assert "Paid $" in invoices
    finally:
        demo.terminate()
        demo.wait(timeout=30)
