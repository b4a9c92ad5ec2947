"""Certificates and their signed PDF files."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, undefer

from certificate_service.db.models import Certificate, CertificateFile, Record, UTCDateTime, utcnow
from certificate_service.repositories._common import normalize_hash32

_HASH32 = re.compile(r"0x[0-9a-f]{64}")


def _hash32(value: str) -> str:
    """`normalize_hash32` with a fast path for a value already in normal form (the usual case in bulk)."""
    return value if type(value) is str and _HASH32.fullmatch(value) else normalize_hash32(value)


__all__ = [
    "add_certificate",
    "add_certificate_file",
    "add_verifications",
    "bulk_add_certificates",
    "get_certificate",
    "get_certificate_by_record",
    "get_certificate_file",
    "get_file_by_certificate_hash",
    "get_file_by_pdf_sha256",
    "list_certificate_files",
    "list_enterprise_certificates",
    "verification_counts",
]


def add_certificate(
    *, session: Session, certificate_id: str, record_hash: str, issued_at: datetime | None = None
) -> Certificate:
    """Insert the certificate of a record."""
    certificate = Certificate(certificate_id=certificate_id, record_hash=normalize_hash32(record_hash))
    if issued_at is not None:
        certificate.issued_at = issued_at
    session.add(certificate)
    return certificate


def bulk_add_certificates(
    *, session: Session, certificates: Sequence[tuple[str, str]], issued_at: datetime | None = None
) -> None:
    """Insert many ``(certificate_id, record_hash)`` certificates in one executemany (after their records)."""
    if not certificates:
        return
    issued = issued_at or utcnow()
    session.execute(
        insert(Certificate.__table__),
        [
            {"certificate_id": certificate_id, "record_hash": _hash32(record_hash), "issued_at": issued,
             "verification_count": 0}
            for certificate_id, record_hash in certificates
        ],
    )


def get_certificate(*, session: Session, certificate_id: str) -> Certificate | None:
    """The certificate with ``certificate_id``."""
    return session.get(Certificate, certificate_id)


def get_certificate_by_record(*, session: Session, record_hash: str) -> Certificate | None:
    """The certificate of a record, if issued."""
    query = select(Certificate).where(Certificate.record_hash == normalize_hash32(record_hash))
    return session.scalars(query).first()


def add_certificate_file(
    *,
    session: Session,
    certificate_id: str,
    variant: str,
    certificate_hash: str,
    pdf_sha256: str,
    pdf: bytes,
) -> CertificateFile:
    """Insert a rendered, signed PDF variant of a certificate."""
    row = CertificateFile(
        certificate_id=certificate_id,
        variant=variant,
        certificate_hash=normalize_hash32(certificate_hash),
        pdf_sha256=pdf_sha256.lower(),
        pdf=pdf,
    )
    session.add(row)
    return row


def get_certificate_file(
    *, session: Session, certificate_id: str, variant: str, with_pdf: bool = False
) -> CertificateFile | None:
    """One variant of a certificate (the PDF bytes are loaded only with ``with_pdf``)."""
    query = select(CertificateFile).where(
        CertificateFile.certificate_id == certificate_id, CertificateFile.variant == variant
    )
    if with_pdf:
        query = query.options(undefer(CertificateFile.pdf))
    return session.scalars(query).first()


def get_file_by_certificate_hash(
    *, session: Session, certificate_hash: str, with_pdf: bool = False
) -> CertificateFile | None:
    """The certificate file with ``certificate_hash``."""
    query = select(CertificateFile).where(CertificateFile.certificate_hash == normalize_hash32(certificate_hash))
    if with_pdf:
        query = query.options(undefer(CertificateFile.pdf))
    return session.scalars(query).first()


def get_file_by_pdf_sha256(*, session: Session, pdf_sha256: str, with_pdf: bool = False) -> CertificateFile | None:
    """The certificate file whose PDF bytes hash to ``pdf_sha256``."""
    query = select(CertificateFile).where(CertificateFile.pdf_sha256 == pdf_sha256.lower())
    if with_pdf:
        query = query.options(undefer(CertificateFile.pdf))
    return session.scalars(query).first()


def list_certificate_files(*, session: Session, certificate_id: str) -> Sequence[CertificateFile]:
    """Every variant of a certificate, oldest first (without PDF bytes)."""
    query = (
        select(CertificateFile)
        .where(CertificateFile.certificate_id == certificate_id)
        .order_by(CertificateFile.created_at, CertificateFile.id)
    )
    return session.scalars(query).all()


def add_verifications(*, session: Session, counts: Sequence[tuple[str, int, datetime]]) -> None:
    """Add ``n`` public verifications per certificate, first seen at ``at`` (one executemany UPDATE)."""
    if not counts:
        return
    table = Certificate.__table__
    statement = (
        update(table)
        .where(table.c.certificate_id == bindparam("cid"))
        .values(
            verification_count=table.c.verification_count + bindparam("n"),
            first_verified_at=func.coalesce(table.c.first_verified_at, bindparam("at", type_=UTCDateTime())),
        )
    )
    session.execute(statement, [{"cid": cid, "n": n, "at": at} for cid, n, at in counts])


def verification_counts(
    *, session: Session, certificate_ids: Sequence[str]
) -> dict[str, tuple[int, datetime | None]]:
    """``certificate_id -> (verification_count, first_verified_at)`` of the known ids among ``certificate_ids``."""
    found: dict[str, tuple[int, datetime | None]] = {}
    for start in range(0, len(certificate_ids), 500):
        chunk = certificate_ids[start : start + 500]
        query = select(
            Certificate.certificate_id, Certificate.verification_count, Certificate.first_verified_at
        ).where(Certificate.certificate_id.in_(chunk))
        for certificate_id, count, first in session.execute(query):
            found[certificate_id] = (int(count or 0), first)
    return found


_MAX_UTC_OFFSET = timedelta(hours=24)
"""Widest UTC offset a timestamp may carry: pre-filters the indexed UTC column before the local-date test."""


def list_enterprise_certificates(
    *,
    session: Session,
    enterprise_uscc: str,
    limit: int,
    offset: int,
    trace_code: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> tuple[int, Sequence[Row[Any]]]:
    """How many certificates of an enterprise match, and one page of them, newest event first.

    Rows hold ``certificate_id, issued_at, record_id, trace_code, record``; the dates filter the event's own
    local date (the first ten characters of its ``event_time``).
    """
    conditions: list[Any] = [Record.enterprise_uscc == enterprise_uscc]
    if trace_code:
        conditions.append(Record.trace_code == trace_code)
    local_date = func.substr(Record.record["event_time"].as_string(), 1, 10)
    if date_from is not None:
        start = datetime.combine(date_from, time.min, UTC) - _MAX_UTC_OFFSET
        conditions += [Record.event_time >= start, local_date >= date_from.isoformat()]
    if date_to is not None:
        end = datetime.combine(date_to + timedelta(days=1), time.min, UTC) + _MAX_UTC_OFFSET
        conditions += [Record.event_time < end, local_date <= date_to.isoformat()]
    joined = select(Certificate.certificate_id).join(Record, Record.record_hash == Certificate.record_hash)
    count = session.scalar(select(func.count()).select_from(joined.where(*conditions).subquery())) or 0
    rows = session.execute(
        select(
            Certificate.certificate_id,
            Certificate.issued_at,
            Record.record_id,
            Record.trace_code,
            Record.record,
        )
        .join(Record, Record.record_hash == Certificate.record_hash)
        .where(*conditions)
        .order_by(Record.event_time.desc(), Record.record_hash)
        .limit(limit)
        .offset(offset)
    ).all()
    return int(count), rows
