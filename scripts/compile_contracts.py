"""Compile the TraceChain contracts reproducibly (npm solcjs via py-solc-x) into contracts/build/*.json."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import solcx
from solcx.wrapper import get_solc_version

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = REPO_ROOT / "contracts"
BUILD_DIR = CONTRACTS_DIR / "build"
SOLC_WRAPPER = REPO_ROOT / "scripts" / "solcjs-standard-json"
CONTRACT_NAMES = ("ConsortiumRegistry", "TraceAnchor")

# Everything that influences the bytecode is pinned here; source names are repository-relative paths.
SETTINGS: dict[str, Any] = {
    "evmVersion": "paris",
    "optimizer": {"enabled": True, "runs": 200},
    "metadata": {"bytecodeHash": "none"},
    "outputSelection": {
        "*": {
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.deployedBytecode.object",
                "evm.deployedBytecode.immutableReferences",
            ]
        }
    },
}


def source_files(contracts_dir: Path = CONTRACTS_DIR) -> list[Path]:
    """Every Solidity source under ``contracts_dir`` (build output excluded), in a stable order."""
    paths = contracts_dir.rglob("*.sol")
    return sorted(p for p in paths if "build" not in p.relative_to(contracts_dir).parts)


def _read(path: Path) -> str:
    """A source file's text (UTF-8, newlines as committed)."""
    return path.read_bytes().decode("utf-8")


def standard_json_input(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, Any]:
    """The solc standard-JSON input with inlined sources named ``contracts/<relative path>``."""
    sources = {
        f"contracts/{path.relative_to(contracts_dir).as_posix()}": {"content": _read(path)}
        for path in source_files(contracts_dir)
    }
    return {"language": "Solidity", "sources": sources, "settings": SETTINGS}


def compiler_version(solc_binary: Path = SOLC_WRAPPER) -> str:
    """The compiler version with its commit, e.g. ``0.8.28+commit.7893614a``."""
    return str(get_solc_version(solc_binary, with_commit_hash=True))


def compile_contracts(
    contracts_dir: Path = CONTRACTS_DIR, solc_binary: Path = SOLC_WRAPPER
) -> dict[str, dict[str, Any]]:
    """Compile the sources and return one artifact dict per deployable contract."""
    input_data = standard_json_input(contracts_dir)
    output = solcx.compile_standard(input_data, solc_binary=solc_binary)
    for error in output.get("errors", []):
        print(error.get("formattedMessage", error.get("message", "")), file=sys.stderr)
    settings = {key: value for key, value in SETTINGS.items() if key != "outputSelection"}
    compiler = {"name": "solc", "version": compiler_version(solc_binary), "settings": settings}
    artifacts: dict[str, dict[str, Any]] = {}
    for name in CONTRACT_NAMES:
        compiled = output["contracts"][f"contracts/{name}.sol"][name]
        evm = compiled["evm"]
        artifacts[name] = {
            "contractName": name,
            "sourceName": f"contracts/{name}.sol",
            "abi": compiled["abi"],
            "bytecode": "0x" + evm["bytecode"]["object"],
            "deployedBytecode": "0x" + evm["deployedBytecode"]["object"],
            "immutableReferences": evm["deployedBytecode"].get("immutableReferences", {}),
            "compiler": compiler,
        }
    return artifacts


def render_artifact(artifact: dict[str, Any]) -> str:
    """The canonical JSON text of an artifact (stable formatting, trailing newline)."""
    return json.dumps(artifact, indent=2, ensure_ascii=False) + "\n"


def write_artifacts(artifacts: dict[str, dict[str, Any]], build_dir: Path = BUILD_DIR) -> list[Path]:
    """Write ``<ContractName>.json`` files into ``build_dir``; return their paths."""
    build_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in artifacts.items():
        path = build_dir / f"{name}.json"
        path.write_text(render_artifact(artifact), encoding="utf-8")
        written.append(path)
    return written


def stale_artifacts(artifacts: dict[str, dict[str, Any]], build_dir: Path = BUILD_DIR) -> list[str]:
    """Names of contracts whose committed artifact differs from ``artifacts``."""
    stale = []
    for name, artifact in artifacts.items():
        path = build_dir / f"{name}.json"
        if not path.exists() or path.read_text(encoding="utf-8") != render_artifact(artifact):
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: compile and write, or ``--check`` the committed artifacts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if contracts/build is out of date")
    args = parser.parse_args(argv)
    artifacts = compile_contracts()
    if args.check:
        stale = stale_artifacts(artifacts)
        if stale:
            print(f"out of date: {', '.join(stale)} (run `make compile`)", file=sys.stderr)
            return 1
        print("contract artifacts are up to date")
        return 0
    for path in write_artifacts(artifacts):
        size = len(bytes.fromhex(json.loads(path.read_text())["deployedBytecode"][2:]))
        print(f"wrote {path.relative_to(REPO_ROOT)} ({size} bytes deployed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
