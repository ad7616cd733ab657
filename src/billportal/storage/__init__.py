"""Storage: the schema, its migrations, and the :class:`Store` every query goes through."""

from __future__ import annotations

from pathlib import Path

from billportal.config import ConfigError, Settings
from billportal.storage.migrate import upgrade
from billportal.storage.sqlite import SQLiteBackend
from billportal.storage.store import Store

__all__ = ["Store", "open_store"]


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """Open the configured database, bringing its schema up to date first."""
    url = settings.effective_database_url
    if not url.startswith("sqlite:///"):
        raise ConfigError("BILLPORTAL_DATABASE_URL: only sqlite:///PATH is supported by this build")
    backend = SQLiteBackend(Path(url.removeprefix("sqlite:///")))
    if migrate:
        with backend.engine.begin() as connection:
            upgrade(connection)
    return Store(backend, (settings.master_key, *settings.previous_master_keys))
