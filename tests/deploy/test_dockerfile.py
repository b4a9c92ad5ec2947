"""Dockerfile and .dockerignore: pinned base, pinned font, locked dependencies, non-root, health, no secrets."""

from __future__ import annotations

import json
import re
import shlex

from tests.deploy.helpers import DOCKERFILE, REPO_ROOT, documented_variables


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "dangling line continuation"
    result = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        result.append((instruction.upper(), args.strip()))
    return result


def _all(name: str) -> list[str]:
    return [args for instruction, args in _instructions() if instruction == name]


def test_base_image_is_pinned() -> None:
    bases = _all("FROM")
    assert len(bases) == 1
    image = bases[0].split()[0]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image


def test_cjk_font_is_installed_at_the_pinned_version() -> None:
    run = " ".join(_all("RUN"))
    pinned = re.search(r"fonts-wqy-zenhei=(\S+)", run)
    assert pinned, "fonts-wqy-zenhei must be pinned with =VERSION"
    script = (REPO_ROOT / "scripts" / "install-system-packages.sh").read_text()
    assert f'"fonts-wqy-zenhei={pinned.group(1)}"' in script, "same pin as scripts/install-system-packages.sh"
    assert "--no-install-recommends" in run and "rm -rf /var/lib/apt/lists/*" in run


def test_dependencies_come_from_the_lock_then_the_project_without_deps() -> None:
    runs = _all("RUN")
    lock = next(i for i, r in enumerate(runs) if "pip install -r requirements.lock" in r)
    project = next(i for i, r in enumerate(runs) if re.search(r"pip install --no-deps (\.|/src)(\s|$)", r))
    assert lock < project
    copies = " ".join(_all("COPY"))
    for path in ("requirements.lock", "pyproject.toml", "README.md", "contracts/build", "trace_sdk", "chain_node",
                 "certificate_service"):
        assert path in copies, path


def test_lock_pins_pyyaml() -> None:
    lines = (REPO_ROOT / "requirements.lock").read_text().lower().splitlines()
    assert any(re.fullmatch(r"pyyaml==\d+\.\d+\.\d+", line) for line in lines)


def test_runs_as_a_non_root_user() -> None:
    users = _all("USER")
    assert users, "USER is required"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    run = " ".join(_all("RUN"))
    assert re.search(rf"useradd\b.*\b{re.escape(user)}\b", run), "the user is created in the image"
    instructions = [i for i, _ in _instructions()]
    assert "RUN" not in instructions[instructions.index("USER"):], "nothing runs as root after USER"


def test_healthcheck_probes_the_health_endpoint() -> None:
    checks = _all("HEALTHCHECK")
    assert len(checks) == 1
    assert "/api/v1/health" in checks[0]
    assert "CMD" in checks[0].split()


def test_service_listens_on_all_interfaces_inside_the_container() -> None:
    env = " ".join(_all("ENV"))
    assert "TRACECHAIN_HTTP_HOST=0.0.0.0" in env
    assert "TRACECHAIN_DATA_DIR=/data" in env
    cmd = _all("CMD")[-1]
    argv = shlex.split(" ".join(json.loads(cmd)[2:])) if cmd.startswith("[") else shlex.split(cmd)
    assert "uvicorn" in argv and "certificate_service.main:create_app" in argv and "--factory" in argv
    assert argv[argv.index("--host") + 1] == "$TRACECHAIN_HTTP_HOST"


def test_dockerfile_environment_is_documented() -> None:
    documented = documented_variables((REPO_ROOT / "docs" / "interfaces.md").read_text(encoding="utf-8"))
    names = set(re.findall(r"\b(TRACECHAIN_[A-Z0-9_]+)=", " ".join(_all("ENV"))))
    assert names and names <= documented, names - documented


def test_build_context_excludes_keys_and_local_state() -> None:
    patterns = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "an allowlist: everything is excluded unless named"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert not any(p.startswith(("consortium", ".tracechain", ".venv", "node_modules", "tests")) for p in included)
    for copied in ("requirements.lock", "pyproject.toml", "README.md", "contracts/build", "trace_sdk", "chain_node",
                   "certificate_service"):
        assert copied in included, f"{copied} is COPYed but excluded from the build context"
