"""Write the protocol's golden test vectors: tests/vectors/records.json and tests/vectors/merkle.json.

Another implementation of the protocol checks itself against these files. Run from the repository root:

    .venv/bin/python scripts/make_test_vectors.py

Salts and leaves are derived deterministically (see `salt_for` and `merkle_leaf`), so the output is stable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from trace_sdk.protocol import (
    MerkleTree,
    canonicalize,
    disclose,
    flatten_fields,
    hash_record,
    keccak256,
    to_hex,
    trace_code_hash,
    validate_record,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "data" / "sample-records.jsonl"
OUT = REPO / "tests" / "vectors"

SAMPLE_IDS = ["DEMO-r000002", "DEMO-r000003", "DEMO-r000006"]
MERKLE_SIZES = [1, 2, 3, 4, 5, 7, 8, 13]

# A record that exercises the corners of RFC 8785 inside `extensions`.
EDGE_RECORD: dict[str, Any] = {
    "schema": "trace-record/v1",
    "record_id": "VECTOR-edge-1",
    "trace_code": "01/06901234567892/10/LOT1",
    "event_type": "ObjectEvent",
    "biz_step": "inspecting",
    "event_time": "2026-03-01T08:30:00.125Z",
    "product": {"name": 'Café 咖啡 "特级"', "category": "other", "lot": "LOT1", "quantity": 1.0},
    "enterprise": {"name": "Vector Test Co.", "uscc": "91350100M000100Y43"},
    "extensions": {
        "whole": 1.0,
        "tiny": 1e-7,
        "small": 0.000001,
        "huge": 1e21,
        "below_huge": 1e20,
        "negative_zero": -0.0,
        "max_safe": 9007199254740991,
        "escapes": 'quote " backslash \\ slash / tab-free',
        "emoji": "😀 beyond the BMP",
        "empty_object": {},
        "empty_list": [],
        "flags": [True, False, None],
        "nested": {"b": [1, 2.5], "a": "x"},
    },
}


def salt_for(record_id: str, path: str) -> str:
    """The fixed test salt of one field: keccak256(utf8("tracechain-vector-salt:" + record_id + ":" + path))."""
    return to_hex(keccak256(f"tracechain-vector-salt:{record_id}:{path}".encode()))


def merkle_leaf(size: int, index: int) -> bytes:
    """The fixed test leaf: keccak256(utf8("tracechain-vector-leaf:" + size + ":" + index))."""
    return keccak256(f"tracechain-vector-leaf:{size}:{index}".encode())


def record_vector(record: dict[str, Any]) -> dict[str, Any]:
    """Canonical bytes, per-field hashes, record hash and leaf of one record with fixed salts."""
    fields = flatten_fields(record)
    salts = {path: salt_for(record["record_id"], path) for path in fields}
    hashed = hash_record(record, salts)
    canonical = canonicalize(record)
    return {
        "record": record,
        "canonical_utf8": canonical.decode(),
        "canonical_hex": canonical.hex(),
        "fields": [
            {
                "path": path,
                "salt": salts[path],
                "value_jcs": canonicalize(value).decode(),
                "field_hash": to_hex(hashed.field_hashes[path]),
            }
            for path, value in sorted(fields.items())
        ],
        "sorted_field_hashes": [to_hex(h) for h in sorted(hashed.field_hashes.values())],
        "record_hash": to_hex(hashed.record_hash),
        "leaf": to_hex(hashed.leaf),
        "trace_code_hash": to_hex(trace_code_hash(record["trace_code"])),
    }


def disclosure_vector(record: dict[str, Any], hide: list[str]) -> dict[str, Any]:
    """A selective disclosure of `record` with the fields under `hide` hidden."""
    salts = {path: salt_for(record["record_id"], path) for path in flatten_fields(record)}
    shown = disclose(record, salts, hide)
    return {
        "record_id": record["record_id"],
        "hide": hide,
        "disclosed_record": shown.record,
        "salts": shown.salts,
        "hidden_field_hashes": {p: to_hex(h) for p, h in sorted(shown.hidden_field_hashes.items())},
        "record_hash": to_hex(hash_record(record, salts).record_hash),
    }


def build_records(samples: list[dict[str, Any]]) -> dict[str, Any]:
    chosen = [next(r for r in samples if r["record_id"] == rid) for rid in SAMPLE_IDS] + [EDGE_RECORD]
    for record in chosen:
        if validate_record(record):
            raise SystemExit(f"vector record {record['record_id']} is not valid: {validate_record(record)}")
    return {
        "description": (
            "TraceChain record hashing vectors (docs/protocol.md). canonical = RFC 8785 JCS of the record; "
            "field_hash = keccak256(salt || utf8(path) || 0x00 || utf8(value_jcs)); record_hash = "
            "keccak256(concat(sorted(field_hashes))); leaf = keccak256(record_hash); trace_code_hash = "
            "keccak256(utf8(trace_code)). Salts are fixed for testing: keccak256(utf8('tracechain-vector-salt:' "
            "+ record_id + ':' + path)). Disclosures: hidden array items are null placeholders."
        ),
        "records": [record_vector(r) for r in chosen],
        "disclosures": [
            disclosure_vector(chosen[0], ["contact", "product.gtin", "documents.1"]),
            disclosure_vector(EDGE_RECORD, ["extensions.flags.1", "extensions.nested", "product.name"]),
        ],
    }


def build_merkle() -> dict[str, Any]:
    trees = []
    for size in MERKLE_SIZES:
        leaves = [merkle_leaf(size, i) for i in range(size)]
        tree = MerkleTree(leaves)
        trees.append(
            {
                "leaves": [to_hex(leaf) for leaf in leaves],
                "root": to_hex(tree.root),
                "proofs": [[to_hex(node) for node in proof] for proof in tree.proofs()],
            }
        )
    return {
        "description": (
            "TraceChain Merkle vectors: OpenZeppelin MerkleProof with Hashes.commutativeKeccak256 "
            "(keccak256 of the sorted pair); leaves in the given order; an odd last node is promoted "
            "unchanged; a single leaf is the root with an empty proof. Leaves are fixed for testing: "
            "keccak256(utf8('tracechain-vector-leaf:' + size + ':' + index))."
        ),
        "trees": trees,
    }


def render(vectors: dict[str, Any]) -> str:
    """The exact text written to a vector file."""
    return json.dumps(vectors, ensure_ascii=False, indent=2) + "\n"


def main() -> int:
    if not SAMPLES.is_file():
        print(f"sample records not found at {SAMPLES}", file=sys.stderr)
        return 1
    samples = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "records.json").write_text(render(build_records(samples)), encoding="utf-8")
    (OUT / "merkle.json").write_text(render(build_merkle()), encoding="utf-8")
    print(f"wrote {OUT / 'records.json'} and {OUT / 'merkle.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
