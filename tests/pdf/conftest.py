"""Fixtures for the certificate PDF suite: a sample payload from a real sample record, a PKI, a signed PDF.

The payload's hashes follow docs/interfaces.md (salted field hashes, record hash, Merkle leaf) but the
chain evidence (root, transaction) is made up: these tests never touch a chain.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sha3

from certificate_service.pdf import render_certificate, sign_certificate
from certificate_service.pki import IssuerPKI
from trace_sdk.protocol.canonical import canonicalize
from trace_sdk.protocol.certificate_ids import certificate_id_for

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RECORDS = REPO_ROOT.parent / "shared" / "data" / "sample-records.jsonl"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "pdf"
VERIFY_URL = "https://trace.shanghai.gov.cn/verify/{id}"
HIDDEN = ("contact.person", "contact.phone")


def keccak(data: bytes) -> bytes:
    return sha3.keccak_256(data).digest()


def hex32(data: bytes) -> str:
    return "0x" + data.hex()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted leaf paths as in docs/interfaces.md (array items by index; empty containers are leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else key))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}.{index}"))
        return out
    return {prefix: value}


def build_payload(record: dict[str, Any], *, hidden: tuple[str, ...] = HIDDEN, seed: bytes = b"") -> dict[str, Any]:
    """A certificate payload for ``record`` with ``hidden`` fields withheld (deterministic salts)."""
    leaves = flatten(record)
    salts = {path: keccak(b"salt" + seed + path.encode()) for path in leaves}
    field_hashes = {
        path: keccak(salts[path] + path.encode() + b"\x00" + canonicalize(value)) for path, value in leaves.items()
    }
    record_hash = keccak(b"".join(sorted(field_hashes.values())))
    leaf = keccak(record_hash)
    sibling = keccak(b"sibling" + seed)
    root = keccak(min(leaf, sibling) + max(leaf, sibling))

    disclosed = copy.deepcopy(record)
    hidden_present = [path for path in hidden if path in leaves]
    for path in hidden_present:
        parent_path, _, key = path.rpartition(".")
        parent = disclosed
        for part in parent_path.split(".") if parent_path else []:
            parent = parent[part]
        del parent[key]
    for top in {path.split(".")[0] for path in hidden_present}:
        if disclosed.get(top) == {}:
            del disclosed[top]

    payload: dict[str, Any] = {
        "type": "tracechain-certificate/v1",
        "certificate_id": certificate_id_for(record_hash),
        "issued_at": "2026-03-02T10:00:00Z",
        "record": disclosed,
        "salts": {path: hex32(salt) for path, salt in salts.items() if path not in hidden_present},
        "hidden_fields": {path: hex32(field_hashes[path]) for path in hidden_present},
        "record_hash": hex32(record_hash),
        "merkle": {"leaf": hex32(leaf), "root": hex32(root), "proof": [hex32(sibling)]},
        "anchor": {
            "tx_hash": hex32(keccak(b"tx" + record_hash)),
            "block_number": 123,
            "block_time": "2026-03-02T09:59:58Z",
            "chain_id": 31337,
            "contracts": {
                "ConsortiumRegistry": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "TraceAnchor": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
            },
            "agency": {
                "name": "上海海关",
                "code": "SHCUSTOMS",
                "address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            },
        },
        "issuer": {
            "name": "上海市大数据中心",
            "code": "SHBDC",
            "address": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
            "certificate_fingerprint_sha256": "00" * 32,
        },
    }
    payload["certificate_hash"] = hex32(keccak(canonicalize(payload)))
    return payload


def sample_records() -> list[dict[str, Any]]:
    with SAMPLE_RECORDS.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def run_tool(*args: str, input_bytes: bytes | None = None) -> bytes:
    """Run a poppler/zbar tool; a missing tool is a setup error (`make setup` installs them)."""
    if shutil.which(args[0]) is None:
        pytest.fail(f"{args[0]} is not installed: run `make setup` (scripts/install-system-packages.sh)")
    done = subprocess.run(args, input=input_bytes, capture_output=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


@pytest.fixture(scope="session")
def records() -> list[dict[str, Any]]:
    return sample_records()


@pytest.fixture(scope="session")
def sample_record(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The imported frozen pork at Yangshan customs: documents, cold chain and contact details."""
    return next(r for r in records if r["biz_step"] == "import_inspecting" and r.get("contact"))


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> IssuerPKI:
    return IssuerPKI.load_or_create(tmp_path_factory.mktemp("issuer"))


@pytest.fixture(scope="session")
def sample_payload(sample_record: dict[str, Any], pki: IssuerPKI) -> dict[str, Any]:
    payload = build_payload(sample_record)
    payload["issuer"]["certificate_fingerprint_sha256"] = pki.fingerprint_sha256
    payload.pop("certificate_hash")
    payload["certificate_hash"] = hex32(keccak(canonicalize(payload)))
    return payload


@pytest.fixture(scope="session")
def verify_url(sample_payload: dict[str, Any]) -> str:
    return VERIFY_URL.format(id=sample_payload["certificate_id"])


@pytest.fixture(scope="session")
def rendered_pdf(sample_payload: dict[str, Any], verify_url: str) -> bytes:
    return render_certificate(sample_payload, verify_url)


@pytest.fixture(scope="session")
def signed_pdf(rendered_pdf: bytes, pki: IssuerPKI) -> bytes:
    return sign_certificate(rendered_pdf, pki)


@pytest.fixture(scope="session")
def artifacts(signed_pdf: bytes, sample_payload: dict[str, Any], pki: IssuerPKI) -> Iterator[Path]:
    """One good certificate kept under test-artifacts/pdf/ (git-ignored) for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "certificate.pdf").write_bytes(signed_pdf)
    (ARTIFACTS / "certificate.json").write_bytes(canonicalize(sample_payload))
    (ARTIFACTS / "consortium-ca.pem").write_bytes(pki.ca_pem)
    if shutil.which("pdftoppm"):
        prefix = ARTIFACTS / "certificate-page"
        run_tool(
            "pdftoppm",
            "-r",
            "110",
            "-png",
            "-f",
            "1",
            "-l",
            "1",
            os.fspath(ARTIFACTS / "certificate.pdf"),
            os.fspath(prefix),
        )
    yield ARTIFACTS
