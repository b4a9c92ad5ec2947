"""Anchored batches, revocations and recalls (written by the indexer only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from certificate_service.db.models import Batch, LotLink, Recall, Revocation
from certificate_service.repositories._common import normalize_address, normalize_hash32

__all__ = [
    "add_batch",
    "add_recall",
    "add_revocation",
    "count_batches",
    "count_recalls",
    "count_revocations",
    "get_batch",
    "get_recall",
    "get_revocation",
    "list_batches",
    "list_recalls",
    "list_revocations",
    "table_versions",
]


def add_batch(
    *,
    session: Session,
    root: str,
    agency_address: str,
    block_number: int,
    block_time: datetime,
    tx_hash: str,
    count: int,
    schema_version: int,
) -> Batch:
    """Insert an anchored batch."""
    batch = Batch(
        root=normalize_hash32(root),
        agency_address=normalize_address(agency_address),
        block_number=block_number,
        block_time=block_time,
        tx_hash=tx_hash,
        count=count,
        schema_version=schema_version,
    )
    session.add(batch)
    return batch


def get_batch(*, session: Session, root: str) -> Batch | None:
    """The anchored batch with ``root``."""
    return session.get(Batch, normalize_hash32(root))


def list_batches(
    *, session: Session, agency_address: str | None = None, limit: int = 100, offset: int = 0
) -> Sequence[Batch]:
    """Batches, newest first, optionally of one agency."""
    query = select(Batch).order_by(Batch.block_number.desc(), Batch.root)
    if agency_address is not None:
        query = query.where(Batch.agency_address == normalize_address(agency_address))
    return session.scalars(query.limit(limit).offset(offset)).all()


def count_batches(*, session: Session) -> int:
    """The number of anchored batches."""
    return int(session.scalar(select(func.count()).select_from(Batch)) or 0)


def add_revocation(
    *,
    session: Session,
    record_hash: str,
    root: str,
    reason: str,
    revoked_by: str,
    block_number: int,
    block_time: datetime,
    tx_hash: str,
) -> Revocation:
    """Insert a record revocation."""
    revocation = Revocation(
        record_hash=normalize_hash32(record_hash),
        root=normalize_hash32(root),
        reason=reason,
        revoked_by=normalize_address(revoked_by),
        block_number=block_number,
        block_time=block_time,
        tx_hash=tx_hash,
    )
    session.add(revocation)
    return revocation


def get_revocation(*, session: Session, root: str, record_hash: str) -> Revocation | None:
    """The revocation of ``record_hash`` as a record of the batch ``root``, if revoked under that root.

    A revocation under any other root does not count (any member can anchor its own root with this leaf).
    """
    return session.get(Revocation, (normalize_hash32(root), normalize_hash32(record_hash)))


def list_revocations(*, session: Session, root: str | None = None) -> Sequence[Revocation]:
    """Revocations in chain order, optionally of one batch."""
    query = select(Revocation).order_by(Revocation.block_number, Revocation.root, Revocation.record_hash)
    if root is not None:
        query = query.where(Revocation.root == normalize_hash32(root))
    return session.scalars(query).all()


def count_revocations(*, session: Session) -> int:
    """The number of revocations (one per revoked root and record hash)."""
    return int(session.scalar(select(func.count()).select_from(Revocation)) or 0)


def add_recall(
    *,
    session: Session,
    trace_code_hash: str,
    reason: str,
    recalled_by: str,
    block_number: int,
    block_time: datetime,
    tx_hash: str,
) -> Recall:
    """Insert a lot recall."""
    recall = Recall(
        trace_code_hash=normalize_hash32(trace_code_hash),
        reason=reason,
        recalled_by=normalize_address(recalled_by),
        block_number=block_number,
        block_time=block_time,
        tx_hash=tx_hash,
    )
    session.add(recall)
    return recall


def get_recall(*, session: Session, trace_code_hash: str) -> Recall | None:
    """The recall of the lot with ``trace_code_hash``, if recalled."""
    return session.get(Recall, normalize_hash32(trace_code_hash))


def list_recalls(*, session: Session) -> Sequence[Recall]:
    """Recalls in chain order."""
    return session.scalars(select(Recall).order_by(Recall.block_number, Recall.trace_code_hash)).all()


def count_recalls(*, session: Session) -> int:
    """The number of recalled lots."""
    return int(session.scalar(select(func.count()).select_from(Recall)) or 0)


# Built once, so SQLAlchemy compiles it once (it runs several times a second).
_TABLE_VERSIONS = select(
    select(func.max(LotLink.id)).scalar_subquery(),
    select(func.count()).select_from(Revocation).scalar_subquery(),
    select(func.max(Revocation.block_number)).scalar_subquery(),
    select(func.count()).select_from(Recall).scalar_subquery(),
    select(func.max(Recall.block_number)).scalar_subquery(),
)


def table_versions(*, session: Session) -> tuple[int, int, int, int, int]:
    """What changes when the indexer stores a lot link, revocation or recall, in one query: the newest lot
    link's id, the number of revocations and their latest block, the number of recalls and their latest block."""
    row = session.connection().execute(_TABLE_VERSIONS).one()
    links, revocations, revoked_at, recalls, recalled_at = (int(value or 0) for value in row)
    return links, revocations, revoked_at, recalls, recalled_at
