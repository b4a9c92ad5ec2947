"""Certificates and their signed PDF files."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, undefer

from certificate_service.db.models import Certificate, CertificateFile
from certificate_service.repositories._common import normalize_hash32

__all__ = [
    "add_certificate",
    "add_certificate_file",
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
