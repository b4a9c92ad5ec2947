"""Drop two indexes of `records` no query uses (content SHA-256, trace-code hash): every upload paid for them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.drop_index(op.f("ix_records_content_sha256"), table_name="records")
    op.drop_index(op.f("ix_records_trace_code_hash"), table_name="records")


def downgrade() -> None:
    """Revert this revision."""
    op.create_index(op.f("ix_records_trace_code_hash"), "records", ["trace_code_hash"], unique=False)
    op.create_index(op.f("ix_records_content_sha256"), "records", ["content_sha256"], unique=False)
