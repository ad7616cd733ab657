"""Database migrations (Alembic), run programmatically: ``billportal db upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(connection: Connection) -> None:
    """Bring the database on ``connection`` up to the newest schema."""
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
