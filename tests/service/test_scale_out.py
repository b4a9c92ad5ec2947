"""Two service processes on one database: exactly one indexes, nothing twice, the other takes over."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select
from web3 import Web3

from certificate_service.db.models import Batch, ChainCheckpoint, ChainEvent
from tests.support.service import ServiceProcess, write_deployment
from trace_sdk.client.agency import AgencyClient


def _wait_indexed(url: str, block: int, timeout_s: float = 60.0) -> int:
    """Wait until the checkpoint reaches ``block``; the checkpoint (everything up to it is indexed)."""
    engine = create_engine(url)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                done = connection.execute(select(func.max(ChainCheckpoint.block_number))).scalar()
            if done is not None and done >= block:
                return int(done)
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise AssertionError(f"the indexer did not reach block {block}")


def _indexed(url: str, up_to: int) -> tuple[int, int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            events = connection.execute(
                select(func.count()).select_from(ChainEvent).where(ChainEvent.block_number <= up_to)
            ).scalar_one()
            distinct = connection.execute(
                select(func.count()).select_from(
                    select(ChainEvent.tx_hash, ChainEvent.log_index)
                    .where(ChainEvent.block_number <= up_to).distinct().subquery()
                )
            ).scalar_one()
            batches = connection.execute(
                select(func.count()).select_from(Batch).where(Batch.block_number <= up_to)
            ).scalar_one()
        return int(events), int(distinct), int(batches)
    finally:
        engine.dispose()


def _chain_facts(consortium: Any, up_to: int) -> tuple[int, int]:
    w3 = Web3(Web3.HTTPProvider(consortium.rpc_url))
    deployment = consortium.deployment
    logs = w3.eth.get_logs({
        "address": [deployment.registry, deployment.anchor],
        "fromBlock": deployment.deployment_block,
        "toBlock": up_to,
    })
    batch_anchored = Web3.keccak(text="BatchAnchored(bytes32,address,uint256,uint8)")
    anchored = sum(1 for log in logs if log["address"] == deployment.anchor and log["topics"][0] == batch_anchored)
    return len(logs), anchored


def test_two_service_processes_index_every_event_exactly_once(
    database_url: str, consortium: Any, sample_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    data_dir = tmp_path / "shared-data"
    write_deployment(data_dir, consortium.deployment, consortium.rpc_url)
    first = ServiceProcess(data_dir=data_dir, rpc_url=consortium.rpc_url, database_url=database_url).start()
    second = ServiceProcess(data_dir=data_dir, rpc_url=consortium.rpc_url, database_url=database_url).start()
    w3 = Web3(Web3.HTTPProvider(consortium.rpc_url))
    try:
        with AgencyClient(first.url, consortium.rpc_url, consortium.keys["customs"],
                          outbox_path=tmp_path / "outbox.sqlite3") as client:
            records = [dict(r, record_id=f"scale-{tmp_path.name[-8:]}-{i}") for i, r in enumerate(sample_records[:12])]
            client.submit(records[:6], batch_size=2)
            checkpoint = _wait_indexed(database_url, w3.eth.block_number)
            events, distinct, batches = _indexed(database_url, checkpoint)
            chain_events, chain_batches = _chain_facts(consortium, checkpoint)
            assert events == distinct == chain_events
            assert batches == chain_batches

            # Stop whichever process leads; the other takes the lock over and carries on without gaps.
            first.stop()
            client_second = AgencyClient(second.url, consortium.rpc_url, consortium.keys["customs"],
                                         outbox_path=tmp_path / "outbox.sqlite3")
            client_second.submit(records[6:], batch_size=3)
            client_second.close()
            checkpoint = _wait_indexed(database_url, w3.eth.block_number)
            events, distinct, batches = _indexed(database_url, checkpoint)
            chain_events, chain_batches = _chain_facts(consortium, checkpoint)
            assert events == distinct == chain_events
            assert batches == chain_batches
    finally:
        first.stop()
        second.stop()

