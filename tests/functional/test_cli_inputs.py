"""The CLI's inputs: a bad setting, an over-long value or an unknown page is one line on stderr, never a traceback.

Runs on both backends (PostgreSQL refuses over-long text where SQLite would store it).
"""

from __future__ import annotations

import base64
import io
from typing import Any
from urllib.parse import urlencode

import pytest

from billportal.cli import main
from tests.conftest import MASTER_KEY, World

LONG = "x" * 300


@pytest.fixture
def cli(world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run ``billportal ARGS`` in this process against the test database: (status, stdout, stderr)."""
    monkeypatch.setenv("BILLPORTAL_DATA_DIR", str(world.settings.data_dir))
    monkeypatch.setenv("BILLPORTAL_MASTER_KEY", base64.urlsafe_b64encode(MASTER_KEY).decode())
    monkeypatch.setenv("BILLPORTAL_DATABASE_URL", world.settings.database_url)
    monkeypatch.setenv("BILLPORTAL_REDIS_URL", world.settings.redis_url)

    def invoke(*args: str, **env: str) -> tuple[int, str, str]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        status = main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return invoke


def _one_line(status: int, err: str, *words: str) -> None:
    assert status == 2, err
    assert err.count("\n") == 1, err
    assert err.startswith("billportal: error: "), err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("BILLPORTAL_DATABASE_URL", "postgresql+psycopg://bp@db.example:5x32/billportal", ("malformed", "port")),
        ("BILLPORTAL_DATABASE_URL", "mysql://billportal@db.example/billportal", ("sqlite:///",)),
        ("BILLPORTAL_METRICS_NETWORKS", "garbage", ("BILLPORTAL_METRICS_NETWORKS",)),
        ("BILLPORTAL_TRUSTED_PROXIES", "10.0.0.10,not-an-ip", ("BILLPORTAL_TRUSTED_PROXIES",)),
    ],
)
def test_a_malformed_setting_is_one_line_naming_it(cli: Any, name: str, value: str, words: tuple[str, ...]) -> None:
    status, _, err = cli("db", "upgrade", **{name: value})
    _one_line(status, err, *words)
    assert value not in err  # named, never its value


def test_trusted_proxies_accept_addresses_networks_and_a_wildcard(cli: Any) -> None:
    status, _, err = cli("db", "upgrade", BILLPORTAL_TRUSTED_PROXIES="10.0.0.10, 10.1.0.0/16, ::1, *")
    assert status == 0, err


@pytest.mark.parametrize(
    "args",
    [
        ("tenant", "create", "longname", "--name", LONG),
        ("customer", "create", "--tenant", "acme", "--name", LONG),
        ("customer", "create", "--tenant", "acme", "--name", "Ann", "--email", f"{LONG}@example.com"),
        ("admin", "create", "--tenant", "acme", "--email", f"{LONG}@example.com"),
    ],
)
def test_an_over_long_value_is_one_line(cli: Any, args: tuple[str, ...]) -> None:
    status, _, err = cli(*args)
    _one_line(status, err)
    assert "internal error" not in err


def test_sso_url_refuses_an_unknown_page_and_lists_the_page_ids(cli: Any) -> None:
    status, out, err = cli("sso-url", "--tenant", "acme", "--customer", "1234", "--redirect-to", "nosuchpage")
    _one_line(status, err, "nosuchpage", "invoices", "my_account", "update_billing_info")
    assert out == ""
    status, out, _ = cli("sso-url", "--tenant", "acme", "--customer", "1234", "--redirect-to", "invoices")
    assert status == 0
    assert out.strip().endswith("?redirect_to=invoices")
    for path in ("/invoices/3", "account"):
        status, out, _ = cli("sso-url", "--tenant", "acme", "--customer", "1234", "--redirect-to", path)
        assert status == 0
        assert out.strip().endswith("?" + urlencode({"redirect_to": path}))
    status, out, err = cli("sso-url", "--tenant", "acme", "--customer", "1234", "--redirect-to", "//evil.example")
    _one_line(status, err, "//evil.example", "/invoices/3")
    assert out == ""
