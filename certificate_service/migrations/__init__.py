"""Alembic migrations of the service database, configured in code (no alembic.ini, no CWD)."""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL

from certificate_service.db.engine import create_db_engine, sqlite_path

__all__ = ["MIGRATIONS_DIR", "alembic_config", "current_revision", "head_revision", "upgrade_database"]

MIGRATIONS_DIR = Path(__file__).resolve().parent
# Session-independent key for pg_advisory_xact_lock: concurrent starters migrate one after the other.
_PG_MIGRATION_LOCK_KEY = int.from_bytes(hashlib.sha256(b"tracechain:migrations").digest()[:8], "big", signed=True)


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic config pointing at this package (usable with ``alembic.command``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision shipped with the code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision a database is at (None when it was never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations of one SQLite file across processes with flock on a side file."""
    path = sqlite_path(engine.url)
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".migrate.lock")
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def upgrade_database(target: str | URL | Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision``; safe to call at every start, from several processes at once."""
    engine = target if isinstance(target, Engine) else create_db_engine(target)
    try:
        with _sqlite_file_lock(engine), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                connection.execute(lock, {"key": _PG_MIGRATION_LOCK_KEY})
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if engine is not target:
            engine.dispose()
