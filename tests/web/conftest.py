"""Web-suite fixtures: the service suite's database parametrisation (SQLite, and PostgreSQL when
TRACECHAIN_TEST_DATABASE_URL is set) and certificate world, imported rather than copied or edited."""

from __future__ import annotations

from tests.service.certificates_fixtures import cert_world_factory
from tests.service.conftest import database_url, db_pg_module_url
from tests.web.web_fixtures import web_world, web_world_factory

__all__ = ["cert_world_factory", "database_url", "db_pg_module_url", "web_world", "web_world_factory"]
