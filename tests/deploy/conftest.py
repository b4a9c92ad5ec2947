"""Fixtures of the static deployment checks (compose file, Dockerfile, consortium generator; no Docker engine)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import COMPOSE_FILE, load_generator


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """docker-compose.yml parsed by PyYAML (anchors and merge keys resolved, no interpolation)."""
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose services by name."""
    result = compose["services"]
    assert isinstance(result, dict) and result
    return result


@pytest.fixture(scope="session")
def generator() -> ModuleType:
    """The consortium generator module."""
    return load_generator()


@pytest.fixture(scope="session")
def generated_consortium(generator: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A consortium generated with the defaults into a temporary directory."""
    out: Path = tmp_path_factory.mktemp("consortium") / "generated"
    return generator.generate(out)
