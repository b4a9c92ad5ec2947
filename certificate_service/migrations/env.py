"""Alembic environment: runs on the connection handed over by ``upgrade_database`` (no alembic.ini)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from certificate_service.db.engine import create_db_engine
from certificate_service.db.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    """Configure the migration context for ``connection``."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _url() -> str:
    """The database URL when no connection was handed over (plain ``alembic`` command line use)."""
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("TRACECHAIN_DATABASE_URL")
    if not url:
        raise RuntimeError("no database: call upgrade_database(url) or set TRACECHAIN_DATABASE_URL")
    return url


def run_migrations_offline() -> None:
    """Emit the SQL to stdout instead of executing it."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run on the shared connection, or on a fresh engine for the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_db_engine(_url())
    try:
        with engine.begin() as own:
            _configure(own)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
