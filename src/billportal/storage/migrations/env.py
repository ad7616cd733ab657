"""Alembic environment: run by ``billportal db upgrade`` (see billportal.storage.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from billportal.storage.schema import declared_name, metadata, with_postgresql_conditions


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=with_postgresql_conditions() if connection.dialect.name == "postgresql" else metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=declared_name,
        # One transaction per migration: a migration may commit on its own, to
        # build an index outside any transaction (migrate.create_index_online).
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as new_connection:
        _run(new_connection)
