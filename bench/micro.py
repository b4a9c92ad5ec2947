"""Before/after micro-benchmarks of the speed-ups in bench/README.md ("what we found and changed").

    .venv/bin/python bench/micro.py [--out bench/out/micro.json]

Each pair runs the code as it was before (kept here, verbatim in substance, as the reference) and the code as
it is now, interleaved and repeated, and reports the best CPU time (`time.process_time`) per unit: the
machine is shared, so the minimum of several runs is the least disturbed figure. No chain or service needed.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from records import generate_records  # noqa: E402
from sha3 import keccak_256  # noqa: E402

from trace_sdk.protocol.canonical import canonicalize  # noqa: E402
from trace_sdk.protocol.hashing import (  # noqa: E402
    _raise_salt_mismatch,
    _salt_bytes,
    flatten_fields,
    hash_record,
    new_salts,
    salt_and_hash,
)
from trace_sdk.protocol.merkle import MerkleTree, verify_proof  # noqa: E402
from trace_sdk.protocol.records import prepare_records  # noqa: E402


def best_of(candidates: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Best process time (s) of each candidate over ``rounds`` interleaved rounds."""
    best = {name: float("inf") for name in candidates}
    for _ in range(rounds):
        for name, run in candidates.items():
            started = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - started)
    return best


# ---------------------------------------------------------------------------------------------------- before

def _old_preimage(salt: bytes, path: str, value: Any) -> bytes:
    from json.encoder import encode_basestring

    if type(value) is str:
        return salt + (path + "\x00" + encode_basestring(value)).encode()
    return salt + path.encode() + b"\x00" + canonicalize(value)


def old_hash_record(record: dict[str, Any], salts: dict[str, str]) -> bytes:
    """hash_record before: flatten, then per field decode the hex salt and hash."""
    fields = flatten_fields(record)
    if len(salts) != len(fields):
        _raise_salt_mismatch(fields, salts)
    hashes = {}
    for path, value in fields.items():
        salt = salts.get(path)
        if salt is None:
            _raise_salt_mismatch(fields, salts)
        hashes[path] = keccak_256(_old_preimage(_salt_bytes(salt, path), path, value)).digest()
    return keccak_256(b"".join(sorted(hashes.values()))).digest()


OLD_MARK_UPLOADED = "UPDATE records SET certificate_id = ? WHERE batch_id = ? AND record_id = ?"
NEW_MARK_UPLOADED = "UPDATE records SET certificate_id = ? WHERE agency = ? AND record_id = ? AND batch_id = ?"


# ---------------------------------------------------------------------------------------------------- pairs


def hashing(records: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    """hash_record and the client's salt-then-hash step, per record."""
    salts = [new_salts(flatten_fields(r)) for r in records]
    if any(old_hash_record(r, s) != hash_record(r, s).record_hash for r, s in zip(records, salts, strict=True)):
        raise AssertionError("the new hash_record disagrees with the old one")
    best = best_of({
        "hash_record before": lambda: [old_hash_record(r, s) for r, s in zip(records, salts, strict=True)],
        "hash_record after": lambda: [hash_record(r, s) for r, s in zip(records, salts, strict=True)],
        "salt+hash before (new_salts + hash_record)": lambda: [
            old_hash_record(r, new_salts(flatten_fields(r))) for r in records
        ],
        "salt+hash after (salt_and_hash)": lambda: [salt_and_hash(r) for r in records],
    }, rounds)
    return {k: v / len(records) * 1e6 for k, v in best.items()} | {"unit": "us per record"}


def mark_uploaded(count: int) -> dict[str, Any]:
    """Storing certificate ids of one uploaded batch in the outbox (old: a batch scan per record)."""
    out: dict[str, Any] = {"unit": f"ms per batch of {count:,}"}
    for label, sql, args in (
        ("before", OLD_MARK_UPLOADED, lambda rid: ("C" + rid, 1, rid)),
        ("after", NEW_MARK_UPLOADED, lambda rid: ("C" + rid, "A", rid, 1)),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            from trace_sdk.client.outbox import Outbox

            outbox = Outbox(Path(tmp) / "o.sqlite3")
            rows = [(f"r{i}", "c", "{}", "{}", "0x" + os.urandom(32).hex()) for i in range(count)]
            outbox.seal_batch(agency="A", root="0x" + "11" * 32, rows=rows)
            outbox.close()
            db = sqlite3.connect(Path(tmp) / "o.sqlite3")
            started = time.perf_counter()
            with db:
                db.executemany(sql, [args(f"r{i}") for i in range(count)])
            out[label] = (time.perf_counter() - started) * 1000
            db.close()
    return out


def proofs(rounds: int) -> dict[str, Any]:
    """Checking the Merkle proofs of a 1,000-item upload of a 10,000-record batch."""
    import certificate_service.services.ingestion as ingestion

    leaves = [os.urandom(32) for _ in range(10_000)]
    tree = MerkleTree(leaves)
    root, all_proofs = tree.root, tree.proofs()
    chunk = range(3_000, 4_000)

    def memo() -> None:
        cache: dict[bytes, bytes] = {}
        for i in chunk:
            assert ingestion._proof_leads_to_root(leaves[i], all_proofs[i], root, cache)

    best = best_of({
        "verify_proof per item (before)": lambda: [verify_proof(leaves[i], all_proofs[i], root) for i in chunk],
        "shared inner nodes (after)": memo,
    }, rounds)
    return {k: v / len(chunk) * 1e6 for k, v in best.items()} | {"unit": "us per item"}


def ingestion_db(rounds: int) -> dict[str, Any]:
    """The database part of ingesting 1,000 checked records: ORM objects (before) vs bulk INSERTs (after)."""
    from sqlalchemy.orm import Session

    from certificate_service.db import create_db_engine
    from certificate_service.migrations import upgrade_database
    from certificate_service.repositories import certificates as certificate_repo
    from certificate_service.repositories import records as record_repo
    from trace_sdk.protocol.certificate_ids import certificate_id_for
    from trace_sdk.protocol.hashing import trace_code_hash

    agency = "0x" + "ab" * 20

    def rows(count: int) -> list[dict[str, Any]]:
        out = []
        for record in generate_records(count):
            salts, hashed = salt_and_hash(record)
            out.append({
                "record_hash": "0x" + hashed.record_hash.hex(), "agency_address": agency,
                "record_id": record["record_id"], "record": json.loads(canonicalize(record)), "salts": salts,
                "content_sha256": "0" * 64, "trace_code": record["trace_code"],
                "trace_code_hash": "0x" + trace_code_hash(record["trace_code"]).hex(),
                "enterprise_uscc": record["enterprise"]["uscc"],
                "event_time": __import__("datetime").datetime.fromisoformat(record["event_time"]),
                "root": "0x" + "22" * 32, "leaf_index": 0, "proof": ["0x" + "33" * 32] * 10,
            })
        return out

    def links(row: dict[str, Any]) -> list[tuple[str, str]]:
        record = row["record"]
        return [(c, record["trace_code"]) for c in record.get("inputs", [])] + [
            (record["trace_code"], c) for c in record.get("outputs", [])
        ]

    def orm(session: Session, batch: list[dict[str, Any]]) -> None:
        for row in batch:
            record_repo.add_record(session=session, **row)
            if links(row):
                record_repo.add_lot_links(session=session, record_hash=row["record_hash"], links=links(row))
            certificate_repo.add_certificate(
                session=session, certificate_id=certificate_id_for(bytes.fromhex(row["record_hash"][2:])),
                record_hash=row["record_hash"],
            )
        session.commit()

    def bulk(session: Session, batch: list[dict[str, Any]]) -> None:
        record_repo.bulk_add_records(session=session, rows=batch)
        record_repo.bulk_add_lot_links(
            session=session, links=[(a, b, row["record_hash"]) for row in batch for a, b in links(row)]
        )
        certificate_repo.bulk_add_certificates(session=session, certificates=[
            (certificate_id_for(bytes.fromhex(row["record_hash"][2:])), row["record_hash"]) for row in batch
        ])
        session.commit()

    best = {"ORM objects (before)": float("inf"), "bulk executemany (after)": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(f"sqlite:///{tmp}/s.db")
        upgrade_database(engine)
        for _ in range(rounds):
            for label, insert in (("ORM objects (before)", orm), ("bulk executemany (after)", bulk)):
                batch = rows(1_000)
                with Session(engine, expire_on_commit=False) as session:
                    started = time.process_time()
                    insert(session, batch)
                    best[label] = min(best[label], time.process_time() - started)
        engine.dispose()
    return {k: v / 1_000 * 1e6 for k, v in best.items()} | {"unit": "us per record (CPU)"}


def preparing(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Validate + canonicalise + salt + hash of a 20,000-record submission: in-process vs forked workers."""
    import trace_sdk.client.agency as agency

    started = time.perf_counter()
    prepare_records(records)
    single = time.perf_counter() - started
    started = time.perf_counter()
    pooled = agency._prepare_in_workers(records)
    workers = time.perf_counter() - started
    return {
        "in-process (before)": single * 1e6 / len(records),
        "forked workers (after)": workers * 1e6 / len(records) if pooled is not None else None,
        "unit": "us per record (wall clock)",
    }


def main() -> None:
    """Run every pair and print them."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    records = generate_records(3_000, "MICRO")
    results = {
        "hashing": hashing(records, args.rounds),
        "outbox_mark_uploaded": mark_uploaded(10_000),
        "ingestion_proofs": proofs(args.rounds),
        "ingestion_db": ingestion_db(max(2, args.rounds // 2)),
        "client_prepare": preparing(generate_records(20_000, "MICROP")),
        "load_average": os.getloadavg(),
    }
    for name, figures in results.items():
        print(name)
        if isinstance(figures, dict):
            unit = figures.get("unit", "")
            for label, value in figures.items():
                if label != "unit":
                    print(f"  {label:<45} {value:>10.1f} {unit}" if value is not None else f"  {label}: n/a")
        else:
            print(f"  {figures}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
