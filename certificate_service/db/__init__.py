"""Database layer: engine, sessions and the ORM models."""

from certificate_service.db.engine import begin_write, create_db_engine, create_session_factory, sqlite_path
from certificate_service.db.models import Base

__all__ = ["Base", "begin_write", "create_db_engine", "create_session_factory", "sqlite_path"]
