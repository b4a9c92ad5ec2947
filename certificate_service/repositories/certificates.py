"""Certificates and their signed PDF files."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, undefer

from certificate_service.db.models import Certificate, CertificateFile, utcnow
from certificate_service.repositories._common import normalize_hash32

_HASH32 = re.compile(r"0x[0-9a-f]{64}")


def _hash32(value: str) -> str:
    """`normalize_hash32` with a fast path for a value already in normal form (the usual case in bulk)."""
    return value if type(value) is str and _HASH32.fullmatch(value) else normalize_hash32(value)


__all__ = [
    "add_certificate",
    "add_certificate_file",
    "bulk_add_certificates",
    "get_certificate",
    "get_certificate_by_record",
    "get_certificate_file",
    "get_file_by_certificate_hash",
    "get_file_by_pdf_sha256",
    "list_certificate_files",
    "record_verification",
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


def record_verification(*, session: Session, certificate_id: str, at: datetime) -> int | None:
    """Atomically count one public verification; returns the new count (None for an unknown id)."""
    result = session.execute(
        update(Certificate)
        .where(Certificate.certificate_id == certificate_id)
        .values(
            verification_count=Certificate.verification_count + 1,
            first_verified_at=func.coalesce(Certificate.first_verified_at, at),
        )
        .returning(Certificate.verification_count)
        .execution_options(synchronize_session=False)
    )
    count = result.scalar_one_or_none()
    return int(count) if count is not None else None
