"""Ingestion: an agency uploads the records, salts and proofs of a root it anchored; all or nothing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certificate_service.db import begin_write
from certificate_service.db.models import Record
from certificate_service.errors import BadRequest, Conflict, Forbidden, NotFound, Unavailable, Unprocessable
from certificate_service.repositories import certificates as certificate_repo
from certificate_service.repositories import records as record_repo
from certificate_service.repositories._common import normalize_address
from trace_sdk.exceptions import ChainUnavailableError
from trace_sdk.protocol.canonical import canonicalize
from trace_sdk.protocol.certificate_ids import certificate_id_for
from trace_sdk.protocol.hashing import flatten_fields, hash_record, leaf_hash, trace_code_hash
from trace_sdk.protocol.merkle import verify_proof
from trace_sdk.protocol.records import validate_record
from trace_sdk.verifier.chain_reader import ChainReader

__all__ = ["IngestResult", "ingest_batch"]


@dataclass(frozen=True)
class IngestResult:
    """What the agency gets back: one certificate per record, new or already present."""

    root: str
    accepted: int
    already_present: int
    certificates: list[dict[str, str]]

    def as_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "accepted": self.accepted,
            "already_present": self.already_present,
            "certificates": self.certificates,
        }


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise BadRequest(f"{what} must be a 0x-prefixed 32-byte hex string")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise BadRequest(f"{what} must be a 0x-prefixed 32-byte hex string") from None


def _anchored_batch(chain: ChainReader, root: bytes, signer: str) -> Any:
    """The root's on-chain batch, which this agency must have anchored (read from the chain itself)."""
    try:
        batch = chain.batch(root)
    except ChainUnavailableError as exc:
        raise Unavailable(f"cannot read the chain to check the root: {exc}") from None
    if batch is None:
        raise NotFound(f"root 0x{root.hex()} is not anchored on chain")
    if batch.agency.lower() != signer.lower():
        raise Forbidden(f"root 0x{root.hex()} was anchored by another member ({batch.agency}), not by {signer}")
    return batch


def _check_item(index: int, item: Any, root: bytes, count: int) -> tuple[list[dict[str, Any]], Any]:
    """Problems of one uploaded item, and its record hash when it is sound."""
    problems: list[dict[str, Any]] = []

    def problem(path: str, message: str) -> None:
        record = item.get("record") if isinstance(item, dict) else None
        record_id = record.get("record_id") if isinstance(record, dict) else None
        problems.append({"index": index, "record_id": record_id, "path": path, "message": message})

    if not isinstance(item, dict):
        problem("", "each item must be an object with record, salts, leaf_index and proof")
        return problems, None
    record, salts, leaf_index, proof = (item.get(k) for k in ("record", "salts", "leaf_index", "proof"))
    for error in validate_record(record, index=index):
        problems.append(
            {"index": index, "record_id": error.record_id, "path": error.path, "message": error.message}
        )
    if problems:
        return problems, None
    if not isinstance(leaf_index, int) or isinstance(leaf_index, bool) or not 0 <= leaf_index < count:
        problem("leaf_index", f"must be an integer from 0 to {count - 1} (the batch has {count} records)")
    if not isinstance(proof, list) or not all(isinstance(p, str) and len(p) == 66 for p in proof):
        problem("proof", "must be a list of 0x-prefixed 32-byte hex strings")
    if not isinstance(salts, dict):
        problem("salts", "must be an object mapping every field path to its salt")
    if problems:
        return problems, None
    paths = set(flatten_fields(record))
    if set(salts) != paths:
        missing, extra = sorted(paths - set(salts)), sorted(set(salts) - paths)
        problem("salts", f"salts must cover exactly the record's fields (missing {missing[:5]}, extra {extra[:5]})")
        return problems, None
    try:
        record_hash = hash_record(record, salts).record_hash
        proof_bytes = [bytes.fromhex(p[2:]) for p in proof]
    except ValueError as exc:
        problem("salts", f"salts must be 0x-prefixed 32-byte hex strings ({exc})")
        return problems, None
    if not verify_proof(leaf_hash(record_hash), proof_bytes, root):
        problem("proof", "the record (with its salts) does not hash to a leaf whose proof leads to the root")
        return problems, None
    return problems, record_hash


def ingest_batch(
    *, session: Session, chain: ChainReader, signer: str, payload: Any
) -> IngestResult:
    """Check everything, then store every record of the request in one transaction (idempotent)."""
    if not isinstance(payload, dict):
        raise BadRequest("body must be a JSON object with root and records")
    root = _hex32(payload.get("root"), "root")
    items = payload.get("records")
    if not isinstance(items, list) or not items:
        raise BadRequest("records must be a non-empty list")
    batch = _anchored_batch(chain, root, signer)

    problems: list[dict[str, Any]] = []
    sound: list[tuple[dict[str, Any], bytes, dict[str, Any], int, list[str]]] = []
    seen_ids: set[str] = set()
    for index, item in enumerate(items):
        item_problems, record_hash = _check_item(index, item, root, batch.count)
        problems.extend(item_problems)
        if record_hash is not None:
            record_id = item["record"]["record_id"]
            if record_id in seen_ids:
                problems.append({"index": index, "record_id": record_id, "path": "record_id",
                                 "message": "the same record_id appears twice in this request"})
                continue
            seen_ids.add(record_id)
            sound.append((item["record"], record_hash, item["salts"], item["leaf_index"], item["proof"]))
    if problems:
        raise Unprocessable(
            f"{len(problems)} problem(s) in the upload; nothing was stored", errors=problems[:200]
        )

    root_hex = "0x" + root.hex()
    agency = normalize_address(signer)
    begin_write(session)
    existing = {
        row.record_id: row
        for row in session.scalars(
            select(Record).where(Record.agency_address == agency, Record.record_id.in_(list(seen_ids)))
        )
    }
    accepted = present = 0
    certificates: list[dict[str, str]] = []
    for record, record_hash, salts, leaf_index, proof in sound:
        record_id = record["record_id"]
        content = hashlib.sha256(canonicalize(record)).hexdigest()
        prior = existing.get(record_id)
        if prior is not None:
            if prior.content_sha256 != content:
                raise Conflict(
                    f"record_id {record_id!r} was already submitted by {agency} with different content; "
                    "the first record stands",
                    record_id=record_id,
                )
            present += 1
            certificates.append({
                "record_id": record_id,
                "record_hash": prior.record_hash,
                "certificate_id": certificate_id_for(bytes.fromhex(prior.record_hash[2:])),
            })
            continue
        record_hex = "0x" + record_hash.hex()
        record_repo.add_record(
            session=session,
            record_hash=record_hex,
            agency_address=agency,
            record_id=record_id,
            record=record,
            salts=salts,
            content_sha256=content,
            trace_code=record["trace_code"],
            trace_code_hash="0x" + trace_code_hash(record["trace_code"]).hex(),
            enterprise_uscc=record["enterprise"]["uscc"],
            event_time=datetime.fromisoformat(record["event_time"]),
            root=root_hex,
            leaf_index=leaf_index,
            proof=proof,
        )
        links = [(code, record["trace_code"]) for code in record.get("inputs", [])]
        links += [(record["trace_code"], code) for code in record.get("outputs", [])]
        if links:
            record_repo.add_lot_links(session=session, record_hash=record_hex, links=links)
        certificate_id = certificate_id_for(record_hash)
        certificate_repo.add_certificate(session=session, certificate_id=certificate_id, record_hash=record_hex)
        certificates.append({"record_id": record_id, "record_hash": record_hex, "certificate_id": certificate_id})
        accepted += 1
    session.commit()
    return IngestResult(root_hex, accepted, present, certificates)
