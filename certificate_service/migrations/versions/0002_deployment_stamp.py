"""Deployment stamp: the chain and contracts a database belongs to.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "deployment_stamp",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("registry_address", sa.String(length=42), nullable=False),
        sa.Column("anchor_address", sa.String(length=42), nullable=False),
        sa.Column("stamped_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_stamp")),
        sa.CheckConstraint("id = 1", name=op.f("ck_deployment_stamp_single_row")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("deployment_stamp")
