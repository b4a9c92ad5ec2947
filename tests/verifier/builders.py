"""Build realistic certificate payloads the way the certificate service does (for the verifier tests)."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from trace_sdk.protocol.canonical import canonicalize
from trace_sdk.protocol.certificate_ids import certificate_id_for
from trace_sdk.protocol.hashing import (
    disclose,
    flatten_fields,
    hash_record,
    keccak256,
    leaf_hash,
    new_salts,
    record_hash_from_disclosure,
    to_hex,
)
from trace_sdk.protocol.merkle import MerkleTree

CERTIFICATE_TYPE = "tracechain-certificate/v1"
CST = dt.timezone(dt.timedelta(hours=8))


def salts_for(record: Mapping[str, Any]) -> dict[str, str]:
    """Fresh salts for every leaf field of ``record``."""
    return new_salts(flatten_fields(record))


def tree_for(records: Sequence[Mapping[str, Any]], salts: Sequence[Mapping[str, str]]) -> MerkleTree:
    """The batch Merkle tree of ``records`` (leaves in submission order)."""
    return MerkleTree([hash_record(r, s).leaf for r, s in zip(records, salts, strict=True)])


def ancestors(trace_code: str, records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every ancestor lot of ``trace_code`` known from ``records`` (following ``inputs``), nearest first."""
    parents: dict[str, list[str]] = {}
    for record in records:
        parents.setdefault(record["trace_code"], [])
        for code in record.get("inputs", []):
            if code not in parents[record["trace_code"]]:
                parents[record["trace_code"]].append(code)
    seen: list[str] = []
    queue = list(parents.get(trace_code, []))
    while queue:
        code = queue.pop(0)
        if code not in seen and code != trace_code:
            seen.append(code)
            queue.extend(parents.get(code, []))
    return seen


def build_payload(
    record: Mapping[str, Any],
    salts: Mapping[str, str],
    tree: MerkleTree,
    index: int,
    *,
    anchor: Mapping[str, Any],
    issuer: Mapping[str, Any],
    hide: Iterable[str] = (),
    upstream: Sequence[str] = (),
) -> dict[str, Any]:
    """A complete, sealed certificate payload for leaf ``index`` of ``tree``."""
    disclosure = disclose(record, salts, hide)
    record_hash = hash_record(record, salts).record_hash
    payload: dict[str, Any] = {
        "type": CERTIFICATE_TYPE,
        "certificate_id": certificate_id_for(record_hash),
        "issued_at": dt.datetime(2026, 3, 5, 10, 0, tzinfo=CST).isoformat(),
        "record": disclosure.record,
        "salts": disclosure.salts,
        "hidden_fields": {p: to_hex(h) for p, h in disclosure.hidden_field_hashes.items()},
        "record_hash": to_hex(record_hash),
        "merkle": {
            "leaf": to_hex(leaf_hash(record_hash)),
            "root": to_hex(tree.root),
            "proof": [to_hex(n) for n in tree.proof(index)],
        },
        "anchor": copy.deepcopy(dict(anchor)),
        "issuer": dict(issuer),
        "lineage": {"upstream_trace_codes": list(upstream)},
    }
    return seal(payload)


def seal(payload: dict[str, Any]) -> dict[str, Any]:
    """Recompute ``certificate_hash`` after an edit (what a forger re-signing the payload would do)."""
    payload.pop("certificate_hash", None)
    payload["certificate_hash"] = to_hex(keccak256(canonicalize(payload)))
    return payload


def rehash(payload: dict[str, Any]) -> dict[str, Any]:
    """Recompute record hash, leaf, certificate id and certificate hash from the (edited) disclosed fields."""
    hidden = {p: bytes.fromhex(h[2:]) for p, h in payload["hidden_fields"].items()}
    record_hash = record_hash_from_disclosure(payload["record"], payload["salts"], hidden)
    payload["record_hash"] = to_hex(record_hash)
    payload["merkle"]["leaf"] = to_hex(leaf_hash(record_hash))
    payload["certificate_id"] = certificate_id_for(record_hash)
    return seal(payload)


def block_time(timestamp: int) -> str:
    """A block timestamp as the ISO 8601 text a certificate carries (China Standard Time)."""
    return dt.datetime.fromtimestamp(timestamp, tz=CST).isoformat()
