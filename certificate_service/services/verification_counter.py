"""The anti-counterfeit counter (查验次数): counted in memory on the request path, written in batches.

Every public verification of a certificate adds one to its ``verification_count`` and sets
``first_verified_at`` once. Doing that as one write transaction per request serialised all verifications on
the database's writer; here a request only adds to this process's pending increments and reads
``stored + in flight + pending``, and a background thread writes the pending increments of every
certificate in one transaction every :attr:`VerificationCounter.flush_interval_s` (and when the service
stops), then reads the stored counts back, which also brings in what other worker processes counted.

So within one process the counts a consumer sees are exact and increasing; with several workers, each
worker's count lags the others' by at most one flush interval. A failed write keeps the increments pending
for the next flush; only a hard kill of the process loses what it counted since its last flush.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from certificate_service.db import begin_write
from certificate_service.repositories import certificates as certificate_repo

__all__ = ["DEFAULT_FLUSH_INTERVAL_S", "VerificationCounter"]

DEFAULT_FLUSH_INTERVAL_S = 1.0
"""How often counted verifications are written to the database."""
MAX_LOADED = 200_000
"""Stored counts kept in memory; beyond this the loaded ones are dropped (and read again when needed)."""

log = logging.getLogger(__name__)


class VerificationCounter:
    """The verification counters of one service process (thread-safe)."""

    def __init__(self, sessions: sessionmaker[Session], *, flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S) -> None:
        """Counters over the database of ``sessions``; nothing is loaded until a certificate is counted."""
        self.sessions = sessions
        self.flush_interval_s = flush_interval_s
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._stored: dict[str, tuple[int, datetime | None]] = {}  # as last read from the database
        self._in_flight: dict[str, tuple[int, datetime]] = {}  # being written by the running flush
        self._pending: dict[str, tuple[int, datetime]] = {}  # counted since the last flush started
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def count(self, certificate_id: str, at: datetime) -> tuple[int, datetime] | None:
        """Count one verification: the count (this one included) and the first time; None if not loaded."""
        with self._lock:
            stored = self._stored.get(certificate_id)
            if stored is None:
                return None
            flying, flying_first = self._in_flight.get(certificate_id, (0, at))
            pending, pending_first = self._pending.get(certificate_id, (0, at))
            self._pending[certificate_id] = (pending + 1, pending_first)
            return stored[0] + flying + pending + 1, stored[1] or min(flying_first, pending_first)

    def load_and_count(self, session: Session, certificate_id: str, at: datetime) -> tuple[int, datetime] | None:
        """:meth:`count`, reading the stored count first if needed; None if there is no such certificate."""
        while (counted := self.count(certificate_id, at)) is None:
            found = certificate_repo.verification_counts(session=session, certificate_ids=[certificate_id])
            if certificate_id not in found:
                return None
            with self._lock:
                self._stored.setdefault(certificate_id, found[certificate_id])
        return counted

    def flush(self) -> int:
        """Write the pending increments in one transaction and reload their stored counts; how many were written."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, {}
                self._in_flight = batch
            if not batch:
                return 0
            try:
                with self.sessions() as session:
                    begin_write(session)
                    rows = [(cid, n, first) for cid, (n, first) in batch.items()]
                    certificate_repo.add_verifications(session=session, counts=rows)
                    session.commit()
            except SQLAlchemyError:
                self._requeue(batch)
                log.exception("verification counts not written yet (%d certificates); retrying", len(batch))
                return 0
            try:
                with self.sessions() as session:
                    stored = certificate_repo.verification_counts(session=session, certificate_ids=list(batch))
            except SQLAlchemyError:
                log.exception("verification counts written but not read back; counting on from memory")
                stored = {cid: self._written(cid, n, first) for cid, (n, first) in batch.items()}
            with self._lock:
                if len(self._stored) > MAX_LOADED:
                    self._stored = {cid: value for cid, value in self._stored.items() if cid in self._pending}
                self._stored.update(stored)
                self._in_flight = {}
            return sum(n for n, _ in batch.values())

    def _requeue(self, batch: dict[str, tuple[int, datetime]]) -> None:
        """Put increments that were not written back in front of the pending ones."""
        with self._lock:
            for cid, (n, first) in batch.items():
                more, _ = self._pending.get(cid, (0, first))
                self._pending[cid] = (n + more, first)
            self._in_flight = {}

    def _written(self, certificate_id: str, n: int, first: datetime) -> tuple[int, datetime | None]:
        """The stored count of a certificate after ``n`` increments were written (without reading it back)."""
        stored, stored_first = self._stored.get(certificate_id, (0, None))
        return stored + n, stored_first or first

    def start(self) -> None:
        """Flush every :attr:`flush_interval_s` in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="verification-counter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()

    def stop(self) -> None:
        """Stop the flushing thread and write what is still pending."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()
