"""Helpers shared by the deployment tests: repository paths, the documented variables, compose parsing."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
GENERATOR = REPO_ROOT / "scripts" / "generate_consortium.py"
BUILT_IMAGE_PREFIX = "tracechain:"

# A configuration table row names its variables in the first cell: `| TRACECHAIN_X | …` or `| A / B | …`.
_TABLE_ROW = re.compile(r"^\|\s*([A-Z][A-Z0-9_]*(?:\s*/\s*[A-Z][A-Z0-9_]*)*)\s*\|")


def documented_variables(markdown: str) -> set[str]:
    """Every TRACECHAIN_* variable named in the first column of the markdown tables of ``markdown``."""
    names: set[str] = set()
    for line in markdown.splitlines():
        match = _TABLE_ROW.match(line.strip())
        if match:
            names.update(part.strip() for part in match.group(1).split("/"))
    return {name for name in names if name.startswith("TRACECHAIN_")}


def load_generator() -> ModuleType:
    """scripts/generate_consortium.py as a module (scripts/ is not a package)."""
    name = "generate_consortium"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


def profiles_of(service: dict[str, Any]) -> set[str]:
    """The profiles a service belongs to (empty: always enabled)."""
    return set(service.get("profiles") or [])


def active_services(services: dict[str, dict[str, Any]], profile: str | None) -> dict[str, dict[str, Any]]:
    """The services `docker compose [--profile PROFILE] up` enables."""
    return {
        name: svc for name, svc in services.items()
        if not profiles_of(svc) or (profile is not None and profile in profiles_of(svc))
    }


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (list or mapping syntax)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def published_ports(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host ip, host port) of every published port, short or long syntax; unpublished ports are skipped."""
    result = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            if port.get("published") is None:
                continue
            result.append((str(port.get("host_ip", "0.0.0.0")), int(port["published"])))
            continue
        spec = str(port).split("/")[0]
        parts = spec.rsplit(":", 2)
        if len(parts) == 1:
            continue  # container port only: Docker picks an ephemeral host port
        host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"
        result.append((host_ip, int(parts[-2])))
    return result


def volume_mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, source, target) of every mount, short or long syntax."""
    result = []
    for mount in service.get("volumes") or []:
        if isinstance(mount, dict):
            result.append((mount["type"], str(mount.get("source", "")), mount["target"]))
            continue
        source, target, *_mode = str(mount).split(":")
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        result.append((kind, source, target))
    return result


def script_of(service: dict[str, Any]) -> str:
    """The shell script a service runs through `sh -c` / `bash -c` (compose's `$$` unescaped)."""
    command = service.get("command")
    text = command if isinstance(command, str) else "\n".join(str(part) for part in command or [])
    return text.replace("$$", "$")
