"""Full trace records received from agencies, and the lot links of the trace graph."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from certificate_service.db.models import LotLink, Record, utcnow
from certificate_service.repositories._common import normalize_address, normalize_hash32

_HASH32 = re.compile(r"0x[0-9a-f]{64}")


def _hash32(value: str) -> str:
    """`normalize_hash32` with a fast path for a value already in normal form (the usual case in bulk)."""
    return value if type(value) is str and _HASH32.fullmatch(value) else normalize_hash32(value)


__all__ = [
    "add_lot_links",
    "add_record",
    "bulk_add_lot_links",
    "bulk_add_records",
    "count_records",
    "existing_records_by_agency_ids",
    "get_record",
    "get_record_by_agency_id",
    "list_input_links",
    "list_links_of_record",
    "list_output_links",
    "list_records_by_enterprise",
    "list_records_by_root",
    "list_records_by_trace_code",
]


def add_record(
    *,
    session: Session,
    record_hash: str,
    agency_address: str,
    record_id: str,
    record: dict[str, Any],
    salts: dict[str, Any],
    content_sha256: str,
    trace_code: str,
    trace_code_hash: str,
    enterprise_uscc: str,
    event_time: datetime,
    root: str | None = None,
    leaf_index: int | None = None,
    proof: list[str] | None = None,
) -> Record:
    """Insert a record (the caller flushes; a duplicate raises IntegrityError)."""
    row = Record(
        record_hash=normalize_hash32(record_hash),
        agency_address=normalize_address(agency_address),
        record_id=record_id,
        root=normalize_hash32(root) if root is not None else None,
        leaf_index=leaf_index,
        proof=proof,
        record=record,
        salts=salts,
        content_sha256=content_sha256,
        trace_code=trace_code,
        trace_code_hash=normalize_hash32(trace_code_hash),
        enterprise_uscc=enterprise_uscc,
        event_time=event_time,
    )
    session.add(row)
    return row


def bulk_add_records(*, session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many records in one executemany (no ORM objects); the rows use `add_record`'s keyword names.

    Every row must carry all of ``record_hash, agency_address, record_id, record, salts, content_sha256,
    trace_code, trace_code_hash, enterprise_uscc, event_time, root, leaf_index, proof``. Values are normalised
    as `add_record` normalises them; a duplicate raises IntegrityError. Records go in before the certificates
    and lot links that refer to them.
    """
    if not rows:
        return
    now = utcnow()
    values = [
        {
            "record_hash": _hash32(row["record_hash"]),
            "agency_address": normalize_address(row["agency_address"]),
            "record_id": row["record_id"],
            "root": _hash32(row["root"]) if row["root"] is not None else None,
            "leaf_index": row["leaf_index"],
            "proof": row["proof"],
            "record": row["record"],
            "salts": row["salts"],
            "content_sha256": row["content_sha256"],
            "trace_code": row["trace_code"],
            "trace_code_hash": _hash32(row["trace_code_hash"]),
            "enterprise_uscc": row["enterprise_uscc"],
            "event_time": row["event_time"],
            "ingested_at": now,
        }
        for row in rows
    ]
    session.execute(insert(Record.__table__), values)


def existing_records_by_agency_ids(
    *, session: Session, agency_address: str, record_ids: Iterable[str], chunk: int = 1000
) -> dict[str, tuple[str, str]]:
    """``record_id -> (record_hash, content_sha256)`` of the given ids this agency already submitted."""
    agency = normalize_address(agency_address)
    ids = list(dict.fromkeys(record_ids))
    found: dict[str, tuple[str, str]] = {}
    table = Record.__table__
    for start in range(0, len(ids), chunk):
        query = select(table.c.record_id, table.c.record_hash, table.c.content_sha256).where(
            table.c.agency_address == agency, table.c.record_id.in_(ids[start : start + chunk])
        )
        for record_id, record_hash, content_sha256 in session.execute(query):
            found[record_id] = (record_hash, content_sha256)
    return found


def get_record(*, session: Session, record_hash: str) -> Record | None:
    """The record with ``record_hash``."""
    return session.get(Record, normalize_hash32(record_hash))


def get_record_by_agency_id(*, session: Session, agency_address: str, record_id: str) -> Record | None:
    """The record an agency submitted under its own ``record_id`` (the idempotency key)."""
    query = select(Record).where(
        Record.agency_address == normalize_address(agency_address), Record.record_id == record_id
    )
    return session.scalars(query).first()


def list_records_by_trace_code(*, session: Session, trace_code: str) -> Sequence[Record]:
    """Records about one lot, oldest event first."""
    query = select(Record).where(Record.trace_code == trace_code).order_by(Record.event_time, Record.record_hash)
    return session.scalars(query).all()


def list_records_by_root(*, session: Session, root: str) -> Sequence[Record]:
    """Records of one anchored batch, in leaf order."""
    query = select(Record).where(Record.root == normalize_hash32(root)).order_by(Record.leaf_index)
    return session.scalars(query).all()


def list_records_by_enterprise(
    *, session: Session, enterprise_uscc: str, limit: int = 100, offset: int = 0
) -> Sequence[Record]:
    """Records of one enterprise, newest event first."""
    query = (
        select(Record)
        .where(Record.enterprise_uscc == enterprise_uscc)
        .order_by(Record.event_time.desc(), Record.record_hash)
        .limit(limit)
        .offset(offset)
    )
    return session.scalars(query).all()


def count_records(*, session: Session, enterprise_uscc: str | None = None) -> int:
    """The number of records (of one enterprise)."""
    query = select(func.count()).select_from(Record)
    if enterprise_uscc is not None:
        query = query.where(Record.enterprise_uscc == enterprise_uscc)
    return int(session.scalar(query) or 0)


def add_lot_links(*, session: Session, record_hash: str, links: Iterable[tuple[str, str]]) -> list[LotLink]:
    """Insert the (from_trace_code, to_trace_code) edges stated by one record (duplicates dropped)."""
    record_hash = normalize_hash32(record_hash)
    rows = [
        LotLink(from_trace_code=source, to_trace_code=target, record_hash=record_hash)
        for source, target in dict.fromkeys(links)
    ]
    session.add_all(rows)
    return rows


def bulk_add_lot_links(*, session: Session, links: Iterable[tuple[str, str, str]]) -> None:
    """Insert many ``(from_trace_code, to_trace_code, record_hash)`` edges in one executemany (duplicates
    dropped), after the records they belong to."""
    values = [
        {"from_trace_code": source, "to_trace_code": target, "record_hash": _hash32(record_hash)}
        for source, target, record_hash in dict.fromkeys(links)
    ]
    if values:
        session.execute(insert(LotLink.__table__), values)


def list_input_links(*, session: Session, trace_code: str) -> Sequence[LotLink]:
    """Edges into ``trace_code`` (its parent lots: backward tracing)."""
    query = select(LotLink).where(LotLink.to_trace_code == trace_code).order_by(LotLink.from_trace_code)
    return session.scalars(query).all()


def list_output_links(*, session: Session, trace_code: str) -> Sequence[LotLink]:
    """Edges out of ``trace_code`` (its child lots: forward tracking)."""
    query = select(LotLink).where(LotLink.from_trace_code == trace_code).order_by(LotLink.to_trace_code)
    return session.scalars(query).all()


def list_links_of_record(*, session: Session, record_hash: str) -> Sequence[LotLink]:
    """Edges stated by one record."""
    query = select(LotLink).where(LotLink.record_hash == normalize_hash32(record_hash)).order_by(LotLink.id)
    return session.scalars(query).all()
