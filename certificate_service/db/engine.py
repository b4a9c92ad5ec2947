"""Engine and session factory for SQLite (WAL, foreign keys, busy timeout) and PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "begin_write", "create_db_engine", "create_session_factory", "sqlite_path"]

SQLITE_BUSY_TIMEOUT_MS = 30_000


def sqlite_path(url: str | URL) -> Path | None:
    """The database file of a SQLite URL, or None for in-memory SQLite and other backends."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    in_memory = database.startswith("file::memory:") or url.query.get("mode") == "memory"
    if database in ("", ":memory:") or in_memory:
        return None
    return Path(database)


def _configure_sqlite(engine: Engine) -> None:
    """Install the pragmas and a real BEGIN (pysqlite's implicit transactions skip it for SELECT/DDL)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself (see "begin" below)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() not in ("wal", "memory"):
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers ask for IMMEDIATE (see begin_write): a deferred read-then-write transaction would fail
        # at once with SQLITE_BUSY when another writer committed in between, whatever the busy timeout.
        mode = connection.get_execution_options().get("sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


def create_db_engine(url: str | URL, *, echo: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout, PostgreSQL pre-ping."""
    url = make_url(url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = sqlite_path(url)
        connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        if path is None:
            kwargs.setdefault("poolclass", StaticPool)  # one shared connection keeps in-memory data alive
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, echo=echo, **kwargs)
    raise ValueError(f"unsupported database backend {backend!r} (use sqlite or postgresql+psycopg)")


def begin_write(session: Session) -> None:
    """Start the session's transaction as a writer (SQLite: BEGIN IMMEDIATE; no-op elsewhere)."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite" and not session.in_transaction():
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine`` (objects stay readable after commit)."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
