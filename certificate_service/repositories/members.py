"""Consortium members and their membership periods."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from certificate_service.db.models import Member, MemberPeriod
from certificate_service.repositories._common import normalize_address, normalize_hash32

__all__ = [
    "add_member",
    "clear_members",
    "close_period",
    "get_member",
    "get_member_by_fingerprint",
    "list_identity_members",
    "list_member_periods",
    "list_members",
    "next_identity_id",
    "open_period",
    "was_member_at",
]


def get_member(*, session: Session, address: str) -> Member | None:
    """The member entry of ``address`` (any case)."""
    return session.get(Member, normalize_address(address))


def list_members(*, session: Session, active_only: bool = False, role: int | None = None) -> Sequence[Member]:
    """Members ordered by identity, optionally only active ones / holding every bit of ``role``."""
    query = select(Member).order_by(Member.identity_id, Member.added_block)
    if active_only:
        query = query.where(Member.active.is_(True))
    if role is not None:
        query = query.where(Member.roles.op("&")(role) == role)
    return session.scalars(query).all()


def list_identity_members(*, session: Session, identity_id: int) -> Sequence[Member]:
    """Every account (current and rotated away) of one member identity, oldest first."""
    query = select(Member).where(Member.identity_id == identity_id).order_by(Member.added_block)
    return session.scalars(query).all()


def get_member_by_fingerprint(*, session: Session, fingerprint: str, active_only: bool = True) -> Member | None:
    """The member holding issuer ``fingerprint``."""
    query = select(Member).where(Member.issuer_fingerprint == normalize_hash32(fingerprint))
    if active_only:
        query = query.where(Member.active.is_(True))
    return session.scalars(query.order_by(Member.updated_block.desc()).limit(1)).first()


def next_identity_id(*, session: Session) -> int:
    """The identity the next added member receives (the registry counts from 1)."""
    return int(session.scalar(select(func.max(Member.identity_id))) or 0) + 1


def add_member(*, session: Session, address: str, identity_id: int, name: str, code: str, block_number: int) -> Member:
    """Insert an inactive member entry without roles (the caller sets the status)."""
    member = Member(
        address=normalize_address(address),
        identity_id=identity_id,
        name=name,
        code=code,
        roles=0,
        active=False,
        added_block=block_number,
        updated_block=block_number,
    )
    session.add(member)
    return member


def open_period(*, session: Session, address: str, from_block: int) -> MemberPeriod:
    """Start a membership period of ``address`` at ``from_block``."""
    period = MemberPeriod(address=normalize_address(address), from_block=from_block, to_block=None)
    session.add(period)
    return period


def close_period(*, session: Session, address: str, to_block: int) -> bool:
    """End the open membership period of ``address`` at ``to_block`` (inclusive); False if none was open."""
    query = (
        select(MemberPeriod)
        .where(MemberPeriod.address == normalize_address(address), MemberPeriod.to_block.is_(None))
        .order_by(MemberPeriod.from_block.desc())
        .limit(1)
    )
    period = session.scalars(query).first()
    if period is None:
        return False
    period.to_block = to_block
    return True


def list_member_periods(*, session: Session, address: str) -> Sequence[MemberPeriod]:
    """The membership periods of ``address``, oldest first."""
    query = (
        select(MemberPeriod)
        .where(MemberPeriod.address == normalize_address(address))
        .order_by(MemberPeriod.from_block, MemberPeriod.id)
    )
    return session.scalars(query).all()


def was_member_at(*, session: Session, address: str, block_number: int) -> bool:
    """Whether ``address`` was an active MEMBER during ``block_number`` (both period ends inclusive)."""
    query = select(MemberPeriod.id).where(
        MemberPeriod.address == normalize_address(address),
        MemberPeriod.from_block <= block_number,
        or_(MemberPeriod.to_block.is_(None), MemberPeriod.to_block >= block_number),
    )
    return session.scalars(query.limit(1)).first() is not None


def clear_members(*, session: Session) -> None:
    """Delete every member and period (before rebuilding them from the stored events)."""
    session.execute(delete(MemberPeriod).execution_options(synchronize_session=False))
    session.execute(delete(Member).execution_options(synchronize_session=False))
    session.expire_all()
