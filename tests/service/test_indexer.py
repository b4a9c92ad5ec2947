"""Chain indexer against a real Anvil chain, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import logging
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.providers.rpc import HTTPProvider

from certificate_service.db.models import Batch, ChainEvent, Member, MemberPeriod, Recall, Revocation
from certificate_service.indexer import ChainDataError, ChainIndexer, ChainUnavailableError
from certificate_service.repositories import anchors, chain, members
from chain_node.anvil import AnvilProcess, free_port, start_anvil
from trace_sdk.protocol.hashing import from_hex, leaf_hash
from trace_sdk.protocol.merkle import MerkleTree

if TYPE_CHECKING:  # conftest helpers reach the tests through fixtures; imported for annotations only
    from collections.abc import Callable

    from conftest import ConsortiumChain, IndexerFactory

OPEN_RANGE = 2**64 - 1


def _count(session: Session, model: Any) -> int:
    """Rows in a table."""
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _counts(factory: sessionmaker[Session]) -> dict[str, int]:
    """Row counts of every chain-derived table."""
    with factory() as session:
        return {
            m.__tablename__: _count(session, m) for m in (ChainEvent, Member, MemberPeriod, Batch, Revocation, Recall)
        }


def _assert_members_match_chain(factory: sessionmaker[Session], consortium: ConsortiumChain) -> None:
    """Every member entry and membership range equals what the registry reports."""
    registry = consortium.registry.functions
    accounts = registry.memberAddresses().call()
    with factory() as session:
        stored = members.list_members(session=session)
        assert {m.address for m in stored} == set(accounts)
        for account in accounts:
            entry = registry.member(account).call()  # (identity, roles, active, successor, name, code)
            row = members.get_member(session=session, address=account)
            assert row is not None
            assert (row.identity_id, row.roles, row.active, row.name, row.code) == (
                entry[0],
                entry[1],
                entry[2],
                entry[4],
                entry[5],
            )
            assert (row.successor_address or "0x" + "00" * 20) == entry[3]
            fingerprint = "0x" + registry.issuerFingerprint(account).call().hex()
            assert (row.issuer_fingerprint or "0x" + "00" * 32) == fingerprint
            history = [(r[0], None if r[1] == OPEN_RANGE else r[1]) for r in registry.membershipHistory(account).call()]
            periods = members.list_member_periods(session=session, address=account)
            assert [(p.from_block, p.to_block) for p in periods] == history


def _assert_complete(factory: sessionmaker[Session], consortium: ConsortiumChain) -> None:
    """The database holds exactly the chain's events, each once."""
    with factory() as session:
        assert chain.count_chain_events(session=session) == consortium.chain_log_count()
        distinct = session.scalar(
            select(func.count()).select_from(select(ChainEvent.tx_hash, ChainEvent.log_index).distinct().subquery())
        )
        assert distinct == chain.count_chain_events(session=session)


def test_indexes_members_batches_revocations_recalls(
    indexer_chain: ConsortiumChain, indexer_factory: IndexerFactory, db_session_factory: sessionmaker[Session]
) -> None:
    c = indexer_chain
    root, record_hash = c.anchor_batch(count=1)
    other_root, _ = c.anchor_batch(count=5, sender=c.regulator)
    # Another member's root that also contains the record's (public) leaf, revoked there first.
    foreign = MerkleTree([leaf_hash(from_hex(record_hash)), leaf_hash(secrets.token_bytes(32))])
    c.send(c.anchor.functions.anchorBatch(foreign.root, 2, 1), c.regulator)
    c.send(c.anchor.functions.revokeRecord(foreign.root, record_hash, foreign.proof(0), "他方撤销"), c.regulator)
    c.revoke(root, record_hash, reason="标签错误")
    trace_code_hash = c.recall("LOT-2026-0001", reason="非洲猪瘟阳性")

    indexer = indexer_factory(c.w3, c.deployment)
    applied = indexer.run_once()
    assert applied == c.chain_log_count()
    assert indexer.is_leader
    _assert_complete(db_session_factory, c)
    _assert_members_match_chain(db_session_factory, c)

    with db_session_factory() as session:
        batch = anchors.get_batch(session=session, root=root)
        assert batch is not None
        assert (batch.agency_address, batch.count, batch.schema_version) == (c.agency, 1, 1)
        block = c.w3.eth.get_block(batch.block_number)
        assert batch.block_time == datetime.fromtimestamp(block["timestamp"], UTC)
        assert batch.tx_hash in {tx.to_0x_hex() for tx in block["transactions"]}
        other = anchors.get_batch(session=session, root=other_root)
        assert other is not None and (other.agency_address, other.count) == (c.regulator, 5)
        revocation = anchors.get_revocation(session=session, root=root, record_hash=record_hash)
        assert revocation is not None
        assert (revocation.root, revocation.reason, revocation.revoked_by) == (root, "标签错误", c.agency)
        revocation = anchors.get_revocation(session=session, root="0x" + foreign.root.hex(), record_hash=record_hash)
        assert revocation is not None and (revocation.reason, revocation.revoked_by) == ("他方撤销", c.regulator)
        assert anchors.get_revocation(session=session, root=other_root, record_hash=record_hash) is None
        assert anchors.count_revocations(session=session) == 2
        recall = anchors.get_recall(session=session, trace_code_hash=trace_code_hash)
        assert recall is not None and (recall.reason, recall.recalled_by) == ("非洲猪瘟阳性", c.regulator)
        checkpoint = chain.get_checkpoint(session=session, follower="main")
        assert checkpoint is not None
        assert checkpoint.block_number == c.w3.eth.block_number
        assert checkpoint.block_hash == c.w3.eth.get_block(checkpoint.block_number)["hash"].to_0x_hex()
        # identity ids follow the registry
        assert [m.identity_id for m in members.list_members(session=session)] == [1, 2, 3]
        assert members.was_member_at(session=session, address=c.agency, block_number=batch.block_number)
        assert not members.was_member_at(session=session, address=c.issuer, block_number=batch.block_number)

    assert indexer.run_once() == 0  # nothing new


@pytest.mark.parametrize("chunk_blocks", [1, 2000], ids=["block-by-block", "one-chunk"])
def test_governance_rotation_roles_fingerprint(
    indexer_chain: ConsortiumChain,
    indexer_factory: IndexerFactory,
    db_session_factory: sessionmaker[Session],
    chunk_blocks: int,
) -> None:
    c = indexer_chain
    newcomer, rotated_agency = c.spare[0], c.spare[1]
    indexer = indexer_factory(c.w3, c.deployment, chunk_blocks=chunk_blocks)
    indexer.run_once()

    fingerprint = "0x" + "ab" * 32
    c.govern("proposeSetIssuerFingerprint", c.issuer, fingerprint)
    c.govern("proposeAddMember", newcomer, "海关", "CUSTOMS-01", 1)
    c.govern("proposeSetRoles", c.issuer, 4 | 1)  # issuer becomes a MEMBER too: a period opens
    c.govern("proposeSetRoles", c.issuer, 4)  # ... and closes again
    c.govern("proposeRotateKey", c.issuer, rotated_agency)  # fingerprint moves with the key
    c.govern("proposeSetThreshold", 2)
    c.govern("proposeRemoveMember", newcomer)
    c.anchor_batch()

    assert indexer.run_once() > 0
    _assert_complete(db_session_factory, c)
    _assert_members_match_chain(db_session_factory, c)
    with db_session_factory() as session:
        holder = members.get_member_by_fingerprint(session=session, fingerprint=fingerprint)
        assert holder is not None and holder.address == rotated_agency
        old = members.get_member(session=session, address=c.issuer)
        assert old is not None and not old.active and old.successor_address == rotated_agency
        identity = members.list_identity_members(session=session, identity_id=old.identity_id)
        assert [m.address for m in identity] == [c.issuer, rotated_agency]
        removed = members.get_member(session=session, address=newcomer)
        assert removed is not None and not removed.active
        assert chain.count_chain_events(session=session, event_name="ThresholdChanged") == 1
        assert chain.count_chain_events(session=session, event_name="ProposalExecuted") == 7


def test_restart_continues_without_gaps_or_duplicates(
    indexer_chain: ConsortiumChain, indexer_factory: IndexerFactory, db_session_factory: sessionmaker[Session]
) -> None:
    c = indexer_chain
    c.anchor_batch()
    first = indexer_factory(c.w3, c.deployment, chunk_blocks=2)
    first.run_once()
    first.close()
    before = _counts(db_session_factory)

    for _ in range(3):
        c.anchor_batch()
    c.recall("LOT-RESTART-01")
    second = indexer_factory(c.w3, c.deployment, chunk_blocks=2)  # new object, same database
    assert second.run_once() == 4  # three batches + one recall
    after = _counts(db_session_factory)
    assert after["batches"] == before["batches"] + 3
    assert after["recalls"] == before["recalls"] + 1
    _assert_complete(db_session_factory, c)

    # Even with the checkpoint lost, re-indexing from the deployment block adds nothing twice.
    with db_session_factory() as session, session.begin():
        chain.delete_checkpoint(session=session, follower="main")
    second.close()
    third = indexer_factory(c.w3, c.deployment)
    assert third.run_once() == 0
    assert _counts(db_session_factory) == after
    _assert_members_match_chain(db_session_factory, c)


def test_two_indexers_on_one_database_single_writer(
    indexer_chain: ConsortiumChain, indexer_factory: IndexerFactory, db_session_factory: sessionmaker[Session]
) -> None:
    c = indexer_chain
    c.anchor_batch()
    leader = indexer_factory(c.w3, c.deployment, chunk_blocks=1)
    follower = indexer_factory(c.w3, c.deployment, chunk_blocks=1)
    assert leader.run_once() > 0
    assert follower.run_once() == 0
    assert leader.is_leader and not follower.is_leader

    # Both loop concurrently while events arrive: only the leader writes, nothing is duplicated.
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop(indexer: ChainIndexer) -> None:
        while not stop.is_set():
            try:
                indexer.run_once()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=loop, args=(ix,)) for ix in (leader, follower)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(4):
            c.anchor_batch()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert follower.applied_total == 0 and not follower.is_leader
    leader.run_once()
    _assert_complete(db_session_factory, c)
    with db_session_factory() as session:
        assert anchors.count_batches(session=session) == 5

    # The leader goes away: the follower takes over on its next attempt.
    leader.close()
    c.anchor_batch()
    assert follower.run_once() == 1
    assert follower.is_leader
    _assert_complete(db_session_factory, c)


_LOCK_HOLDER = """
import sys
from certificate_service.db.engine import create_db_engine
from certificate_service.indexer import make_writer_lock
lock = make_writer_lock(create_db_engine(sys.argv[1]), "main")
print("locked" if lock.acquire() else "busy", flush=True)
sys.stdin.read()
"""


def test_lock_held_by_another_process(
    indexer_chain: ConsortiumChain,
    indexer_factory: IndexerFactory,
    db_engine: Engine,
    db_session_factory: sessionmaker[Session],
) -> None:
    c = indexer_chain
    c.anchor_batch()
    url = db_engine.url.render_as_string(hide_password=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        indexer = indexer_factory(c.w3, c.deployment)
        assert indexer.run_once() == 0 and not indexer.is_leader
        assert _counts(db_session_factory)["chain_events"] == 0
    finally:
        holder.kill()  # the lock dies with its process (flock / PostgreSQL session)
        holder.wait(timeout=30)
    deadline = time.monotonic() + 30
    while indexer.run_once() == 0 and time.monotonic() < deadline:  # PG notices the closed session
        time.sleep(0.1)
    assert indexer.is_leader
    _assert_complete(db_session_factory, c)


def test_confirmations_hold_back_recent_blocks(
    indexer_chain: ConsortiumChain, indexer_factory: IndexerFactory, db_session_factory: sessionmaker[Session]
) -> None:
    c = indexer_chain
    indexer = indexer_factory(c.w3, c.deployment, confirmations=3)
    indexer.run_once()
    root, _ = c.anchor_batch()
    c.mine(2)
    indexer.run_once()
    with db_session_factory() as session:
        assert anchors.get_batch(session=session, root=root) is None
        checkpoint = chain.get_checkpoint(session=session, follower="main")
        assert checkpoint is not None and checkpoint.block_number == c.w3.eth.block_number - 3
    c.mine(1)
    assert indexer.run_once() == 1
    with db_session_factory() as session:
        assert anchors.get_batch(session=session, root=root) is not None


class _FlakyProvider(HTTPProvider):
    """An HTTP provider whose first ``failures`` requests fail like a dead node."""

    def __init__(self, endpoint: str, failures: int) -> None:
        super().__init__(endpoint, request_kwargs={"timeout": 30})
        self.remaining_failures = failures

    def make_request(self, method: Any, params: Any) -> Any:
        if self.remaining_failures > 0:
            self.remaining_failures -= 1
            raise ConnectionError("connection refused (simulated)")
        return super().make_request(method, params)


def test_chain_unreachable(
    indexer_chain: ConsortiumChain,
    indexer_factory: IndexerFactory,
    db_session_factory: sessionmaker[Session],
    anvil: AnvilProcess,
) -> None:
    c = indexer_chain
    dead = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{free_port()}", request_kwargs={"timeout": 5}))
    indexer = indexer_factory(dead, c.deployment)
    with pytest.raises(ChainUnavailableError):
        indexer.run_once()
    indexer.close()

    other_chain = c.deployment.model_copy(update={"chain_id": c.deployment.chain_id + 1})
    wrong_chain = indexer_factory(c.w3, other_chain)
    with pytest.raises(ChainDataError, match="chain"):
        wrong_chain.run_once()
    wrong_chain.close()

    # run_forever logs, backs off and keeps going until the node answers.
    flaky = Web3(_FlakyProvider(anvil.rpc_url, failures=3))
    looping = indexer_factory(flaky, c.deployment, poll_interval_s=0.01, max_backoff_s=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=looping.run_forever, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with db_session_factory() as session:
                if chain.get_checkpoint(session=session, follower="main") is not None:
                    break
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert flaky.provider.remaining_failures == 0  # type: ignore[attr-defined]
    assert not looping.is_leader  # run_forever released the lock on exit
    _assert_complete(db_session_factory, c)


@pytest.fixture(scope="module")
def indexer_private_anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilProcess]:
    """An Anvil of this module alone: reorg tests revert its snapshots without touching the shared chain."""
    node = start_anvil(accounts=6, log_path=tmp_path_factory.mktemp("anvil-reorg") / "anvil.log")
    try:
        yield node
    finally:
        node.stop()


def test_reorg_rolls_back_and_reindexes(
    indexer_private_anvil: AnvilProcess,
    indexer_factory: IndexerFactory,
    indexer_make_consortium: Callable[[Web3, list[str]], ConsortiumChain],
    db_session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="certificate_service.indexer")
    w3 = Web3(Web3.HTTPProvider(indexer_private_anvil.rpc_url, request_kwargs={"timeout": 30}))
    c = indexer_make_consortium(w3, indexer_private_anvil.private_keys)
    kept_root, _ = c.anchor_batch()
    indexer = indexer_factory(w3, c.deployment, chunk_blocks=2)
    indexer.run_once()

    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    lost_root, lost_record = c.anchor_batch()
    c.revoke(lost_root, lost_record)
    c.govern("proposeRemoveMember", c.issuer)
    c.recall("LOT-REORG-01")
    indexer.run_once()
    with db_session_factory() as session:
        assert anchors.get_batch(session=session, root=lost_root) is not None
        issuer = members.get_member(session=session, address=c.issuer)
        assert issuer is not None and not issuer.active

    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True  # type: ignore[arg-type]
    new_root, _ = c.anchor_batch()  # the replacement chain, longer than the old one
    c.mine(8)

    indexer.run_once()
    with db_session_factory() as session:
        assert anchors.get_batch(session=session, root=kept_root) is not None
        assert anchors.get_batch(session=session, root=new_root) is not None
        assert anchors.get_batch(session=session, root=lost_root) is None
        assert anchors.count_revocations(session=session) == 0
        assert anchors.count_recalls(session=session) == 0
        checkpoint = chain.get_checkpoint(session=session, follower="main")
        assert checkpoint is not None
        assert checkpoint.block_hash == w3.eth.get_block(checkpoint.block_number)["hash"].to_0x_hex()
    assert any("rolled back" in r.getMessage() for r in caplog.records)
    _assert_complete(db_session_factory, c)
    _assert_members_match_chain(db_session_factory, c)  # the removal was undone


def test_reorg_to_a_shorter_chain(
    indexer_private_anvil: AnvilProcess,
    indexer_factory: IndexerFactory,
    indexer_make_consortium: Callable[[Web3, list[str]], ConsortiumChain],
    db_session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="certificate_service.indexer")
    w3 = Web3(Web3.HTTPProvider(indexer_private_anvil.rpc_url, request_kwargs={"timeout": 30}))
    c = indexer_make_consortium(w3, indexer_private_anvil.private_keys)
    indexer = indexer_factory(w3, c.deployment)
    indexer.run_once()
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    for _ in range(3):
        c.anchor_batch()
    indexer.run_once()
    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True  # type: ignore[arg-type]
    c.anchor_batch()  # one block: the chain is now shorter than the checkpoint

    indexer.run_once()
    with db_session_factory() as session:
        assert anchors.count_batches(session=session) == 1
    assert any("rolled back" in r.getMessage() for r in caplog.records)
    _assert_complete(db_session_factory, c)
