"""Storage: the schema, its migrations, the queries, and the :class:`Store` that runs them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from billportal.core.config import ConfigError, Settings
from billportal.core.crypto import MasterKeys
from billportal.core.errors import StorageUnavailable
from billportal.storage.store import Store

if TYPE_CHECKING:
    from billportal.storage.backend import Backend

__all__ = ["Store", "open_store"]


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """Open the configured database (and Redis), bringing the schema up to date first."""
    # Each backend's driver (and Redis's, and Alembic) is imported only by a process that uses it.
    url = settings.effective_database_url
    backend: Backend
    if url.startswith("sqlite:///"):
        from billportal.storage.sqlite import SQLiteBackend

        sqlite = SQLiteBackend(Path(url.removeprefix("sqlite:///")))
        if migrate:
            sqlite.migrate()
        backend = sqlite
    elif url.startswith("postgresql+psycopg://"):
        from billportal.storage.postgres import PostgresBackend

        if migrate:
            migrate_url(url)
        backend = PostgresBackend(url, pool_size=settings.database_pool_size)
    else:
        raise ConfigError("BILLPORTAL_DATABASE_URL must be sqlite:///PATH or postgresql+psycopg://...")
    master_keys = MasterKeys(settings.master_key, settings.previous_master_keys)
    if not settings.redis_url:
        return Store(backend, master_keys)
    from billportal.storage.cache import CompanyCache, RedisClients, SessionCache

    redis = RedisClients(settings.redis_url)
    return Store(
        backend,
        master_keys,
        session_cache=SessionCache(redis),
        company_cache=CompanyCache(redis),
    )


def migrate_url(url: str) -> None:
    """Run the migrations on the database at ``url`` (a synchronous connection)."""
    from sqlalchemy import create_engine
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.pool import NullPool

    from billportal.storage.failures import connect_failure
    from billportal.storage.migrate import upgrade_postgres

    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            upgrade_postgres(connection)
    except sa_exc.OperationalError as exc:
        raise StorageUnavailable(f"{connect_failure(exc)}; the migrations did not run") from exc
    finally:
        engine.dispose()
