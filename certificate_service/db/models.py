"""SQLAlchemy 2 ORM of the certificate service.

Conventions: addresses are EIP-55 checksummed strings (42 chars); 32-byte hashes (roots, record hashes,
trace-code hashes, tx and block hashes, fingerprints) are ``0x``-prefixed lowercase hex (66 chars);
SHA-256 digests are bare lowercase hex (64 chars); timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import BYTEA, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Base",
    "Batch",
    "Certificate",
    "CertificateFile",
    "ChainBlock",
    "ChainCheckpoint",
    "ChainEvent",
    "Enterprise",
    "LotLink",
    "Member",
    "MemberPeriod",
    "Recall",
    "Record",
    "Revocation",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ADDRESS = 42
HASH32 = 66
SHA256 = 64


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes, store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC datetimes."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
BlobType = LargeBinary().with_variant(BYTEA(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base with a stable constraint naming convention (for Alembic)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}  # noqa: RUF012


# --- chain follower -------------------------------------------------------------------------------


class ChainCheckpoint(Base):
    """Last block indexed by one follower (one row per follower name)."""

    __tablename__ = "chain_checkpoints"

    follower: Mapped[str] = mapped_column(String(64), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(HASH32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChainBlock(Base):
    """Hash and time of an indexed block that held events or closed a chunk (for reorg detection)."""

    __tablename__ = "chain_blocks"

    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(String(HASH32))
    block_time: Mapped[datetime]


class ChainEvent(Base):
    """One applied contract event; (tx_hash, log_index) makes indexing exactly-once."""

    __tablename__ = "chain_events"
    __table_args__ = (
        UniqueConstraint("tx_hash", "log_index"),
        Index(None, "block_number", "log_index"),
        Index(None, "event_name"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    tx_hash: Mapped[str] = mapped_column(String(HASH32))
    log_index: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(HASH32))
    contract_address: Mapped[str] = mapped_column(String(ADDRESS))
    event_name: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]]
    indexed_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- consortium membership ------------------------------------------------------------------------


class Member(Base):
    """A member account; identity_id stays the same across key rotations of one organisation."""

    __tablename__ = "members"
    __table_args__ = (Index(None, "identity_id"), Index(None, "code"))

    address: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    identity_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)  # chain strings are unbounded: never fail the indexer on length
    code: Mapped[str] = mapped_column(Text)
    roles: Mapped[int] = mapped_column(SmallInteger)
    active: Mapped[bool] = mapped_column(Boolean)
    issuer_fingerprint: Mapped[str | None] = mapped_column(String(HASH32))
    successor_address: Mapped[str | None] = mapped_column(String(ADDRESS))
    added_block: Mapped[int] = mapped_column(BigInteger)
    updated_block: Mapped[int] = mapped_column(BigInteger)

    periods: Mapped[list[MemberPeriod]] = relationship(
        back_populates="member", order_by="MemberPeriod.from_block", cascade="all, delete-orphan"
    )


class MemberPeriod(Base):
    """A span [from_block, to_block) in which an address was an active member (to_block None = still)."""

    __tablename__ = "member_periods"
    __table_args__ = (Index(None, "address", "from_block"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    address: Mapped[str] = mapped_column(ForeignKey("members.address", ondelete="CASCADE"))
    from_block: Mapped[int] = mapped_column(BigInteger)
    to_block: Mapped[int | None] = mapped_column(BigInteger)

    member: Mapped[Member] = relationship(back_populates="periods")


# --- anchors --------------------------------------------------------------------------------------


class Batch(Base):
    """A Merkle root anchored on TraceAnchor."""

    __tablename__ = "batches"
    __table_args__ = (Index(None, "agency_address", "block_number"), Index(None, "block_number"))

    root: Mapped[str] = mapped_column(String(HASH32), primary_key=True)
    agency_address: Mapped[str] = mapped_column(String(ADDRESS))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_time: Mapped[datetime]
    tx_hash: Mapped[str] = mapped_column(String(HASH32))
    count: Mapped[int] = mapped_column(Integer)
    schema_version: Mapped[int] = mapped_column(SmallInteger)


class Revocation(Base):
    """A record revoked on chain, keyed like the contract by (batch root, record hash).

    A revocation only speaks for the batch it was proven against: any member can anchor a root of its own that
    contains another agency's (public) leaf and revoke it there, which must not revoke the record's own batch.
    """

    __tablename__ = "revocations"
    __table_args__ = (Index(None, "block_number"),)

    root: Mapped[str] = mapped_column(String(HASH32), primary_key=True)
    record_hash: Mapped[str] = mapped_column(String(HASH32), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    revoked_by: Mapped[str] = mapped_column(String(ADDRESS))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_time: Mapped[datetime]
    tx_hash: Mapped[str] = mapped_column(String(HASH32))


class Recall(Base):
    """A lot recalled on chain (keyed by keccak256 of its trace code)."""

    __tablename__ = "recalls"
    __table_args__ = (Index(None, "block_number"),)

    trace_code_hash: Mapped[str] = mapped_column(String(HASH32), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    recalled_by: Mapped[str] = mapped_column(String(ADDRESS))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_time: Mapped[datetime]
    tx_hash: Mapped[str] = mapped_column(String(HASH32))


# --- off-chain records ----------------------------------------------------------------------------


class Record(Base):
    """A full trace record received from an agency, with its salts and Merkle proof."""

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("agency_address", "record_id"),
        Index(None, "root"),
        Index(None, "trace_code"),
        Index(None, "enterprise_uscc", "event_time"),
    )

    record_hash: Mapped[str] = mapped_column(String(HASH32), primary_key=True)
    agency_address: Mapped[str] = mapped_column(String(ADDRESS))
    record_id: Mapped[str] = mapped_column(String(64))
    root: Mapped[str | None] = mapped_column(String(HASH32))  # no FK: the batch may be indexed later
    leaf_index: Mapped[int | None] = mapped_column(Integer)
    proof: Mapped[list[str] | None] = mapped_column(JSONType)
    record: Mapped[dict[str, Any]]
    salts: Mapped[dict[str, Any]]
    content_sha256: Mapped[str] = mapped_column(String(SHA256))
    trace_code: Mapped[str] = mapped_column(String(128))
    trace_code_hash: Mapped[str] = mapped_column(String(HASH32))
    enterprise_uscc: Mapped[str] = mapped_column(String(18))
    event_time: Mapped[datetime]
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)


class LotLink(Base):
    """An edge of the trace graph: lot ``from_trace_code`` went into lot ``to_trace_code``."""

    __tablename__ = "lot_links"
    __table_args__ = (
        UniqueConstraint("from_trace_code", "to_trace_code", "record_hash"),
        Index(None, "to_trace_code"),
        Index(None, "record_hash"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    from_trace_code: Mapped[str] = mapped_column(String(128))
    to_trace_code: Mapped[str] = mapped_column(String(128))
    record_hash: Mapped[str] = mapped_column(ForeignKey("records.record_hash", ondelete="CASCADE"))

    record: Mapped[Record] = relationship(lazy="raise")  # also orders inserts after the record's


# --- certificates ---------------------------------------------------------------------------------


class Certificate(Base):
    """The certificate of one record (one per record; rendered in one or more variants)."""

    __tablename__ = "certificates"

    certificate_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_hash: Mapped[str] = mapped_column(ForeignKey("records.record_hash", ondelete="RESTRICT"), unique=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    verification_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    first_verified_at: Mapped[datetime | None]

    record: Mapped[Record] = relationship(lazy="raise")  # also orders inserts after the record's

    files: Mapped[list[CertificateFile]] = relationship(
        back_populates="certificate", cascade="all, delete-orphan", lazy="raise"
    )


class CertificateFile(Base):
    """A signed PDF of a certificate; ``variant`` is the canonical sorted list of hidden field paths."""

    __tablename__ = "certificate_files"
    __table_args__ = (UniqueConstraint("certificate_id", "variant"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.certificate_id", ondelete="CASCADE"))
    variant: Mapped[str] = mapped_column(Text)
    certificate_hash: Mapped[str] = mapped_column(String(HASH32), unique=True)
    pdf_sha256: Mapped[str] = mapped_column(String(SHA256), unique=True)
    pdf: Mapped[bytes] = mapped_column(BlobType, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    certificate: Mapped[Certificate] = relationship(back_populates="files")


class Enterprise(Base):
    """An enterprise (by USCC) and the SHA-256 of its download token."""

    __tablename__ = "enterprises"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    token_sha256: Mapped[str] = mapped_column(String(SHA256), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeploymentStamp(Base):
    """The one chain deployment this database belongs to (a database never mixes two deployments)."""

    __tablename__ = "deployment_stamp"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    registry_address: Mapped[str] = mapped_column(String(ADDRESS))
    anchor_address: Mapped[str] = mapped_column(String(ADDRESS))
    stamped_at: Mapped[datetime] = mapped_column(default=utcnow)
