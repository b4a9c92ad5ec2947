"""Enterprises (by USCC) and their certificate download tokens (stored as SHA-256)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from certificate_service.db.models import Enterprise

__all__ = ["add_enterprise", "get_enterprise", "get_enterprise_by_token_sha256", "list_enterprises"]


def add_enterprise(*, session: Session, uscc: str, name: str, token_sha256: str) -> Enterprise:
    """Insert an enterprise with the SHA-256 of its token."""
    enterprise = Enterprise(uscc=uscc, name=name, token_sha256=token_sha256.lower())
    session.add(enterprise)
    return enterprise


def get_enterprise(*, session: Session, uscc: str) -> Enterprise | None:
    """The enterprise with ``uscc``."""
    return session.get(Enterprise, uscc)


def get_enterprise_by_token_sha256(*, session: Session, token_sha256: str) -> Enterprise | None:
    """The enterprise whose token hashes to ``token_sha256``."""
    query = select(Enterprise).where(Enterprise.token_sha256 == token_sha256.lower())
    return session.scalars(query).first()


def list_enterprises(*, session: Session) -> Sequence[Enterprise]:
    """Enterprises ordered by USCC."""
    return session.scalars(select(Enterprise).order_by(Enterprise.uscc)).all()
