"""Ingestion: an agency uploads the records, salts and proofs of a root it anchored; all or nothing."""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from certificate_service.db import begin_write
from certificate_service.errors import BadRequest, Conflict, Forbidden, NotFound, Unavailable, Unprocessable
from certificate_service.repositories import certificates as certificate_repo
from certificate_service.repositories import records as record_repo
from certificate_service.repositories._common import normalize_address
from certificate_service.worker_pool import WorkerPool
from trace_sdk.exceptions import CanonicalizationError, ChainUnavailableError
from trace_sdk.protocol.canonical import canonicalize
from trace_sdk.protocol.certificate_ids import certificate_id_for
from trace_sdk.protocol.hashing import flatten_fields, hash_fields, leaf_hash, trace_code_hash
from trace_sdk.protocol.merkle import hash_pair, verify_proof
from trace_sdk.protocol.records import validate_record

if TYPE_CHECKING:  # web3 is not needed to check items (keeps the checking workers light)
    from trace_sdk.verifier.chain_reader import ChainReader

__all__ = ["IngestResult", "ingest_batch"]

log = logging.getLogger(__name__)


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


def _proof_leads_to_root(leaf: bytes, proof: list[bytes], root: bytes, memo: dict[bytes, bytes] | None) -> bool:
    """`verify_proof`, remembering inner nodes in ``memo``: the items of one upload share most of their
    paths, so checking n proofs costs about n hashes instead of n log n."""
    if memo is None:
        return verify_proof(leaf, proof, root)
    if len(leaf) != 32 or len(root) != 32 or any(len(node) != 32 for node in proof):
        return False
    computed = leaf
    for node in proof:
        pair = computed + node if computed < node else node + computed
        parent = memo.get(pair)
        if parent is None:
            parent = memo[pair] = hash_pair(computed, node)
        computed = parent
    return computed == root


def _check_item(
    index: int, item: Any, root: bytes, count: int, memo: dict[bytes, bytes] | None = None
) -> tuple[list[dict[str, Any]], Any, str | None]:
    """Problems of one uploaded item, and its record hash and content SHA-256 when it is sound."""
    problems: list[dict[str, Any]] = []

    def problem(path: str, message: str) -> None:
        record = item.get("record") if isinstance(item, dict) else None
        record_id = record.get("record_id") if isinstance(record, dict) else None
        problems.append({"index": index, "record_id": record_id, "path": path, "message": message})

    if not isinstance(item, dict):
        problem("", "each item must be an object with record, salts, leaf_index and proof")
        return problems, None, None
    record, salts, leaf_index, proof = (item.get(k) for k in ("record", "salts", "leaf_index", "proof"))
    try:  # canonical first: its size is the validator's size rule (else it measures the record itself)
        canonical: bytes | None = canonicalize(record)
    except (CanonicalizationError, RecursionError):
        canonical = None  # invalid: the validator says why
    size = len(canonical) if canonical is not None else None
    for error in validate_record(record, index=index, canonical_size=size):
        problems.append(
            {"index": index, "record_id": error.record_id, "path": error.path, "message": error.message}
        )
    if problems:
        return problems, None, None
    if not isinstance(leaf_index, int) or isinstance(leaf_index, bool) or not 0 <= leaf_index < count:
        problem("leaf_index", f"must be an integer from 0 to {count - 1} (the batch has {count} records)")
    if not isinstance(proof, list) or not all(isinstance(p, str) and len(p) == 66 for p in proof):
        problem("proof", "must be a list of 0x-prefixed 32-byte hex strings")
    if not isinstance(salts, dict):
        problem("salts", "must be an object mapping every field path to its salt")
    if problems:
        return problems, None, None
    fields = flatten_fields(record)
    if salts.keys() != fields.keys():
        paths, given = set(fields), set(salts)
        missing, extra = sorted(paths - given), sorted(given - paths)
        problem("salts", f"salts must cover exactly the record's fields (missing {missing[:5]}, extra {extra[:5]})")
        return problems, None, None
    try:
        record_hash = hash_fields(fields, salts).record_hash
        proof_bytes = [bytes.fromhex(p[2:]) for p in proof]
    except ValueError as exc:
        problem("salts", f"salts must be 0x-prefixed 32-byte hex strings ({exc})")
        return problems, None, None
    if not _proof_leads_to_root(leaf_hash(record_hash), proof_bytes, root, memo):
        problem("proof", "the record (with its salts) does not hash to a leaf whose proof leads to the root")
        return problems, None, None
    if canonical is None:
        canonical = canonicalize(record)  # raises what a valid record cannot (a safety net)
    return problems, record_hash, hashlib.sha256(canonical).hexdigest()


def _check_items(
    items: list[Any], root: bytes, count: int, first_index: int = 0
) -> list[tuple[list[dict[str, Any]], Any, str | None]]:
    """`_check_item` of consecutive items (one task of the checking pool)."""
    memo: dict[bytes, bytes] = {}
    return [_check_item(first_index + offset, item, root, count, memo) for offset, item in enumerate(items)]


# ---------------------------------------------------------------------------------------------- checking pool
# Checking an item (validation, salted hashing, Merkle proof, canonical form) is pure CPU, ~0.1 ms per record:
# a large upload is checked by a pool of worker processes (certificate_service.worker_pool); small uploads,
# and large ones while the pool warms up or after it broke, are checked in-process.

_POOL_MIN_ITEMS = 400
_POOL_CHUNK = 500
_check_workers = WorkerPool(max_workers=4)


def _check_all(items: list[Any], root: bytes, count: int) -> list[tuple[list[dict[str, Any]], Any, str | None]]:
    """`_check_item` of every item, in order: by the pool for large uploads, else in-process."""
    pool = _check_workers.ready() if len(items) >= _POOL_MIN_ITEMS else None
    if pool is not None:
        try:
            futures = [
                pool.submit(_check_items, items[start : start + _POOL_CHUNK], root, count, start)
                for start in range(0, len(items), _POOL_CHUNK)
            ]
            checked: list[tuple[list[dict[str, Any]], Any, str | None]] = []
            for future in futures:
                checked.extend(future.result())
            return checked
        except BrokenProcessPool:
            log.warning("ingestion check workers died; checking in-process")
            _check_workers.drop(pool)
        except Exception:  # e.g. something that cannot be pickled: the in-process check decides
            log.debug("checking pool failed; checking in-process", exc_info=True)
    return _check_items(items, root, count)


# ---------------------------------------------------------------------------------------------- ingestion


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
    sound: list[tuple[dict[str, Any], bytes, str, dict[str, Any], int, list[str]]] = []
    seen_ids: set[str] = set()
    for index, (item_problems, record_hash, content) in enumerate(_check_all(items, root, batch.count)):
        problems.extend(item_problems)
        if record_hash is not None:
            item = items[index]
            record_id = item["record"]["record_id"]
            if record_id in seen_ids:
                problems.append({"index": index, "record_id": record_id, "path": "record_id",
                                 "message": "the same record_id appears twice in this request"})
                continue
            seen_ids.add(record_id)
            sound.append((item["record"], record_hash, content, item["salts"], item["leaf_index"], item["proof"]))
    if problems:
        raise Unprocessable(
            f"{len(problems)} problem(s) in the upload; nothing was stored", errors=problems[:200]
        )

    root_hex = "0x" + root.hex()
    agency = normalize_address(signer)
    begin_write(session)
    existing = record_repo.existing_records_by_agency_ids(session=session, agency_address=agency, record_ids=seen_ids)
    accepted = present = 0
    certificates: list[dict[str, str]] = []
    new_records: list[dict[str, Any]] = []
    new_certificates: list[tuple[str, str]] = []
    new_links: list[tuple[str, str, str]] = []
    for record, record_hash, content, salts, leaf_index, proof in sound:
        record_id = record["record_id"]
        prior = existing.get(record_id)
        if prior is not None:
            prior_hash, prior_content = prior
            if prior_content != content:
                raise Conflict(
                    f"record_id {record_id!r} was already submitted by {agency} with different content; "
                    "the first record stands",
                    record_id=record_id,
                )
            present += 1
            certificates.append({
                "record_id": record_id,
                "record_hash": prior_hash,
                "certificate_id": certificate_id_for(bytes.fromhex(prior_hash[2:])),
            })
            continue
        record_hex = "0x" + record_hash.hex()
        trace_code = record["trace_code"]
        new_records.append({
            "record_hash": record_hex,
            "agency_address": agency,
            "record_id": record_id,
            "record": record,
            "salts": salts,
            "content_sha256": content,
            "trace_code": trace_code,
            "trace_code_hash": "0x" + trace_code_hash(trace_code).hex(),
            "enterprise_uscc": record["enterprise"]["uscc"],
            "event_time": datetime.fromisoformat(record["event_time"]),
            "root": root_hex,
            "leaf_index": leaf_index,
            "proof": proof,
        })
        new_links += [(code, trace_code, record_hex) for code in record.get("inputs", [])]
        new_links += [(trace_code, code, record_hex) for code in record.get("outputs", [])]
        certificate_id = certificate_id_for(record_hash)
        new_certificates.append((certificate_id, record_hex))
        certificates.append({"record_id": record_id, "record_hash": record_hex, "certificate_id": certificate_id})
        accepted += 1
    # Bulk INSERTs (one executemany per table, records first: the others refer to them).
    record_repo.bulk_add_records(session=session, rows=new_records)
    record_repo.bulk_add_lot_links(session=session, links=new_links)
    certificate_repo.bulk_add_certificates(session=session, certificates=new_certificates)
    session.commit()
    return IngestResult(root_hex, accepted, present, certificates)
