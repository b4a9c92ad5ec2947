"""Chain follower state: checkpoint, processed events, known block hashes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from certificate_service.db.models import (
    Batch,
    ChainBlock,
    ChainCheckpoint,
    ChainEvent,
    Recall,
    Revocation,
    utcnow,
)

__all__ = [
    "add_chain_event",
    "claim_checkpoint",
    "count_chain_events",
    "delete_chain_data_after",
    "delete_checkpoint",
    "event_processed",
    "get_chain_block",
    "get_checkpoint",
    "list_chain_blocks",
    "list_chain_events",
    "processed_event_keys",
    "prune_chain_blocks",
    "put_chain_block",
    "set_checkpoint",
]


def get_checkpoint(*, session: Session, follower: str) -> ChainCheckpoint | None:
    """The checkpoint row of ``follower`` (None before the first indexed chunk)."""
    return session.get(ChainCheckpoint, follower, populate_existing=True)


def claim_checkpoint(
    *, session: Session, follower: str, expected_block: int | None, block_number: int, block_hash: str
) -> bool:
    """Move the checkpoint from ``expected_block`` to ``block_number`` (compare-and-set); False if it moved.

    With ``expected_block=None`` the row is inserted; a concurrent insert fails with IntegrityError.
    Run it first in the transaction: it takes the row (PostgreSQL) or database (SQLite) write lock.
    """
    if expected_block is None:
        session.execute(
            insert(ChainCheckpoint).values(
                follower=follower, block_number=block_number, block_hash=block_hash, updated_at=utcnow()
            )
        )
        return True
    result = session.execute(
        update(ChainCheckpoint)
        .where(ChainCheckpoint.follower == follower, ChainCheckpoint.block_number == expected_block)
        .values(block_number=block_number, block_hash=block_hash, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def set_checkpoint(*, session: Session, follower: str, block_number: int, block_hash: str) -> None:
    """Set the checkpoint unconditionally (used when rolling back after a reorg)."""
    row = session.get(ChainCheckpoint, follower)
    if row is None:
        session.add(ChainCheckpoint(follower=follower, block_number=block_number, block_hash=block_hash))
    else:
        row.block_number, row.block_hash, row.updated_at = block_number, block_hash, utcnow()


def delete_checkpoint(*, session: Session, follower: str) -> None:
    """Forget the checkpoint (indexing restarts at the deployment block)."""
    session.execute(delete(ChainCheckpoint).where(ChainCheckpoint.follower == follower))


def event_processed(*, session: Session, tx_hash: str, log_index: int) -> bool:
    """Whether the event (tx_hash, log_index) was already applied."""
    query = select(exists().where(ChainEvent.tx_hash == tx_hash, ChainEvent.log_index == log_index))
    return bool(session.scalar(query))


def processed_event_keys(*, session: Session, tx_hashes: Iterable[str]) -> set[tuple[str, int]]:
    """The (tx_hash, log_index) pairs already applied among the logs of ``tx_hashes`` (one query)."""
    wanted = sorted(set(tx_hashes))
    found: set[tuple[str, int]] = set()
    for start in range(0, len(wanted), 500):
        query = select(ChainEvent.tx_hash, ChainEvent.log_index).where(
            ChainEvent.tx_hash.in_(wanted[start : start + 500])
        )
        found.update((str(tx), int(index)) for tx, index in session.execute(query))
    return found


def add_chain_event(
    *,
    session: Session,
    tx_hash: str,
    log_index: int,
    block_number: int,
    block_hash: str,
    contract_address: str,
    event_name: str,
    args: dict[str, Any],
) -> ChainEvent:
    """Record an applied event."""
    event = ChainEvent(
        tx_hash=tx_hash,
        log_index=log_index,
        block_number=block_number,
        block_hash=block_hash,
        contract_address=contract_address,
        event_name=event_name,
        args=args,
    )
    session.add(event)
    return event


def list_chain_events(
    *,
    session: Session,
    event_names: Iterable[str] | None = None,
    contract_address: str | None = None,
    from_block: int | None = None,
    to_block: int | None = None,
) -> Sequence[ChainEvent]:
    """Applied events in chain order, optionally filtered."""
    query = select(ChainEvent).order_by(ChainEvent.block_number, ChainEvent.log_index)
    if event_names is not None:
        query = query.where(ChainEvent.event_name.in_(list(event_names)))
    if contract_address is not None:
        query = query.where(ChainEvent.contract_address == contract_address)
    if from_block is not None:
        query = query.where(ChainEvent.block_number >= from_block)
    if to_block is not None:
        query = query.where(ChainEvent.block_number <= to_block)
    return session.scalars(query).all()


def count_chain_events(*, session: Session, event_name: str | None = None) -> int:
    """The number of applied events (of one name)."""
    query = select(func.count()).select_from(ChainEvent)
    if event_name is not None:
        query = query.where(ChainEvent.event_name == event_name)
    return int(session.scalar(query) or 0)


def put_chain_block(*, session: Session, block_number: int, block_hash: str, block_time: datetime) -> None:
    """Remember the hash and time of an indexed block (replacing a stale entry)."""
    row = session.get(ChainBlock, block_number)
    if row is None:
        session.add(ChainBlock(block_number=block_number, block_hash=block_hash, block_time=block_time))
    else:
        row.block_hash, row.block_time = block_hash, block_time


def get_chain_block(*, session: Session, block_number: int) -> ChainBlock | None:
    """A remembered block."""
    return session.get(ChainBlock, block_number)


def list_chain_blocks(*, session: Session, up_to: int | None = None) -> Sequence[ChainBlock]:
    """Remembered blocks, ascending."""
    query = select(ChainBlock).order_by(ChainBlock.block_number)
    if up_to is not None:
        query = query.where(ChainBlock.block_number <= up_to)
    return session.scalars(query).all()


def prune_chain_blocks(*, session: Session, below: int) -> None:
    """Forget remembered blocks below ``below`` that hold no event."""
    has_event = select(ChainEvent.id).where(ChainEvent.block_number == ChainBlock.block_number).exists()
    session.execute(
        delete(ChainBlock)
        .where(ChainBlock.block_number < below, ~has_event)
        .execution_options(synchronize_session=False)
    )


def delete_chain_data_after(*, session: Session, block_number: int) -> None:
    """Delete every chain-derived row above ``block_number`` (membership is rebuilt by the caller)."""
    for model in (ChainEvent, ChainBlock, Batch, Revocation, Recall):
        session.execute(
            delete(model)
            .where(model.block_number > block_number)  # type: ignore[attr-defined]
            .execution_options(synchronize_session=False)
        )
