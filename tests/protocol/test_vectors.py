"""The golden vectors of tests/vectors: recomputed from their inputs, and pinned by hand where it is cheap."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from sha3 import keccak_256

from trace_sdk.protocol import (
    MerkleTree,
    canonicalize,
    from_hex,
    hash_record,
    leaf_hash,
    record_hash_from_disclosure,
    trace_code_hash,
    verify_proof,
)

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors"
RECORDS = json.loads((VECTORS / "records.json").read_text(encoding="utf-8"))
MERKLE = json.loads((VECTORS / "merkle.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("vector", RECORDS["records"], ids=lambda v: v["record"]["record_id"])
def test_record_vector(vector: dict[str, Any]) -> None:
    record = vector["record"]
    canonical = canonicalize(record)
    assert canonical.hex() == vector["canonical_hex"]
    assert canonical == vector["canonical_utf8"].encode()
    salts = {f["path"]: f["salt"] for f in vector["fields"]}
    hashed = hash_record(record, salts)
    assert {p: "0x" + h.hex() for p, h in hashed.field_hashes.items()} == {
        f["path"]: f["field_hash"] for f in vector["fields"]
    }
    assert ["0x" + h.hex() for h in sorted(hashed.field_hashes.values())] == vector["sorted_field_hashes"]
    assert "0x" + hashed.record_hash.hex() == vector["record_hash"]
    assert "0x" + hashed.leaf.hex() == vector["leaf"]
    assert "0x" + trace_code_hash(record["trace_code"]).hex() == vector["trace_code_hash"]


@pytest.mark.parametrize("vector", RECORDS["records"], ids=lambda v: v["record"]["record_id"])
def test_record_vector_by_hand(vector: dict[str, Any]) -> None:
    """Recompute with nothing but keccak and the vector's own strings: the spec, not the library."""
    field_hashes = []
    for field in vector["fields"]:
        preimage = from_hex(field["salt"], 32) + field["path"].encode() + b"\x00" + field["value_jcs"].encode()
        digest = keccak_256(preimage).digest()
        assert "0x" + digest.hex() == field["field_hash"]
        field_hashes.append(digest)
    record_hash = keccak_256(b"".join(sorted(field_hashes))).digest()
    assert "0x" + record_hash.hex() == vector["record_hash"]
    assert "0x" + keccak_256(record_hash).digest().hex() == vector["leaf"]


@pytest.mark.parametrize("vector", RECORDS["disclosures"], ids=lambda v: v["record_id"])
def test_disclosure_vector(vector: dict[str, Any]) -> None:
    hidden = {p: from_hex(h, 32) for p, h in vector["hidden_field_hashes"].items()}
    recomputed = record_hash_from_disclosure(vector["disclosed_record"], vector["salts"], hidden)
    assert "0x" + recomputed.hex() == vector["record_hash"]


@pytest.mark.parametrize("tree", MERKLE["trees"], ids=lambda t: f"{len(t['leaves'])} leaves")
def test_merkle_vector(tree: dict[str, Any]) -> None:
    leaves = [from_hex(leaf, 32) for leaf in tree["leaves"]]
    built = MerkleTree(leaves)
    assert "0x" + built.root.hex() == tree["root"]
    assert [["0x" + n.hex() for n in proof] for proof in built.proofs()] == tree["proofs"]
    root = from_hex(tree["root"], 32)
    for leaf, proof in zip(leaves, tree["proofs"], strict=True):
        assert verify_proof(leaf, [from_hex(n, 32) for n in proof], root)


def test_merkle_vectors_cover_the_promised_sizes() -> None:
    assert [len(t["leaves"]) for t in MERKLE["trees"]] == [1, 2, 3, 4, 5, 7, 8, 13]


def test_small_merkle_roots_by_hand() -> None:
    trees = {len(t["leaves"]): t for t in MERKLE["trees"]}
    (only,) = trees[1]["leaves"]
    assert trees[1]["root"] == only and trees[1]["proofs"] == [[]]
    a, b = (from_hex(x) for x in trees[2]["leaves"])
    assert "0x" + keccak_256(min(a, b) + max(a, b)).digest().hex() == trees[2]["root"]
    x, y, z = (from_hex(v) for v in trees[3]["leaves"])
    xy = keccak_256(min(x, y) + max(x, y)).digest()
    assert "0x" + keccak_256(min(xy, z) + max(xy, z)).digest().hex() == trees[3]["root"]


def test_a_leaf_is_the_hash_of_a_record_hash_not_a_pair() -> None:
    record_hash = from_hex(RECORDS["records"][0]["record_hash"], 32)
    assert leaf_hash(record_hash) == keccak_256(record_hash).digest()


def test_vector_files_are_what_the_script_writes() -> None:
    script = REPO / "scripts" / "make_test_vectors.py"
    if not script.exists() or not (REPO.parent / "shared" / "data" / "sample-records.jsonl").is_file():
        pytest.skip("needs scripts/make_test_vectors.py and ../shared/data/sample-records.jsonl")
    spec = importlib.util.spec_from_file_location("make_test_vectors", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    samples = [json.loads(line) for line in module.SAMPLES.read_text(encoding="utf-8").splitlines() if line]
    assert module.render(module.build_records(samples)) == (VECTORS / "records.json").read_text(encoding="utf-8")
    assert module.render(module.build_merkle()) == (VECTORS / "merkle.json").read_text(encoding="utf-8")
