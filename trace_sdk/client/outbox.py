"""The agency's durable outbox: every accepted record is on disk before anything reaches the chain or the service.

A batch moves through four states, each written before the step it guards:

``sealed``   records, salts and the Merkle root are stored (nothing sent yet);
``signed``   the anchoring transaction is signed and stored (raw bytes, nonce) before it is broadcast;
``anchored`` the chain shows the root anchored by this agency (block number known);
``uploaded`` the certificate service accepted every record (certificate ids stored).

The chain's duplicate-root rule makes re-sending an anchoring transaction harmless, and the service's
ingestion is idempotent, so resuming from any state can neither lose nor duplicate a record.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BatchRow", "Outbox", "OutboxRecord", "PendingBatch"]

SEALED, SIGNED, ANCHORED, UPLOADED = "sealed", "signed", "anchored", "uploaded"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agency TEXT NOT NULL,
    root TEXT NOT NULL UNIQUE,
    record_count INTEGER NOT NULL,
    state TEXT NOT NULL,
    nonce INTEGER,
    tx_hash TEXT,
    raw_tx BLOB,
    gas_price INTEGER,
    block_number INTEGER,
    gas_used INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_state ON batches (agency, state);
CREATE TABLE IF NOT EXISTS records (
    agency TEXT NOT NULL,
    record_id TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    canonical TEXT NOT NULL,
    salts TEXT NOT NULL,
    record_hash TEXT NOT NULL,
    batch_id INTEGER NOT NULL REFERENCES batches (id),
    leaf_index INTEGER NOT NULL,
    certificate_id TEXT,
    PRIMARY KEY (agency, record_id)
);
CREATE INDEX IF NOT EXISTS records_batch ON records (batch_id, leaf_index);
CREATE TABLE IF NOT EXISTS chain_info (
    service_url TEXT PRIMARY KEY,
    document TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxRecord:
    """A record as kept in the outbox."""

    record_id: str
    content_sha256: str
    canonical: str
    salts: dict[str, str]
    record_hash: str
    batch_id: int
    leaf_index: int
    certificate_id: str | None


@dataclass(frozen=True)
class BatchRow:
    """A batch as kept in the outbox."""

    id: int
    agency: str
    root: str
    record_count: int
    state: str
    nonce: int | None
    tx_hash: str | None
    raw_tx: bytes | None
    gas_price: int | None
    block_number: int | None
    gas_used: int | None
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class PendingBatch:
    """What `.pending()` shows: a batch not yet fully delivered."""

    root: str
    state: str
    records: int
    tx_hash: str | None
    attempts: int
    last_error: str | None


class Outbox:
    """A SQLite outbox (WAL, synchronous=FULL) shared by every AgencyClient using the same file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- chain discovery cache -------------------------------------------------------------------
    def cached_chain_info(self, service_url: str) -> dict[str, object] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT document FROM chain_info WHERE service_url = ?", (service_url,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def cache_chain_info(self, service_url: str, document: dict[str, object]) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO chain_info (service_url, document) VALUES (?, ?) "
                "ON CONFLICT (service_url) DO UPDATE SET document = excluded.document",
                (service_url, json.dumps(document)),
            )

    # -- records -----------------------------------------------------------------------------------
    def known_records(self, agency: str, record_ids: Iterable[str]) -> dict[str, tuple[str, int]]:
        """``record_id -> (content_sha256, batch_id)`` for ids this agency already put in the outbox."""
        ids = list(dict.fromkeys(record_ids))
        found: dict[str, tuple[str, int]] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for record_id, content, batch_id in self._db.execute(
                    f"SELECT record_id, content_sha256, batch_id FROM records "
                    f"WHERE agency = ? AND record_id IN ({marks})",
                    (agency, *chunk),
                ):
                    found[record_id] = (content, batch_id)
        return found

    def seal_batch(
        self,
        *,
        agency: str,
        root: str,
        rows: list[tuple[str, str, str, str, str]],
    ) -> int:
        """Store a sealed batch with its ``(record_id, content_sha256, canonical, salts_json, record_hash)`` rows."""
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO batches (agency, root, record_count, state, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (agency, root, len(rows), SEALED, now, now),
            )
            batch_id = int(cursor.lastrowid or 0)
            db.executemany(
                "INSERT INTO records (agency, record_id, content_sha256, canonical, salts, record_hash, "
                "batch_id, leaf_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (agency, record_id, content, canonical, salts, record_hash, batch_id, index)
                    for index, (record_id, content, canonical, salts, record_hash) in enumerate(rows)
                ],
            )
        return batch_id

    def batch_records(self, batch_id: int) -> list[OutboxRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT record_id, content_sha256, canonical, salts, record_hash, batch_id, leaf_index, "
                "certificate_id FROM records WHERE batch_id = ? ORDER BY leaf_index",
                (batch_id,),
            ).fetchall()
        return [
            OutboxRecord(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7]) for r in rows
        ]

    def batch_uploads(self, batch_id: int) -> list[tuple[str, str, str, int]]:
        """``(record_id, canonical JSON, salts JSON, leaf_index)`` of a batch's records in leaf order, as stored
        (what an upload sends; nothing parsed)."""
        with self._lock:
            return self._db.execute(
                "SELECT record_id, canonical, salts, leaf_index FROM records WHERE batch_id = ? ORDER BY leaf_index",
                (batch_id,),
            ).fetchall()

    def batch_record_ids(self, batch_id: int) -> list[str]:
        """The record_ids of a batch, in leaf order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT record_id FROM records WHERE batch_id = ? ORDER BY leaf_index", (batch_id,)
            ).fetchall()
        return [r[0] for r in rows]

    def delivery_info(self, agency: str, record_ids: Iterable[str]) -> dict[str, tuple[str, int, str | None]]:
        """``record_id -> (record_hash, batch_id, certificate_id)`` for this agency's records among ``record_ids``."""
        ids = list(dict.fromkeys(record_ids))
        found: dict[str, tuple[str, int, str | None]] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for record_id, record_hash, batch_id, certificate_id in self._db.execute(
                    f"SELECT record_id, record_hash, batch_id, certificate_id FROM records "
                    f"WHERE agency = ? AND record_id IN ({marks})",
                    (agency, *chunk),
                ):
                    found[record_id] = (record_hash, batch_id, certificate_id)
        return found

    def record(self, agency: str, record_id: str) -> OutboxRecord | None:
        with self._lock:
            r = self._db.execute(
                "SELECT record_id, content_sha256, canonical, salts, record_hash, batch_id, leaf_index, "
                "certificate_id FROM records WHERE agency = ? AND record_id = ?",
                (agency, record_id),
            ).fetchone()
        return OutboxRecord(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7]) if r else None

    # -- batches -----------------------------------------------------------------------------------
    def batch(self, batch_id: int) -> BatchRow:
        with self._lock:
            row = self._db.execute(
                "SELECT id, agency, root, record_count, state, nonce, tx_hash, raw_tx, gas_price, block_number, "
                "gas_used, attempts, last_error FROM batches WHERE id = ?",
                (batch_id,),
            ).fetchone()
        if row is None:
            raise KeyError(batch_id)
        return BatchRow(*row)

    def batch_by_root(self, root: str) -> BatchRow | None:
        with self._lock:
            row = self._db.execute("SELECT id FROM batches WHERE root = ?", (root,)).fetchone()
        return self.batch(row[0]) if row else None

    def undelivered_batches(self, agency: str) -> list[BatchRow]:
        """Batches of this agency not yet uploaded, oldest first (the order they must be resumed in)."""
        with self._lock:
            ids = [
                r[0]
                for r in self._db.execute(
                    "SELECT id FROM batches WHERE agency = ? AND state != ? ORDER BY id", (agency, UPLOADED)
                )
            ]
        return [self.batch(batch_id) for batch_id in ids]

    def pending(self, agency: str) -> list[PendingBatch]:
        return [
            PendingBatch(b.root, b.state, b.record_count, b.tx_hash, b.attempts, b.last_error)
            for b in self.undelivered_batches(agency)
        ]

    def mark_signed(self, batch_id: int, *, nonce: int, tx_hash: str, raw_tx: bytes, gas_price: int) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE batches SET state = ?, nonce = ?, tx_hash = ?, raw_tx = ?, gas_price = ?, "
                "attempts = attempts + 1, updated_at = ? WHERE id = ? AND state IN (?, ?)",
                (SIGNED, nonce, tx_hash, raw_tx, gas_price, time.time(), batch_id, SEALED, SIGNED),
            )

    def mark_anchored(self, batch_id: int, *, block_number: int, tx_hash: str | None, gas_used: int | None) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE batches SET state = ?, block_number = ?, tx_hash = COALESCE(?, tx_hash), "
                "gas_used = COALESCE(?, gas_used), raw_tx = NULL, last_error = NULL, updated_at = ? "
                "WHERE id = ? AND state IN (?, ?)",
                (ANCHORED, block_number, tx_hash, gas_used, time.time(), batch_id, SEALED, SIGNED),
            )

    def mark_uploaded(self, batch_id: int, certificate_ids: dict[str, str]) -> None:
        with self._transaction() as db:
            row = db.execute("SELECT agency FROM batches WHERE id = ?", (batch_id,)).fetchone()
            # By primary key (agency, record_id): a lookup per record, not a scan of the batch per record.
            db.executemany(
                "UPDATE records SET certificate_id = ? WHERE agency = ? AND record_id = ? AND batch_id = ?",
                [(cid, row[0] if row else None, rid, batch_id) for rid, cid in certificate_ids.items()],
            )
            db.execute(
                "UPDATE batches SET state = ?, last_error = NULL, updated_at = ? WHERE id = ?",
                (UPLOADED, time.time(), batch_id),
            )

    def note_error(self, batch_id: int, message: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE batches SET last_error = ?, updated_at = ? WHERE id = ?",
                (message[:2000], time.time(), batch_id),
            )

    def counts(self, agency: str) -> dict[str, int]:
        """Records per batch state for this agency (for `tracechain outbox status`)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT b.state, COUNT(r.record_id) FROM batches b JOIN records r ON r.batch_id = b.id "
                "WHERE b.agency = ? GROUP BY b.state",
                (agency,),
            ).fetchall()
        counts = {SEALED: 0, SIGNED: 0, ANCHORED: 0, UPLOADED: 0}
        counts.update({state: n for state, n in rows})
        return counts
