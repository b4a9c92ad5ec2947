"""Chain follower: indexes ConsortiumRegistry and TraceAnchor events into the service database.

One chunk of blocks is fetched (headers + ``eth_getLogs`` for both contracts), then applied together with
the checkpoint move in ONE transaction. Exactly-once comes from three layers: a single writer (PostgreSQL
advisory lock / flock next to the SQLite file), a compare-and-set on the checkpoint row, and the unique
(tx_hash, log_index) of the processed-events table. A reorg is detected by comparing stored block hashes
with the chain; everything above the fork is deleted, membership is replayed from the stored events and
indexing resumes from the fork.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic, to_checksum_address
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool
from web3 import Web3
from web3.exceptions import BlockNotFound, ProviderConnectionError, Web3Exception, Web3RPCError

from certificate_service.core.config import DeploymentInfo
from certificate_service.db.engine import begin_write, sqlite_path
from certificate_service.db.models import Member
from certificate_service.repositories import anchors, chain, members
from trace_sdk.client.contracts import ROLES

__all__ = [
    "ANCHOR_EVENTS",
    "REGISTRY_EVENTS",
    "ROLE_ISSUER",
    "ROLE_MEMBER",
    "ROLE_REGULATOR",
    "ChainDataError",
    "ChainIndexer",
    "ChainUnavailableError",
    "FileWriterLock",
    "IndexerError",
    "PostgresAdvisoryLock",
    "ProcessLocalLock",
    "WriterLock",
    "load_event_abis",
    "make_writer_lock",
]

logger = logging.getLogger(__name__)

ROLE_MEMBER, ROLE_REGULATOR, ROLE_ISSUER = ROLES["MEMBER"], ROLES["REGULATOR"], ROLES["ISSUER"]

# The events of docs/interfaces.md, per contract.
REGISTRY_EVENTS: tuple[str, ...] = (
    "MemberAdded",
    "MemberRemoved",
    "MemberRolesChanged",
    "MemberKeyRotated",
    "ThresholdChanged",
    "IssuerFingerprintSet",
    "AccountAllowanceSet",
    "ProposalCreated",
    "VoteCast",
    "ProposalExecuted",
)
ANCHOR_EVENTS: tuple[str, ...] = ("BatchAnchored", "RecordRevoked", "LotRecalled")
_MEMBERSHIP_EVENTS = (
    "MemberAdded",
    "MemberRemoved",
    "MemberRolesChanged",
    "MemberKeyRotated",
    "IssuerFingerprintSet",
)

_ZERO_HASH = "0x" + "00" * 32
_KEEP_BLOCKS = 4096  # recent block hashes kept (besides blocks holding events) for reorg detection
_HEADER_CACHE_SIZE = 4096
_MAX_ROLLBACKS_PER_RUN = 3

T = TypeVar("T")


# --- errors ---------------------------------------------------------------------------------------


class IndexerError(Exception):
    """Root of the indexer's errors."""


class ChainUnavailableError(IndexerError):
    """The JSON-RPC endpoint could not be reached (connection refused, timeout, transport failure)."""


class ChainDataError(IndexerError):
    """The node answered with an error or with data the indexer cannot use."""


class _ReorgDetectedError(Exception):
    """Internal: the chain changed under the chunk being fetched."""


class _LostRaceError(Exception):
    """Internal: another writer moved the checkpoint first."""


# --- single-writer locks --------------------------------------------------------------------------


class WriterLock(Protocol):
    """A non-blocking, re-checkable exclusive lock that designates the one indexing writer."""

    def acquire(self) -> bool:
        """Take (or confirm) the lock without waiting; True while this process holds it."""
        ...

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        ...

    @property
    def held(self) -> bool:
        """Whether this object believes it holds the lock."""
        ...


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key derived from ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PostgresAdvisoryLock:
    """``pg_try_advisory_lock`` held by a dedicated connection (outside the pool) for as long as it lives."""

    def __init__(self, engine: Engine, name: str) -> None:
        """Prepare a lock keyed by ``name``; connects only on :meth:`acquire`."""
        self._engine = create_engine(engine.url, poolclass=NullPool)
        self._key = _lock_key(name)
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        """Whether the dedicated connection holds the lock."""
        return self._conn is not None

    def acquire(self) -> bool:
        """Try the lock; when already held, check that its connection is still alive."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                self._conn.commit()
                return True
            except Exception:  # the server dropped the session: the lock is gone with it
                logger.warning("indexer lock connection lost; leadership released")
                self._drop()
        try:
            conn = self._engine.connect()
        except OperationalError as exc:
            logger.warning("cannot connect for the indexer lock: %s", exc)
            return False
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}).scalar())
            conn.commit()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        """Unlock and close the dedicated connection."""
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            self._conn.commit()
        except Exception:  # closing the session releases it anyway
            logger.debug("advisory unlock failed", exc_info=True)
        self._drop()

    def _drop(self) -> None:
        """Close the dedicated connection, ignoring errors."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                logger.debug("closing the lock connection failed", exc_info=True)

    def close(self) -> None:
        """Release and dispose of the lock's engine."""
        self.release()
        self._engine.dispose()


class FileWriterLock:
    """An exclusive ``fcntl.flock`` on a lock file (next to the SQLite database)."""

    def __init__(self, path: Path) -> None:
        """Prepare a lock on ``path`` (created on first use)."""
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the flock."""
        return self._fd is not None

    def acquire(self) -> bool:
        """Try the flock without waiting."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        """Unlock and close the file."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def close(self) -> None:
        """Same as :meth:`release`."""
        self.release()


class ProcessLocalLock:
    """A lock shared by the indexers of one process (for in-memory SQLite, which no other process sees)."""

    _registry: dict[str, threading.Lock] = {}  # noqa: RUF012 - deliberately shared by all instances
    _registry_guard = threading.Lock()

    def __init__(self, name: str) -> None:
        """Prepare the process-wide lock called ``name``."""
        with self._registry_guard:
            self._lock = self._registry.setdefault(name, threading.Lock())
        self._held = False

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._held

    def acquire(self) -> bool:
        """Try the lock without waiting."""
        if not self._held:
            self._held = self._lock.acquire(blocking=False)
        return self._held

    def release(self) -> None:
        """Release the lock."""
        if self._held:
            self._held = False
            self._lock.release()

    def close(self) -> None:
        """Same as :meth:`release`."""
        self.release()


def make_writer_lock(engine: Engine, follower: str) -> WriterLock:
    """The right single-writer lock for ``engine``'s backend."""
    name = f"tracechain:indexer:{follower}"
    if engine.dialect.name == "postgresql":
        return PostgresAdvisoryLock(engine, name)
    path = sqlite_path(engine.url)
    if path is not None:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in follower)
        return FileWriterLock(path.with_name(f"{path.name}.indexer-{safe}.lock"))
    return ProcessLocalLock(f"{name}:{id(engine)}")


# --- ABIs -----------------------------------------------------------------------------------------


def _artifact_abi(name: str) -> list[dict[str, Any]]:
    """The ABI of a compiled contract artifact (``trace_sdk.client.contracts.load_artifact``)."""
    from trace_sdk.client.contracts import load_artifact  # imported late: the SDK loads web3 contracts

    artifact = load_artifact(name)
    abi = artifact["abi"] if isinstance(artifact, Mapping) else artifact.abi
    return list(abi)


def load_event_abis(
    loader: Callable[[str], Sequence[Mapping[str, Any]]] = _artifact_abi,
) -> dict[str, list[dict[str, Any]]]:
    """The ABI entries of the followed events, per contract name; fails if an artifact lacks one."""
    result: dict[str, list[dict[str, Any]]] = {}
    for contract, names in (("ConsortiumRegistry", REGISTRY_EVENTS), ("TraceAnchor", ANCHOR_EVENTS)):
        try:
            abi = loader(contract)
        except Exception as exc:
            raise IndexerError(f"cannot load the {contract} ABI: {exc}") from exc
        events = {e["name"]: dict(e) for e in abi if e.get("type") == "event" and e.get("name") in names}
        missing = [n for n in names if n not in events]
        if missing:
            raise IndexerError(f"{contract} ABI lacks event(s) {', '.join(missing)} (see docs/interfaces.md)")
        result[contract] = [events[n] for n in names]
    return result


# --- fetched chain data ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Header:
    """The parts of a block header the indexer needs."""

    number: int
    hash: str
    parent_hash: str
    time: datetime


@dataclass(frozen=True, slots=True)
class _Event:
    """A decoded, normalised event ready to apply."""

    name: str
    contract: str
    args: dict[str, Any]
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    block_time: datetime


def _hex(value: Any) -> str:
    """``0x`` lowercase hex of bytes / HexBytes / hex strings."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text_value = str(value).lower()
    return text_value if text_value.startswith("0x") else "0x" + text_value


@lru_cache(maxsize=4096)
def _checksum(address: str) -> str:
    """EIP-55 form of an address (cached: members and agencies repeat in every chunk)."""
    return to_checksum_address(address)


def _json_value(kind: str, value: Any) -> Any:
    """A decoded ABI value in the JSON form stored in chain_events: 0x hex, checksummed, int, bool, str."""
    if kind == "address":
        return _checksum(str(value))
    if isinstance(value, bytes | bytearray):
        return _hex(value)
    if isinstance(value, bool | int | str) or value is None:
        return value
    return str(value)


@dataclass(frozen=True, slots=True)
class _EventCodec:
    """Decoder of one event ABI (straight eth_abi: web3's process_log is ~50x slower per log)."""

    name: str
    topic: str
    indexed: tuple[tuple[str, str], ...]
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]

    @classmethod
    def from_abi(cls, abi: Mapping[str, Any]) -> _EventCodec:
        """Prepare the decoder of an ABI event entry."""
        inputs = list(abi["inputs"])
        return cls(
            name=str(abi["name"]),
            topic=_hex(event_abi_to_log_topic(dict(abi))),
            indexed=tuple((i["name"], i["type"]) for i in inputs if i.get("indexed")),
            data_names=tuple(i["name"] for i in inputs if not i.get("indexed")),
            data_types=tuple(i["type"] for i in inputs if not i.get("indexed")),
        )

    def decode(self, topics: Sequence[Any], data: Any) -> dict[str, Any]:
        """The event's arguments in JSON form."""
        if len(topics) != len(self.indexed) + 1:
            raise ValueError(f"expected {len(self.indexed) + 1} topics, got {len(topics)}")
        args: dict[str, Any] = {}
        for (name, kind), topic in zip(self.indexed, topics[1:], strict=True):
            raw = bytes.fromhex(_hex(topic)[2:])
            dynamic = kind in ("string", "bytes") or kind.endswith("]") or kind.startswith("tuple")
            args[name] = _hex(raw) if dynamic else _json_value(kind, abi_decode([kind], raw)[0])
        payload = bytes.fromhex(_hex(data)[2:]) if data else b""
        values = abi_decode(list(self.data_types), payload) if self.data_types else ()
        for name, kind, value in zip(self.data_names, self.data_types, values, strict=True):
            args[name] = _json_value(kind, value)
        return args


# --- the indexer ----------------------------------------------------------------------------------


class ChainIndexer:
    """Follows both contracts into the database; safe to run in every worker (only one writes)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        w3: Web3,
        deployment: DeploymentInfo,
        confirmations: int = 0,
        *,
        follower: str = "main",
        chunk_blocks: int = 2000,
        poll_interval_s: float = 0.5,
        max_backoff_s: float = 30.0,
        lock_retry_s: float = 2.0,
        lock: WriterLock | None = None,
        event_abis: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    ) -> None:
        """Bind the indexer to a database, a chain and a deployment; nothing is fetched yet."""
        if confirmations < 0 or chunk_blocks < 1:
            raise ValueError("confirmations must be >= 0 and chunk_blocks >= 1")
        self._sessions = session_factory
        self._w3 = w3
        self._deployment = deployment
        self.confirmations = confirmations
        self.follower = follower
        self.chunk_blocks = chunk_blocks
        self.poll_interval_s = poll_interval_s
        self.max_backoff_s = max(max_backoff_s, poll_interval_s)
        self.lock_retry_s = lock_retry_s
        if lock is None:
            bind = session_factory.kw.get("bind")
            if not isinstance(bind, Engine):
                raise ValueError("session_factory must be bound to an Engine (or pass lock=)")
            lock = make_writer_lock(bind, follower)
        self._lock = lock
        self._addresses = {
            "ConsortiumRegistry": _checksum(deployment.registry_address),
            "TraceAnchor": _checksum(deployment.anchor_address),
        }
        abis = event_abis if event_abis is not None else load_event_abis()
        self._codecs: dict[tuple[str, str], _EventCodec] = {}
        for contract, address in self._addresses.items():
            for abi in abis[contract]:
                codec = _EventCodec.from_abi(abi)
                self._codecs[(address, codec.topic)] = codec
        self._headers: OrderedDict[int, _Header] = OrderedDict()
        self._applied_total = 0
        self._chain_checked = False

    # -- public API ---------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """Whether this indexer currently holds the single-writer lock."""
        return self._lock.held

    @property
    def applied_total(self) -> int:
        """Events applied by this object since it was created."""
        return self._applied_total

    def run_once(self) -> int:
        """Index up to head − confirmations; returns the number of newly applied events (0 as follower).

        Raises :class:`ChainUnavailableError` when the node cannot be reached and :class:`ChainDataError`
        when it answers with an error.
        """
        if not self._lock.acquire():
            return 0
        applied = self._sync()
        self._applied_total += applied
        return applied

    def run_forever(self, stop_event: threading.Event) -> None:
        """Poll until ``stop_event`` is set; errors are logged and retried with backoff, never raised."""
        failures = 0
        try:
            while not stop_event.is_set():
                try:
                    self.run_once()
                except Exception as exc:
                    failures += 1
                    delay = min(self.max_backoff_s, self.poll_interval_s * 2 ** min(failures, 16))
                    if isinstance(exc, ChainUnavailableError | OperationalError):
                        logger.warning("indexer: %s; retrying in %.1fs", exc, delay)
                    else:
                        logger.exception("indexer cycle failed; retrying in %.1fs", delay)
                else:
                    if failures:
                        logger.info("indexer: recovered after %d failed attempt(s)", failures)
                    failures = 0
                    delay = self.poll_interval_s if self._lock.held else self.lock_retry_s
                stop_event.wait(delay)
        finally:
            self.close()

    def close(self) -> None:
        """Release the writer lock (another process may take over)."""
        closer = getattr(self._lock, "close", None)
        if callable(closer):
            closer()
        else:
            self._lock.release()

    # -- sync ---------------------------------------------------------------------------------------

    def _sync(self) -> int:
        """Catch up from the checkpoint to the confirmed head, chunk by chunk, rolling back reorgs."""
        if not self._chain_checked:
            chain_id = self._rpc(lambda: int(self._w3.eth.chain_id))
            if chain_id != self._deployment.chain_id:
                raise ChainDataError(
                    f"the node serves chain {chain_id}; the deployment is on {self._deployment.chain_id}"
                )
            self._chain_checked = True
        head = self._rpc(lambda: int(self._w3.eth.block_number))
        target = head - self.confirmations
        applied = 0
        for _attempt in range(_MAX_ROLLBACKS_PER_RUN + 1):
            with self._sessions() as session:
                checkpoint = chain.get_checkpoint(session=session, follower=self.follower)
                cursor = (checkpoint.block_number, checkpoint.block_hash) if checkpoint else None
            if cursor is not None:
                current = self._header_or_none(cursor[0], refresh=True)
                if current is None or current.hash != cursor[1]:
                    logger.warning("indexer: block %d changed (reorg); rolling back", cursor[0])
                    self._rollback()
                    continue
            start = cursor[0] + 1 if cursor else self._deployment.deployment_block
            try:
                while start <= target:
                    if not self._lock.acquire():
                        return applied
                    end = min(start + self.chunk_blocks - 1, target)
                    count, cursor = self._index_chunk(start, end, cursor)
                    applied += count
                    start = end + 1
                return applied
            except _ReorgDetectedError:
                logger.warning("indexer: the chain reorganised under block %d; rolling back", start)
                self._rollback()
            except _LostRaceError as exc:
                logger.warning("indexer: another writer advanced the checkpoint (%s); yielding", exc.__cause__)
                return applied
        return applied

    def _index_chunk(self, start: int, end: int, cursor: tuple[int, str] | None) -> tuple[int, tuple[int, str]]:
        """Fetch and apply blocks ``start..end`` in one transaction; returns (applied, new cursor)."""
        first = self._header(start)
        if cursor is not None and first.parent_hash != cursor[1]:
            raise _ReorgDetectedError
        last = self._header(end)
        logs = self._get_logs(start, end)
        events: list[_Event] = []
        for log in sorted(logs, key=lambda item: (int(item["blockNumber"]), int(item["logIndex"]))):
            if log.get("removed"):
                continue
            decoded = self._decode(log)
            if decoded is not None:
                events.append(decoded)
        if self._header(end, refresh=True).hash != last.hash:
            raise _ReorgDetectedError
        try:
            with self._write_transaction() as session:
                applied = self._apply_chunk(session, events, end, last, cursor)
        except IntegrityError as exc:
            raise _LostRaceError from exc
        if applied:
            logger.info("indexer: blocks %d-%d, %d event(s)", start, end, applied)
        return applied, (end, last.hash)

    def _apply_chunk(
        self, session: Session, events: Sequence[_Event], end: int, last: _Header, cursor: tuple[int, str] | None
    ) -> int:
        """Claim the checkpoint, apply the not-yet-processed events and remember block hashes."""
        applied = 0
        expected = cursor[0] if cursor else None
        claimed = chain.claim_checkpoint(
            session=session,
            follower=self.follower,
            expected_block=expected,
            block_number=end,
            block_hash=last.hash,
        )
        if not claimed:
            raise _LostRaceError
        done = chain.processed_event_keys(session=session, tx_hashes={e.tx_hash for e in events})
        for event in events:
            if (event.tx_hash, event.log_index) in done:
                continue
            chain.add_chain_event(
                session=session,
                tx_hash=event.tx_hash,
                log_index=event.log_index,
                block_number=event.block_number,
                block_hash=event.block_hash,
                contract_address=event.contract,
                event_name=event.name,
                args=event.args,
            )
            _apply(session, event.name, event.args, event.block_number, event.block_time, event.tx_hash)
            applied += 1
        blocks = {e.block_number: (e.block_hash, e.block_time) for e in events}
        blocks[end] = (last.hash, last.time)
        for number, (block_hash, block_time) in sorted(blocks.items()):
            chain.put_chain_block(session=session, block_number=number, block_hash=block_hash, block_time=block_time)
        chain.prune_chain_blocks(session=session, below=end - _KEEP_BLOCKS)
        return applied

    def _rollback(self) -> None:
        """Find the fork point among the stored block hashes and delete everything above it."""
        self._headers.clear()
        with self._sessions() as session:
            stored = [(b.block_number, b.block_hash) for b in chain.list_chain_blocks(session=session)]
        # Binary search: if a stored block still matches, every block below it matches too.
        low, high, ancestor = 0, len(stored) - 1, None
        while low <= high:
            mid = (low + high) // 2
            number, block_hash = stored[mid]
            header = self._header_or_none(number, refresh=True)
            if header is not None and header.hash == block_hash:
                ancestor, low = stored[mid], mid + 1
            else:
                high = mid - 1
        keep_up_to = ancestor[0] if ancestor else self._deployment.deployment_block - 1
        with self._write_transaction() as session:
            chain.delete_chain_data_after(session=session, block_number=keep_up_to)
            _rebuild_membership(session)
            if ancestor is None:
                chain.delete_checkpoint(session=session, follower=self.follower)
            else:
                chain.set_checkpoint(
                    session=session, follower=self.follower, block_number=ancestor[0], block_hash=ancestor[1]
                )
        logger.warning("indexer: rolled back to block %d; re-indexing from there", keep_up_to)

    @contextmanager
    def _write_transaction(self) -> Iterator[Session]:
        """A session in a write transaction (SQLite: BEGIN IMMEDIATE), committed on success."""
        with self._sessions() as session:
            begin_write(session)
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    # -- chain access -------------------------------------------------------------------------------

    def _rpc(self, call: Callable[[], T]) -> T:
        """Run a web3 call, mapping transport failures and node errors to the indexer's errors."""
        try:
            return call()
        except (OSError, ProviderConnectionError, TimeoutError) as exc:
            raise ChainUnavailableError(f"chain unreachable: {exc}") from exc
        except Web3RPCError as exc:
            raise ChainDataError(f"node error: {exc}") from exc
        except Web3Exception as exc:
            raise ChainDataError(f"web3 error: {exc}") from exc

    def _header_or_none(self, number: int, *, refresh: bool = False) -> _Header | None:
        """The header of block ``number`` (cached), or None if the chain has no such block."""
        if not refresh and number in self._headers:
            self._headers.move_to_end(number)
            return self._headers[number]

        def fetch() -> Any:
            try:
                return self._w3.eth.get_block(number)
            except BlockNotFound:
                return None

        block = self._rpc(fetch)
        if block is None:
            self._headers.pop(number, None)
            return None
        header = _Header(
            number=number,
            hash=_hex(block["hash"]),
            parent_hash=_hex(block["parentHash"]),
            time=datetime.fromtimestamp(int(block["timestamp"]), UTC),
        )
        self._headers[number] = header
        self._headers.move_to_end(number)
        while len(self._headers) > _HEADER_CACHE_SIZE:
            self._headers.popitem(last=False)
        return header

    def _header(self, number: int, *, refresh: bool = False) -> _Header:
        """The header of block ``number``; a missing block means the chain moved under us."""
        header = self._header_or_none(number, refresh=refresh)
        if header is None:
            raise _ReorgDetectedError
        return header

    def _get_logs(self, start: int, end: int) -> list[Any]:
        """``eth_getLogs`` of both contracts; a range the node refuses is split in halves."""
        params: Any = {"fromBlock": start, "toBlock": end, "address": list(self._addresses.values())}
        try:
            return list(self._rpc(lambda: self._w3.eth.get_logs(params)))
        except ChainDataError:
            if start == end:
                raise
            middle = (start + end) // 2
            return self._get_logs(start, middle) + self._get_logs(middle + 1, end)

    def _decode(self, log: Mapping[str, Any]) -> _Event | None:
        """Decode a log of a followed event (None for other events of the two contracts)."""
        topics = log.get("topics") or []
        if not topics:
            return None
        address = _checksum(str(log["address"]))
        codec = self._codecs.get((address, _hex(topics[0])))
        if codec is None:
            return None
        try:
            args = codec.decode(topics, log["data"])
        except Exception as exc:
            raise ChainDataError(f"cannot decode {codec.name} log {_hex(log['transactionHash'])}: {exc}") from exc
        block_number = int(log["blockNumber"])
        header = self._header(block_number)
        if header.hash != _hex(log["blockHash"]):
            raise _ReorgDetectedError
        return _Event(
            name=codec.name,
            contract=address,
            args=args,
            tx_hash=_hex(log["transactionHash"]),
            log_index=int(log["logIndex"]),
            block_number=block_number,
            block_hash=header.hash,
            block_time=header.time,
        )


# --- applying events (pure DB work, also used to replay membership after a reorg) -------------------


def _set_status(session: Session, member: Member, roles: int, active: bool, block_number: int) -> None:
    """Mirror ConsortiumRegistry._setStatus: roles, active flag and MEMBER periods (both ends inclusive)."""
    was_member = member.active and bool(member.roles & ROLE_MEMBER)
    is_member = active and bool(roles & ROLE_MEMBER)
    member.roles, member.active, member.updated_block = roles, active, block_number
    if was_member != is_member:
        if is_member:
            members.open_period(session=session, address=member.address, from_block=block_number)
        else:
            members.close_period(session=session, address=member.address, to_block=block_number)


def _existing_member(session: Session, address: str, event: str) -> Member | None:
    """The member an event refers to; logs and returns None for an unknown account."""
    member = members.get_member(session=session, address=address)
    if member is None:
        logger.warning("indexer: %s for unknown account %s ignored", event, address)
    return member


def _apply(
    session: Session,
    name: str,
    args: Mapping[str, Any],
    block_number: int,
    block_time: datetime,
    tx_hash: str,
) -> None:
    """Apply one decoded event to the derived tables."""
    if name == "MemberAdded":
        member = members.add_member(
            session=session,
            address=args["account"],
            identity_id=members.next_identity_id(session=session),
            name=args["name"],
            code=args["code"],
            block_number=block_number,
        )
        session.flush()
        _set_status(session, member, int(args["roles"]), True, block_number)
    elif name == "MemberRemoved":
        if (member := _existing_member(session, args["account"], name)) is not None:
            _set_status(session, member, member.roles, False, block_number)
    elif name == "MemberRolesChanged":
        if (member := _existing_member(session, args["account"], name)) is not None:
            _set_status(session, member, int(args["newRoles"]), True, block_number)
    elif name == "MemberKeyRotated":
        previous = _existing_member(session, args["previousAccount"], name)
        if previous is None:
            return
        successor = members.add_member(
            session=session,
            address=args["newAccount"],
            identity_id=previous.identity_id,
            name=previous.name,
            code=previous.code,
            block_number=block_number,
        )
        session.flush()
        previous.successor_address = successor.address
        roles = previous.roles
        _set_status(session, previous, roles, False, block_number)
        _set_status(session, successor, roles, True, block_number)
        successor.issuer_fingerprint, previous.issuer_fingerprint = previous.issuer_fingerprint, None
    elif name == "IssuerFingerprintSet":
        if (member := _existing_member(session, args["account"], name)) is not None:
            fingerprint = args["fingerprint"]
            member.issuer_fingerprint = None if fingerprint == _ZERO_HASH else fingerprint
            member.updated_block = block_number
    elif name == "BatchAnchored":
        anchors.add_batch(
            session=session,
            root=args["root"],
            agency_address=args["agency"],
            block_number=block_number,
            block_time=block_time,
            tx_hash=tx_hash,
            count=int(args["count"]),
            schema_version=int(args["schemaVersion"]),
        )
    elif name == "RecordRevoked":
        anchors.add_revocation(
            session=session,
            record_hash=args["recordHash"],
            root=args["root"],
            reason=args["reason"],
            revoked_by=args["revokedBy"],
            block_number=block_number,
            block_time=block_time,
            tx_hash=tx_hash,
        )
    elif name == "LotRecalled":
        anchors.add_recall(
            session=session,
            trace_code_hash=args["traceCodeHash"],
            reason=args["reason"],
            recalled_by=args["recalledBy"],
            block_number=block_number,
            block_time=block_time,
            tx_hash=tx_hash,
        )
    # ThresholdChanged, AccountAllowanceSet and the proposal events live in chain_events only.
    # Anchor rows need no existence check: the contract rejects duplicate roots, revocations and recalls,
    # and chain_events makes every log apply once. Membership rows are queried by later events of the
    # same chunk (the session does not autoflush), so they are flushed right away.
    if name in _MEMBERSHIP_EVENTS:
        session.flush()


def _rebuild_membership(session: Session) -> None:
    """Recompute members and periods by replaying the stored registry events in chain order."""
    members.clear_members(session=session)
    stored: Iterable[Any] = chain.list_chain_events(session=session, event_names=_MEMBERSHIP_EVENTS)
    for event in stored:  # membership handlers ignore the block time, so indexed_at stands in for it
        _apply(session, event.event_name, event.args, event.block_number, event.indexed_at, event.tx_hash)
