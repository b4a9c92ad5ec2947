"""Initial schema: chain follower, membership, anchors, records, certificates, enterprises.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model column types (a migration must not change when models.py does).
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY autoincrements on SQLite
BLOB = sa.LargeBinary().with_variant(postgresql.BYTEA(), "postgresql")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "batches",
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("agency_address", sa.String(length=42), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_time", TIMESTAMP, nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("schema_version", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("root", name=op.f("pk_batches")),
    )
    op.create_index(
        op.f("ix_batches_agency_address_block_number"),
        "batches",
        ["agency_address", "block_number"],
        unique=False,
    )
    op.create_index(op.f("ix_batches_block_number"), "batches", ["block_number"], unique=False)
    op.create_table(
        "chain_blocks",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_time", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("block_number", name=op.f("pk_chain_blocks")),
    )
    op.create_table(
        "chain_checkpoints",
        sa.Column("follower", sa.String(length=64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("follower", name=op.f("pk_chain_checkpoints")),
    )
    op.create_table(
        "chain_events",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("contract_address", sa.String(length=42), nullable=False),
        sa.Column("event_name", sa.String(length=64), nullable=False),
        sa.Column("args", JSON, nullable=False),
        sa.Column("indexed_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_events")),
        sa.UniqueConstraint("tx_hash", "log_index", name=op.f("uq_chain_events_tx_hash_log_index")),
    )
    op.create_index(
        op.f("ix_chain_events_block_number_log_index"),
        "chain_events",
        ["block_number", "log_index"],
        unique=False,
    )
    op.create_index(op.f("ix_chain_events_event_name"), "chain_events", ["event_name"], unique=False)
    op.create_table(
        "enterprises",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("uscc", name=op.f("pk_enterprises")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_enterprises_token_sha256")),
    )
    op.create_table(
        "members",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("roles", sa.SmallInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("issuer_fingerprint", sa.String(length=66), nullable=True),
        sa.Column("successor_address", sa.String(length=42), nullable=True),
        sa.Column("added_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_members")),
    )
    op.create_index(op.f("ix_members_code"), "members", ["code"], unique=False)
    op.create_index(op.f("ix_members_identity_id"), "members", ["identity_id"], unique=False)
    op.create_table(
        "recalls",
        sa.Column("trace_code_hash", sa.String(length=66), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recalled_by", sa.String(length=42), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_time", TIMESTAMP, nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("trace_code_hash", name=op.f("pk_recalls")),
    )
    op.create_index(op.f("ix_recalls_block_number"), "recalls", ["block_number"], unique=False)
    op.create_table(
        "records",
        sa.Column("record_hash", sa.String(length=66), nullable=False),
        sa.Column("agency_address", sa.String(length=42), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("root", sa.String(length=66), nullable=True),
        sa.Column("leaf_index", sa.Integer(), nullable=True),
        sa.Column("proof", JSON, nullable=True),
        sa.Column("record", JSON, nullable=False),
        sa.Column("salts", JSON, nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("trace_code", sa.String(length=128), nullable=False),
        sa.Column("trace_code_hash", sa.String(length=66), nullable=False),
        sa.Column("enterprise_uscc", sa.String(length=18), nullable=False),
        sa.Column("event_time", TIMESTAMP, nullable=False),
        sa.Column("ingested_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("record_hash", name=op.f("pk_records")),
        sa.UniqueConstraint("agency_address", "record_id", name=op.f("uq_records_agency_address_record_id")),
    )
    op.create_index(op.f("ix_records_content_sha256"), "records", ["content_sha256"], unique=False)
    op.create_index(
        op.f("ix_records_enterprise_uscc_event_time"),
        "records",
        ["enterprise_uscc", "event_time"],
        unique=False,
    )
    op.create_index(op.f("ix_records_root"), "records", ["root"], unique=False)
    op.create_index(op.f("ix_records_trace_code"), "records", ["trace_code"], unique=False)
    op.create_index(op.f("ix_records_trace_code_hash"), "records", ["trace_code_hash"], unique=False)
    op.create_table(
        "revocations",
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("record_hash", sa.String(length=66), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("revoked_by", sa.String(length=42), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_time", TIMESTAMP, nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("root", "record_hash", name=op.f("pk_revocations")),
    )
    op.create_index(op.f("ix_revocations_block_number"), "revocations", ["block_number"], unique=False)
    op.create_table(
        "certificates",
        sa.Column("certificate_id", sa.String(length=64), nullable=False),
        sa.Column("record_hash", sa.String(length=66), nullable=False),
        sa.Column("issued_at", TIMESTAMP, nullable=False),
        sa.Column("verification_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("first_verified_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["record_hash"],
            ["records.record_hash"],
            name=op.f("fk_certificates_record_hash_records"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("certificate_id", name=op.f("pk_certificates")),
        sa.UniqueConstraint("record_hash", name=op.f("uq_certificates_record_hash")),
    )
    op.create_table(
        "lot_links",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("from_trace_code", sa.String(length=128), nullable=False),
        sa.Column("to_trace_code", sa.String(length=128), nullable=False),
        sa.Column("record_hash", sa.String(length=66), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_hash"],
            ["records.record_hash"],
            name=op.f("fk_lot_links_record_hash_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lot_links")),
        sa.UniqueConstraint(
            "from_trace_code",
            "to_trace_code",
            "record_hash",
            name=op.f("uq_lot_links_from_trace_code_to_trace_code_record_hash"),
        ),
    )
    op.create_index(op.f("ix_lot_links_record_hash"), "lot_links", ["record_hash"], unique=False)
    op.create_index(op.f("ix_lot_links_to_trace_code"), "lot_links", ["to_trace_code"], unique=False)
    op.create_table(
        "member_periods",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("from_block", sa.BigInteger(), nullable=False),
        sa.Column("to_block", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["address"],
            ["members.address"],
            name=op.f("fk_member_periods_address_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_periods")),
    )
    op.create_index(
        op.f("ix_member_periods_address_from_block"),
        "member_periods",
        ["address", "from_block"],
        unique=False,
    )
    op.create_table(
        "certificate_files",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("certificate_id", sa.String(length=64), nullable=False),
        sa.Column("variant", sa.Text(), nullable=False),
        sa.Column("certificate_hash", sa.String(length=66), nullable=False),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=False),
        sa.Column("pdf", BLOB, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.certificate_id"],
            name=op.f("fk_certificate_files_certificate_id_certificates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_files")),
        sa.UniqueConstraint("certificate_hash", name=op.f("uq_certificate_files_certificate_hash")),
        sa.UniqueConstraint("certificate_id", "variant", name=op.f("uq_certificate_files_certificate_id_variant")),
        sa.UniqueConstraint("pdf_sha256", name=op.f("uq_certificate_files_pdf_sha256")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("certificate_files")
    op.drop_index(op.f("ix_member_periods_address_from_block"), table_name="member_periods")
    op.drop_table("member_periods")
    op.drop_index(op.f("ix_lot_links_to_trace_code"), table_name="lot_links")
    op.drop_index(op.f("ix_lot_links_record_hash"), table_name="lot_links")
    op.drop_table("lot_links")
    op.drop_table("certificates")
    op.drop_index(op.f("ix_revocations_block_number"), table_name="revocations")
    op.drop_table("revocations")
    op.drop_index(op.f("ix_records_trace_code_hash"), table_name="records")
    op.drop_index(op.f("ix_records_trace_code"), table_name="records")
    op.drop_index(op.f("ix_records_root"), table_name="records")
    op.drop_index(op.f("ix_records_enterprise_uscc_event_time"), table_name="records")
    op.drop_index(op.f("ix_records_content_sha256"), table_name="records")
    op.drop_table("records")
    op.drop_index(op.f("ix_recalls_block_number"), table_name="recalls")
    op.drop_table("recalls")
    op.drop_index(op.f("ix_members_identity_id"), table_name="members")
    op.drop_index(op.f("ix_members_code"), table_name="members")
    op.drop_table("members")
    op.drop_table("enterprises")
    op.drop_index(op.f("ix_chain_events_event_name"), table_name="chain_events")
    op.drop_index(op.f("ix_chain_events_block_number_log_index"), table_name="chain_events")
    op.drop_table("chain_events")
    op.drop_table("chain_checkpoints")
    op.drop_table("chain_blocks")
    op.drop_index(op.f("ix_batches_block_number"), table_name="batches")
    op.drop_index(op.f("ix_batches_agency_address_block_number"), table_name="batches")
    op.drop_table("batches")
