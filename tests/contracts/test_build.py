"""The committed artifacts are exactly what the pinned compiler makes from the committed sources."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _compile_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compile_contracts", REPO_ROOT / "scripts" / "compile_contracts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compiled() -> dict[str, dict[str, object]]:
    if not (REPO_ROOT / "node_modules" / ".bin" / "solcjs").exists():
        pytest.skip("npm solcjs is not installed (run `make setup`)")
    return _compile_script().compile_contracts()


def test_recompile_matches_committed_artifacts(compiled: dict[str, dict[str, object]]) -> None:
    build = REPO_ROOT / "contracts" / "build"
    for name, artifact in compiled.items():
        committed = json.loads((build / f"{name}.json").read_text(encoding="utf-8"))
        assert committed["abi"] == artifact["abi"], f"{name}: ABI differs, run `make compile`"
        assert committed["bytecode"] == artifact["bytecode"], f"{name}: bytecode differs, run `make compile`"
        assert committed["deployedBytecode"] == artifact["deployedBytecode"]
        assert committed == artifact


def test_compiler_settings_are_pinned(compiled: dict[str, dict[str, object]]) -> None:
    for artifact in compiled.values():
        compiler = artifact["compiler"]
        assert isinstance(compiler, dict)
        assert compiler["version"] == "0.8.28+commit.7893614a"
        assert compiler["settings"] == {
            "evmVersion": "paris",
            "optimizer": {"enabled": True, "runs": 200},
            "metadata": {"bytecodeHash": "none"},
        }
    for artifact in compiled.values():  # paris: no PUSH0, so the code also runs on pre-Shanghai chains
        assert 0x5F not in _opcodes(str(artifact["deployedBytecode"]))


def _opcodes(code_hex: str) -> list[int]:
    """The opcodes of runtime code (PUSH data skipped, the trailing CBOR metadata dropped)."""
    code = bytes.fromhex(code_hex.removeprefix("0x"))
    code = code[: -2 - int.from_bytes(code[-2:], "big")]
    ops, i = [], 0
    while i < len(code):
        op = code[i]
        ops.append(op)
        i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
    return ops
