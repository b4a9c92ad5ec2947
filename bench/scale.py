"""A scale database: real records copied from the benchmark's service database plus synthetic ones.

Synthetic records are genuine, just not uploaded through the API: each is a valid record (a variant of the
sample set with its own record_id and trace code), salted afresh and hashed by the protocol code
(`salt_and_hash`), a leaf of a Merkle tree of 10,000 records whose root is really anchored on the benchmark
chain (one `anchorBatch` per chunk, by a demo agency), stored with its proof, content SHA-256, trace-code hash,
the lot links its ``inputs``/``outputs`` state and its certificate. So they verify ``valid``, exactly like
records that came through ingestion.

They are written with the ORM tables' ``__table__.insert()`` (compiled for SQLite) in executemany chunks of
10,000 records, one transaction per chunk, while the service is stopped. Two worker processes generate the
rows ahead of the writer, already processed the way the columns' SQLAlchemy types process them (JSON columns
through ``json.dumps``, timestamps as naive-UTC ``YYYY-MM-DD HH:MM:SS.ffffff`` text); `check_round_trip` reads
a row back through the ORM. The load connection runs with ``journal_mode=OFF, synchronous=OFF`` and a 1 GiB
page cache; the database is put back in WAL mode afterwards.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import sqlite3
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from records import iter_records
from sqlalchemy import insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session
from web3 import Web3

from certificate_service.db import create_db_engine
from certificate_service.db.models import Certificate, LotLink, Record
from trace_sdk.client.contracts import load_artifact
from trace_sdk.protocol.canonical import canonicalize
from trace_sdk.protocol.certificate_ids import certificate_id_for
from trace_sdk.protocol.hashing import flatten_fields, leaf_hash, salt_and_hash, trace_code_hash
from trace_sdk.protocol.merkle import MerkleTree

__all__ = ["RootAnchorer", "check_round_trip", "copy_real_records", "database_bytes", "insert_synthetic", "sample_ids"]

_Chunk = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def _compiled_insert(table: Any, columns: list[str] | None = None) -> tuple[str, tuple[str, ...]]:
    """``table.insert()`` compiled for SQLite (all columns but a surrogate ``id``, or ``columns``): its SQL
    and the order of its parameters."""
    keys = columns or [c.name for c in table.columns if c.name != "id"]
    compiled = insert(table).compile(dialect=sqlite.dialect(), column_keys=keys)
    return compiled.string, tuple(compiled.positiontup or ())


def _timestamp(moment: datetime) -> str:
    """A timestamp as `UTCDateTime` and SQLite's DATETIME store it (naive UTC, microseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def copy_real_records(source: Path, target: Path, certificate_ids: list[str]) -> int:
    """Copy the records, certificates and lot links of ``certificate_ids`` from ``source`` into ``target``."""
    connection = sqlite3.connect(target)
    try:
        connection.execute("ATTACH DATABASE ? AS src", (str(source),))
        connection.execute("CREATE TEMP TABLE wanted (certificate_id TEXT PRIMARY KEY)")
        connection.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(c,) for c in certificate_ids])
        hashes = "SELECT record_hash FROM src.certificates WHERE certificate_id IN (SELECT certificate_id FROM wanted)"
        connection.execute(f"INSERT INTO main.records SELECT * FROM src.records WHERE record_hash IN ({hashes})")
        connection.execute(
            "INSERT INTO main.certificates SELECT * FROM src.certificates "
            "WHERE certificate_id IN (SELECT certificate_id FROM wanted)"
        )
        connection.execute(
            "INSERT INTO main.lot_links (from_trace_code, to_trace_code, record_hash) "
            f"SELECT from_trace_code, to_trace_code, record_hash FROM src.lot_links WHERE record_hash IN ({hashes})"
        )
        copied = connection.execute("SELECT COUNT(*) FROM main.records").fetchone()[0]
        connection.commit()
    finally:
        connection.close()
    return int(copied)


def _synthetic_chunk(start: int, count: int, agency: str, run_tag: str) -> tuple[str, _Chunk]:
    """Records ``start .. start + count - 1`` hashed under one Merkle tree: its root and the parameter
    tuples of the three inserts."""
    record_columns = _compiled_insert(Record.__table__)[1]
    now = _timestamp(datetime.now(UTC))
    prepared = []
    for record in iter_records(count, run_tag, start=start):
        salts, hashed = salt_and_hash(record)
        prepared.append((record, salts, hashed.record_hash))
    tree = MerkleTree([leaf_hash(record_hash) for _, _, record_hash in prepared])
    root = "0x" + tree.root.hex()
    hexed: dict[bytes, str] = {}
    records, certificates, links = [], [], []
    for leaf_index, (record, salts, record_hash_bytes) in enumerate(prepared):
        record_hash = "0x" + record_hash_bytes.hex()
        trace_code = record["trace_code"]
        canonical = canonicalize(record)
        proof = [hexed.get(p) or hexed.setdefault(p, "0x" + p.hex()) for p in tree.proof(leaf_index)]
        row = {
            "record_hash": record_hash,
            "agency_address": agency,
            "record_id": record["record_id"],
            "root": root,
            "leaf_index": leaf_index,
            "proof": json.dumps(proof),
            "record": json.dumps(json.loads(canonical)),  # what ingestion stores of the uploaded record
            "salts": json.dumps(salts),
            "content_sha256": hashlib.sha256(canonical).hexdigest(),
            "trace_code": trace_code,
            "trace_code_hash": "0x" + trace_code_hash(trace_code).hex(),
            "enterprise_uscc": record["enterprise"]["uscc"],
            "event_time": _timestamp(datetime.fromisoformat(record["event_time"])),
            "ingested_at": now,
        }
        records.append(tuple(row[c] for c in record_columns))
        certificates.append((certificate_id_for(record_hash_bytes), record_hash, now, 0))
        links += [(code, trace_code, record_hash) for code in record.get("inputs", ())]
        links += [(trace_code, code, record_hash) for code in record.get("outputs", ())]
    return root, (records, certificates, links)


def _chunks_ahead(
    count: int, agency: str, run_tag: str, chunk: int, workers: int
) -> Iterator[tuple[str, _Chunk]]:
    """The chunks of ``count`` synthetic records, generated by ``workers`` processes a few chunks ahead."""
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        pending: deque[Future[tuple[str, _Chunk]]] = deque()
        for start in range(0, count, chunk):
            pending.append(pool.submit(_synthetic_chunk, start, min(chunk, count - start), agency, run_tag))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class RootAnchorer:
    """Anchors the synthetic batches' roots on chain as a member agency (sent back to back, awaited at the end)."""

    def __init__(self, rpc_url: str, private_key: str, anchor_address: str) -> None:
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
        self.account = self.w3.eth.account.from_key(private_key)
        self.contract = self.w3.eth.contract(
            address=Web3.to_checksum_address(anchor_address), abi=load_artifact("TraceAnchor")["abi"]
        )
        self.nonce = self.w3.eth.get_transaction_count(self.account.address, "pending")
        self.chain_id = self.w3.eth.chain_id
        self.sent: list[Any] = []
        self.anchored = 0

    @property
    def address(self) -> str:
        """The anchoring agency."""
        return str(self.account.address)

    def anchor(self, root: str, count: int) -> None:
        """Send ``anchorBatch(root, count, 1)``."""
        tx = self.contract.functions.anchorBatch(bytes.fromhex(root[2:]), count, 1).build_transaction({
            "from": self.account.address, "nonce": self.nonce, "gas": 150_000, "chainId": self.chain_id,
        })
        self.sent.append(self.w3.eth.send_raw_transaction(self.account.sign_transaction(tx).raw_transaction))
        self.nonce += 1
        self.anchored += 1

    def wait(self) -> None:
        """Wait for every anchoring transaction; raise if one failed."""
        for tx_hash in self.sent:
            if self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)["status"] != 1:
                raise RuntimeError(f"anchoring a synthetic batch failed ({tx_hash.hex()})")
        self.sent.clear()


def insert_synthetic(
    path: Path, count: int, anchorer: RootAnchorer, *, run_tag: str, chunk: int = 10_000,
    keep_every: int = 0, workers: int = 2,
) -> dict[str, Any]:
    """Insert ``count`` synthetic records (+ certificates, lot links) in batches of ``chunk`` whose roots
    ``anchorer`` anchors; every ``keep_every``-th certificate id is returned in ``kept``."""
    record_sql, _ = _compiled_insert(Record.__table__)
    certificate_keys = ["certificate_id", "record_hash", "issued_at", "verification_count"]
    certificate_sql, certificate_columns = _compiled_insert(Certificate.__table__, certificate_keys)
    link_sql, link_columns = _compiled_insert(LotLink.__table__)
    if list(certificate_columns) != certificate_keys or link_columns != ("from_trace_code", "to_trace_code",
                                                                          "record_hash"):
        raise RuntimeError(f"the certificates or lot_links columns changed: {certificate_columns} {link_columns}")
    kept: list[str] = []
    started = time.perf_counter()
    done = 0
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1048576", "temp_store=MEMORY"):
            connection.execute(f"PRAGMA {pragma}")
        for root, (records, certificates, links) in _chunks_ahead(count, anchorer.address, run_tag, chunk, workers):
            anchorer.anchor(root, len(records))
            connection.execute("BEGIN")
            connection.executemany(record_sql, records)
            connection.executemany(certificate_sql, certificates)
            connection.executemany(link_sql, links)
            connection.execute("COMMIT")
            if keep_every:
                kept += [c[0] for i, c in enumerate(certificates, start=done) if i % keep_every == 0]
            done += len(records)
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()
    # Written with synchronous=OFF: flush it now, or the service's first WAL checkpoint (which fsyncs the
    # database) would write back gigabytes of dirty pages in the middle of a measurement.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    anchorer.wait()
    seconds = time.perf_counter() - started
    return {"inserted": done, "seconds": seconds, "rows_per_s": done / seconds if seconds else 0.0, "kept": kept}


def check_round_trip(path: Path, certificate_id: str) -> bool:
    """Whether a synthetic row reads back through the ORM as a well-formed record (types, JSON, timestamps)."""
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        with Session(engine) as session:
            certificate = session.get(Certificate, certificate_id)
            if certificate is None:
                return False
            record = session.scalars(select(Record).where(Record.record_hash == certificate.record_hash)).one()
            return (
                set(record.salts) == set(flatten_fields(record.record))
                and record.event_time == datetime.fromisoformat(record.record["event_time"])
                and record.trace_code == record.record["trace_code"]
                and bool(record.proof)
                and certificate.issued_at.tzinfo is not None
            )
    finally:
        engine.dispose()


def database_bytes(path: Path) -> dict[str, int]:
    """Size of the database (checkpointed, free pages excluded) and its record count."""
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        free = connection.execute("PRAGMA freelist_count").fetchone()[0]
        records = connection.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    return {"bytes": int(page_size * (pages - free)), "records": int(records)}


def sample_ids(path: Path, count: int, *, exclude: set[str] | None = None) -> list[str]:
    """``count`` certificate ids spread evenly over the certificates table (rowid order)."""
    with closing(sqlite3.connect(path)) as connection:
        total = connection.execute("SELECT MAX(rowid) FROM certificates").fetchone()[0] or 0
        step = max(1, total // max(1, count))
        rows = connection.execute(
            "SELECT certificate_id FROM certificates WHERE rowid % ? = 0 LIMIT ?", (step, count * 2)
        ).fetchall()
    ids = [r[0] for r in rows if not exclude or r[0] not in exclude]
    return ids[:count]
