"""The demo and the CLI's hints name the port the server runs on (issue 19.4)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from billportal.core.config import ConfigError, Settings


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
