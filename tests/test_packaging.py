"""`pip install .` into a clean virtualenv gives a working CLI and the packages with their data files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_every_package_directory_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(REPO_ROOT).parts)
        for top in ("trace_sdk", "chain_node", "certificate_service")
        for path in (REPO_ROOT / top).rglob("__init__.py")
    }
    assert found - listed == set(), "add these packages to [tool.setuptools] packages"


def test_pip_install_into_a_clean_venv(tmp_path: Path) -> None:
    source = tmp_path / "src"  # build from a copy: setuptools writes build/ and *.egg-info next to the sources
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", "node_modules", ".tracechain", ".git", "build", "test-artifacts", "*.egg-info", "__pycache__",
        ".pytest_cache", ".ruff_cache", ".hypothesis", "consortium",
    ))
    shutil.copytree(REPO_ROOT / "contracts" / "build", source / "contracts" / "build")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The project itself is built and installed for real; its dependencies come from the dev venv
    # (made visible through a .pth file) so the test does not download them again.
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(source)],
        check=True, cwd=tmp_path,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    (Path(site) / "_dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    probe = (
        "import trace_sdk, chain_node, certificate_service, pathlib\n"
        "from trace_sdk.client.contracts import load_artifact\n"
        "from trace_sdk.protocol.records import load_schema\n"
        "from certificate_service.migrations import head_revision\n"
        f"assert not trace_sdk.__file__.startswith({str(REPO_ROOT)!r}), trace_sdk.__file__\n"
        "assert load_artifact('TraceAnchor')['bytecode'] and load_artifact('ConsortiumRegistry')['abi']\n"
        "assert load_schema()['$id'] == 'urn:tracechain:schema:trace-record:v1'\n"
        "print(head_revision())\n"
    )
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    cli = subprocess.run([str(venv / "bin" / "tracechain"), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    for command in ("up", "submit", "verify", "outbox", "member", "enterprise"):
        assert command in cli.stdout
