"""Before/after micro-benchmarks of the speed-ups in bench/README.md ("what we found and changed").

    .venv/bin/python bench/micro.py [--out bench/out/micro.json] [--only protocol_work,service_upload,...]

Each pair runs the code as it was before (kept here, verbatim in substance, as the reference) and the code as
it is now, interleaved and repeated, and reports the best CPU time (`time.process_time`) per unit: the
machine is shared, so the minimum of several runs is the least disturbed figure. No chain or service needed.
The per-record pairs of the protocol work (issue #7: `protocol_work`, `upload_body`, `service_upload`) read
the "before" modules from git (commit `BEFORE`, `git show`) and assert that both give the same results.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from records import generate_records  # noqa: E402
from sha3 import keccak_256  # noqa: E402

from trace_sdk.protocol.canonical import _canonicalize_reference, canonicalize  # noqa: E402
from trace_sdk.protocol.hashing import (  # noqa: E402
    _raise_salt_mismatch,
    _salt_bytes,
    flatten_fields,
    hash_record,
    new_salts,
    salt_and_hash,
)
from trace_sdk.protocol.merkle import MerkleTree, verify_proof  # noqa: E402
from trace_sdk.protocol.records import prepare_records, validate_record  # noqa: E402


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


# ---------------------------------------------------------------------------------------------------- issue #7
# The protocol work per record on both sides: orjson where its bytes are provably the same (canonical form
# fast path, upload body, answer), and less repeated work (canonical size reused by the validator, cached
# check characters and dates, no parse-and-rewrite of the outbox JSON).

BEFORE = "31ddc5453743eaa7b95fff20f89a7a7c552a9fbe"
"""The last commit before these changes: the "before" side of the issue #7 pairs."""
REPO_DIR = BENCH_DIR.parent


def _before(path: str, **swap: Any) -> types.ModuleType | None:
    """The module at ``path`` as it was at `BEFORE` (`git show`), with the globals in ``swap`` replaced; None
    when the git history is not at hand."""
    try:
        source = subprocess.run(
            ["git", "show", f"{BEFORE}:{path}"], cwd=REPO_DIR, check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    name = "before_" + path.removesuffix(".py").replace("/", "_")
    module = types.ModuleType(name)
    module.__file__ = str(REPO_DIR / path)
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    module.__dict__.update(swap)
    return module


def _invalid_variants(records: list[dict[str, Any]]) -> list[Any]:
    """Records that break one rule or another (and one that is not a record), for the equality checks."""
    out: list[Any] = [None, "text"]
    for i, change in enumerate([
        lambda r: r.update(record_id=""),
        lambda r: r.update(event_time="2026-03-01T08:30:00"),
        lambda r: r["product"].update(quantity=-1),
        lambda r: r["product"].update(gtin="6901234567890"),
        lambda r: r["enterprise"].update(uscc="91310115735468487A"),
        lambda r: r.update(extensions={"Bad-Key": 1, "ok": float("nan")}),
        lambda r: r.update(outputs=[f"DEMOW{j:06d}{'x' * 100}" for j in range(150)]),
        lambda r: r.update(unknown=1),
    ]):
        record = copy.deepcopy(records[i])
        change(record)
        out.append(record)
    return out


def _same_json(a: Any, b: Any) -> bool:
    """Equal with the same types and key order all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def protocol_work(records: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    """Canonical form, validation and the client's `prepare_records` (validate + canonical + salt + hash)."""
    old = _before("trace_sdk/protocol/records.py", canonicalize=_canonicalize_reference)
    if [canonicalize(r) for r in records] != [_canonicalize_reference(r) for r in records]:
        raise AssertionError("the orjson fast path disagrees with the reference canonical form")
    sizes = [len(canonicalize(r)) for r in records]
    candidates: dict[str, Callable[[], Any]] = {
        "canonical form: reference (before)": lambda: [_canonicalize_reference(r) for r in records],
        "canonical form: orjson fast path (after)": lambda: [canonicalize(r) for r in records],
        "validate_record (after)": lambda: [validate_record(r) for r in records],
        "validate_record, canonical size known (after)": lambda: [
            validate_record(r, canonical_size=n) for r, n in zip(records, sizes, strict=True)
        ],
        "prepare_records (after)": lambda: prepare_records(records),
    }
    if old is not None:
        for record in [*records[:200], *_invalid_variants(records)]:
            try:
                size: int | None = len(canonicalize(record))
            except ValueError:  # CanonicalizationError: the validator measures itself
                size = None
            for known in (None, size):
                if old.validate_record(record, 3) != validate_record(record, 3, canonical_size=known):
                    raise AssertionError(f"the validators disagree on {str(record)[:80]}")
        before, after = old.prepare_records(records[:300]), prepare_records(records[:300])
        for b, a in zip(before, after, strict=True):
            if (b.index, b.errors, b.canonical, b.content_sha256) != (a.index, a.errors, a.canonical, a.content_sha256):
                raise AssertionError(f"prepare_records disagrees on record {a.index}")
            record = records[a.index]
            for p in (b, a):  # fresh salts on both sides: each hash must be the record's under its own salts
                assert p.salts_json is not None and p.record_hash is not None
                if hash_record(record, json.loads(p.salts_json)).record_hash != p.record_hash:
                    raise AssertionError(f"prepared hash of record {a.index} does not match its salts")
            assert a.salts_json == json.dumps(json.loads(a.salts_json), separators=(",", ":"))
        candidates["validate_record (before)"] = lambda: [old.validate_record(r) for r in records]
        candidates["prepare_records (before)"] = lambda: old.prepare_records(records)
    best = best_of(dict(sorted(candidates.items())), rounds)
    return {k: v / len(records) * 1e6 for k, v in best.items()} | {"unit": "us per record"}


def _upload_rows(records: list[dict[str, Any]]) -> tuple[Any, int, Any, list[list[bytes]], str]:
    """An outbox holding one sealed batch of ``records`` (the client's state before its upload)."""
    from trace_sdk.client.outbox import Outbox
    from trace_sdk.protocol.hashing import leaf_hash, to_hex

    tmp = tempfile.mkdtemp(prefix="micro-outbox-")
    outbox = Outbox(Path(tmp) / "o.sqlite3")
    prepared = prepare_records(records)
    rows = [
        (records[p.index]["record_id"], p.content_sha256, p.canonical.decode(), p.salts_json, to_hex(p.record_hash))
        for p in prepared
        if p.canonical is not None and p.content_sha256 and p.salts_json and p.record_hash
    ]
    tree = MerkleTree([leaf_hash(p.record_hash) for p in prepared if p.record_hash is not None])
    root = "0x" + tree.root.hex()
    batch_id = outbox.seal_batch(agency="A", root=root, rows=rows)
    return outbox, batch_id, tree, tree.proofs(), root


def upload_body(records: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    """The client's body for a 1,000-record upload, from the outbox rows (before: parse the canonical and
    salts JSON of each record, write the whole payload with json.dumps; after: splice them in with orjson)."""
    from trace_sdk.client.agency import _upload_body

    chunk = records[:1_000]
    outbox, batch_id, _tree, proofs, root = _upload_rows(chunk)

    def before() -> bytes:  # AgencyClient._upload + ServiceClient._request as they were
        hexed: dict[bytes, str] = {}
        payload = {
            "root": root,
            "records": [
                {
                    "record": json.loads(r.canonical),
                    "salts": r.salts,
                    "leaf_index": r.leaf_index,
                    "proof": [hexed.get(p) or hexed.setdefault(p, "0x" + p.hex()) for p in proofs[r.leaf_index]],
                }
                for r in outbox.batch_records(batch_id)
            ],
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    def after() -> bytes:
        return _upload_body(root, outbox.batch_uploads(batch_id), proofs=proofs, hexed={})

    if not _same_json(json.loads(before()), json.loads(after())):
        raise AssertionError("the spliced upload body does not read as the payload it replaces")
    best = best_of({"parse + json.dumps (before)": before, "outbox JSON spliced, orjson (after)": after}, rounds)
    outbox.close()
    return {k: v / len(chunk) * 1e6 for k, v in best.items()} | {"unit": "us per record"}


def service_upload(records: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    """The service's CPU per item of a 1,000-item upload: body parse, the item checks (validation, canonical
    form, salted hashes, proofs; in-process) and the answer."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    import certificate_service.services.ingestion as ingestion
    from certificate_service.api.routes.ingest import _json_response, parse_json_body
    from trace_sdk.client.agency import _upload_body
    from trace_sdk.protocol.certificate_ids import certificate_id_for

    chunk = records[:1_000]
    outbox, batch_id, tree, proofs, root = _upload_rows(chunk)
    body = _upload_body(root, outbox.batch_uploads(batch_id), proofs=proofs, hexed={})
    outbox.close()
    items = json.loads(body)["records"]
    if not _same_json(parse_json_body(body), json.loads(body)):
        raise AssertionError("parse_json_body disagrees with json.loads")
    checked = ingestion._check_items(items, tree.root, len(chunk))
    result = ingestion.IngestResult(root, len(chunk), 0, [
        {"record_id": item["record"]["record_id"], "record_hash": "0x" + record_hash.hex(),
         "certificate_id": certificate_id_for(record_hash)}
        for item, (_problems, record_hash, _content) in zip(items, checked, strict=True)
    ])
    candidates: dict[str, Callable[[], Any]] = {
        "body: json.loads (before)": lambda: json.loads(body),
        "body: orjson, checked (after)": lambda: parse_json_body(body),
        "item checks (after)": lambda: ingestion._check_items(items, tree.root, len(chunk)),
        "answer: jsonable_encoder + JSONResponse (before)": lambda: JSONResponse(jsonable_encoder(result.as_json())),
        "answer: orjson Response (after)": lambda: _json_response(result),
    }
    if JSONResponse(jsonable_encoder(result.as_json())).body != _json_response(result).body:
        raise AssertionError("the answers differ")
    old_records = _before("trace_sdk/protocol/records.py", canonicalize=_canonicalize_reference)
    old = _before(
        "certificate_service/services/ingestion.py",
        canonicalize=_canonicalize_reference,
        validate_record=old_records.validate_record if old_records else None,
    )
    if old is not None:
        bad = copy.deepcopy(items[:40])
        bad[0]["record"]["product"]["lot"] = "CHANGED"
        bad[1]["salts"] = {}
        bad[2]["proof"] = bad[3]["proof"]
        bad[4]["record"]["event_time"] = "yesterday"
        bad[5]["leaf_index"] = -1
        for sample in (items, bad):
            if old._check_items(sample, tree.root, len(chunk)) != ingestion._check_items(sample, tree.root, len(chunk)):
                raise AssertionError("the item checks disagree")
        candidates["item checks (before)"] = lambda: old._check_items(items, tree.root, len(chunk))
    best = best_of(dict(sorted(candidates.items())), rounds)
    return {k: v / len(chunk) * 1e6 for k, v in best.items()} | {"unit": "us per item"}


def main() -> None:
    """Run every pair and print them."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", default="", help="comma-separated pair names (default: all)")
    args = parser.parse_args()
    records = generate_records(3_000, "MICRO")
    pairs: dict[str, Callable[[], Any]] = {
        "hashing": lambda: hashing(records, args.rounds),
        "outbox_mark_uploaded": lambda: mark_uploaded(10_000),
        "ingestion_proofs": lambda: proofs(args.rounds),
        "ingestion_db": lambda: ingestion_db(max(2, args.rounds // 2)),
        "client_prepare": lambda: preparing(generate_records(20_000, "MICROP")),
        "protocol_work": lambda: protocol_work(records, args.rounds),
        "upload_body": lambda: upload_body(records, args.rounds),
        "service_upload": lambda: service_upload(records, args.rounds),
    }
    only = [name for name in args.only.split(",") if name]
    unknown = set(only) - set(pairs)
    if unknown:
        parser.error(f"unknown pair(s): {sorted(unknown)}; choose from {sorted(pairs)}")
    results: dict[str, Any] = {name: run() for name, run in pairs.items() if not only or name in only}
    results["load_average"] = os.getloadavg()
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
