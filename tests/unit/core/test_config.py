"""The master key is generated only for the embedded build, and never over an existing database."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from billportal.core.config import ConfigError, Settings

KEY = base64.urlsafe_b64encode(bytes(32)).decode()


def test_postgresql_without_a_master_key_is_refused_and_no_key_is_written(tmp_path: Path) -> None:
    env = {"BILLPORTAL_DATA_DIR": str(tmp_path), "BILLPORTAL_DATABASE_URL": "postgresql+psycopg://db/billportal"}
    with pytest.raises(ConfigError, match="BILLPORTAL_MASTER_KEY must be set"):
        Settings.from_env(env)
    assert not (tmp_path / "master.key").exists()
    assert Settings.from_env({**env, "BILLPORTAL_MASTER_KEY": KEY}).master_key == bytes(32)


def test_sqlite_generates_a_key_for_a_new_database_only(tmp_path: Path) -> None:
    env = {"BILLPORTAL_DATA_DIR": str(tmp_path)}
    first = Settings.from_env(env).master_key
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    assert Settings.from_env(env).master_key == first
    (tmp_path / "billportal.sqlite3").write_bytes(b"")
    (tmp_path / "master.key").unlink()
    with pytest.raises(ConfigError, match=r"master\.key is missing"):
        Settings.from_env(env)
    assert not (tmp_path / "master.key").exists()


def test_a_rate_limit_setting_is_checked_unless_it_is_the_default() -> None:
    from billportal.core.config import _rate

    assert _rate({}, "X", "20/minute") == "20/minute"
    assert _rate({"X": "5 per 10 seconds"}, "X", "20/minute") == "5 per 10 seconds"
    with pytest.raises(ConfigError, match="X must be a rate"):
        _rate({"X": "often"}, "X", "20/minute")
