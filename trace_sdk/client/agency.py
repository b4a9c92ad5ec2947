"""`AgencyClient`: validate, hash and batch records, anchor each batch on chain, upload to the service.

Every accepted record is in the durable outbox (see :mod:`trace_sdk.client.outbox`) before anything is sent;
`submit()` and `flush()` resume unfinished batches first, so an unreachable chain or service, or a crash
between anchoring and uploading, neither loses nor duplicates a record.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import platformdirs
from eth_account import Account
from web3 import Web3
from web3.exceptions import TransactionNotFound

from trace_sdk.client.contracts import load_artifact
from trace_sdk.client.outbox import ANCHORED, SEALED, SIGNED, BatchRow, Outbox, PendingBatch
from trace_sdk.client.revert import decode_revert
from trace_sdk.client.service_api import ServiceClient
from trace_sdk.exceptions import (
    ChainError,
    ChainUnavailableError,
    ConflictError,
    ContractRevertError,
    DeliveryPendingError,
    FieldError,
    NotMemberError,
    ServiceError,
    ServiceUnavailableError,
    TraceError,
    ValidationError,
)
from trace_sdk.protocol.certificate_ids import certificate_id_for
from trace_sdk.protocol.hashing import keccak256, leaf_hash, salt_and_hash, salts_to_json, trace_code_hash
from trace_sdk.protocol.merkle import MerkleTree
from trace_sdk.protocol.records import prepare_records
from trace_sdk.verifier.chain_reader import ChainReader

__all__ = ["AgencyClient", "SubmitReceipt"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_UPLOAD_CHUNK = 1000
_BATCH_ANCHORED_TOPIC = keccak256(b"BatchAnchored(bytes32,address,uint256,uint8)")
_UPLOADS_IN_FLIGHT = 2  # the service checks one chunk while it stores the previous one
_MAX_REPLACEMENTS = 5
# How nodes (Geth, Besu, Anvil) say a broadcast transaction is already in the pool, mined or replaced.
_ALREADY_SEEN = ("already known", "already imported", "known transaction", "nonce too low", "underpriced")
_T = TypeVar("_T")

# Submissions this large are validated, canonicalised, salted and hashed by worker processes forked for the
# call (pure CPU work, ~0.13 ms per record; the workers inherit the records, only results travel back);
# smaller ones in-process, where starting workers costs more than it saves.
_POOL_MIN_RECORDS = 1_000
_POOL_CHUNK = 1_000
_POOL_MAX_WORKERS = 8
_pool_records: Sequence[Any] = ()  # the submission the forked workers read
_pool_lock = threading.Lock()

# (index, record, canonical bytes, content sha256, (salts JSON, record hash) or None)
_Candidate = tuple[int, dict[str, Any], bytes, str, tuple[str, bytes] | None]


@dataclass(frozen=True)
class SubmitReceipt:
    """Where a submitted record ended up."""

    record_id: str
    record_hash: str
    merkle_root: str
    tx_hash: str | None
    block_number: int | None
    certificate_id: str
    uploaded: bool = True


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _tx_hex(value: Any) -> str:
    """A transaction hash from a receipt (HexBytes or hex text) as lowercase ``0x`` hex."""
    return value.to_0x_hex() if hasattr(value, "to_0x_hex") else "0x" + bytes.fromhex(str(value)[2:]).hex()


def _default_outbox_path() -> Path:
    return Path(platformdirs.user_data_dir("tracechain")) / "outbox.sqlite3"


def _is_connection_problem(exc: BaseException) -> bool:
    name = type(exc).__name__
    return isinstance(exc, ConnectionError | TimeoutError | OSError) or name in {
        "ConnectError", "ConnectTimeout", "ReadTimeout", "RemoteDisconnected", "ProtocolError",
    } or "Connection" in name


class AgencyClient:
    """The agency-facing client: `submit`, `flush`, `pending`, `revoke`, `recall`, `trace`."""

    def __init__(
        self,
        service_url: str,
        rpc_url: str,
        private_key: str,
        *,
        outbox_path: str | os.PathLike[str] | None = None,
        tx_timeout_s: float = 120.0,
        retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self.service_url = service_url.rstrip("/")
        self.rpc_url = rpc_url
        self._account = Account.from_key(private_key)
        self.address: str = self._account.address
        self.outbox = Outbox(Path(outbox_path) if outbox_path else _default_outbox_path())
        self._service = ServiceClient(self.service_url, self._account)
        self._w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        self._tx_timeout_s = tx_timeout_s
        self._retries = retries
        self._backoff_s = backoff_s
        self._chain: dict[str, Any] | None = None
        self._trees: dict[int, MerkleTree] = {}
        self._contracts: dict[str, Any] = {}
        self._reader: ChainReader | None = None
        self._lock = threading.RLock()
        self.last_stats: dict[str, float] = {}

    # -- set-up ------------------------------------------------------------------------------------
    def close(self) -> None:
        self._service.close()
        self.outbox.close()

    def __enter__(self) -> AgencyClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def chain_info(self) -> dict[str, Any]:
        """Chain id and contract addresses from the service (cached in the outbox for offline resumes)."""
        if self._chain is None:
            try:
                info = self._service.chain_info()
                self.outbox.cache_chain_info(self.service_url, info)
            except ServiceUnavailableError:
                info = self.outbox.cached_chain_info(self.service_url)
                if info is None:
                    raise
            self._chain = info
        return self._chain

    def _contract(self, name: str) -> Any:
        contract = self._contracts.get(name)
        if contract is None:  # the addresses are fixed once chain_info() is known
            address = self.chain_info()["contracts"][name]
            contract = self._w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact(name)["abi"])
            self._contracts[name] = contract
        return contract

    def _chain_reader(self) -> ChainReader:
        """Raw `eth_call` reads of the deployment (no web3 contract machinery: a fraction of the cost)."""
        if self._reader is None:
            contracts = self.chain_info()["contracts"]
            self._reader = ChainReader(self._w3, contracts["ConsortiumRegistry"], contracts["TraceAnchor"])
        return self._reader

    def _retry(self, what: str, call: Callable[[], _T], unavailable: type[TraceError]) -> _T:
        delay = self._backoff_s
        for attempt in range(1, self._retries + 1):
            try:
                return call()
            except (ServiceUnavailableError, ChainUnavailableError):
                if attempt == self._retries:
                    raise
            except Exception as exc:
                if not _is_connection_problem(exc):
                    raise
                if attempt == self._retries:
                    raise unavailable(f"{what}: {exc}") from exc
            log.warning("%s failed (attempt %d/%d); retrying in %.1fs", what, attempt, self._retries, delay)
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _chain_call(self, what: str, call: Callable[[], _T]) -> _T:
        return self._retry(what, call, ChainUnavailableError)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One sender per outbox file and key, across threads and processes (nonces stay in order)."""
        lock_path = self.outbox.path.with_suffix(".lock")
        with self._lock, open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- membership --------------------------------------------------------------------------------
    def _require_member(self, role: str = "MEMBER") -> None:
        registry = self._contract("ConsortiumRegistry")
        bit = {"MEMBER": 1, "REGULATOR": 2, "ISSUER": 4}[role]
        allowed = self._chain_call("membership check", lambda: registry.functions.hasRole(self.address, bit).call())
        if not allowed:
            raise NotMemberError(
                f"{self.address} is not an active consortium {role} on chain {self.chain_info()['chain_id']}: "
                "ask the consortium to add it through governance"
            )

    # -- submission --------------------------------------------------------------------------------
    def submit(
        self, records: Sequence[dict[str, Any]], batch_size: int = 1000, skip_invalid: bool = False
    ) -> list[SubmitReceipt]:
        """Validate, batch, anchor (one transaction per batch) and upload ``records``; one receipt each.

        Bad records raise ValidationError and a record_id reused with other content raises ConflictError,
        before anything is sent. With ``skip_invalid`` the good records proceed first and the error is
        raised afterwards with their receipts in ``.receipts``.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        started = time.perf_counter()
        errors, conflicts, accepted = self._screen(records)
        if (errors or conflicts) and not skip_invalid:
            raise _rejection(errors, conflicts)
        with self._exclusive():
            # If the chain cannot be asked now, keep the records in the outbox; the contract refuses non-members.
            with contextlib.suppress(ChainUnavailableError, ServiceUnavailableError):
                self._require_member()
            new = [candidate for candidate, known in accepted if not known]
            for start in range(0, len(new), batch_size):
                self._seal(new[start : start + batch_size])
            sealed_at = time.perf_counter()
            self._deliver()
        receipts = self._receipts([candidate[1]["record_id"] for candidate, _ in accepted])
        self.last_stats = {
            "records": len(records),
            "prepare_s": sealed_at - started,
            "total_s": time.perf_counter() - started,
        }
        if errors or conflicts:
            rejection = _rejection(errors, conflicts)
            rejection.receipts = receipts  # type: ignore[attr-defined]
            raise rejection
        return receipts

    def _screen(
        self, records: Sequence[dict[str, Any]]
    ) -> tuple[list[FieldError], list[FieldError], list[tuple[_Candidate, bool]]]:
        """Validate and sort out repeats: ``(errors, conflicts, [(candidate, already_known)])``."""
        errors: list[FieldError] = []
        candidates: list[_Candidate] = []
        prepared = _prepare_in_workers(records)
        if prepared is None:  # in-process: salted when sealed (records already in the outbox never are)
            prepared = prepare_records(records, salted=False)
        for index, problems, canonical, content, salts, record_hash in prepared:
            if problems:
                errors.extend(problems)
            else:
                candidates.append(
                    (index, records[index], canonical, content, (salts, record_hash) if salts is not None else None)
                )
        known = self.outbox.known_records(self.address, (c[1]["record_id"] for c in candidates))
        first_content = {record_id: content for record_id, (content, _) in known.items()}
        conflicts: list[FieldError] = []
        accepted: list[tuple[_Candidate, bool]] = []
        taken: set[str] = set()
        for candidate in candidates:
            index, record, _canonical, content, _prepared = candidate
            record_id = record["record_id"]
            first = first_content.setdefault(record_id, content)
            if first != content:
                conflicts.append(FieldError(
                    index, record_id, "record_id",
                    f"record_id {record_id!r} was already submitted by this agency with different content; "
                    "the first record stands",
                ))
            elif record_id not in taken:  # the same record twice in one call counts once
                taken.add(record_id)
                accepted.append((candidate, record_id in known))
        return errors, conflicts, accepted

    def _seal(self, items: list[_Candidate]) -> None:
        """Hash the records with fresh salts, build the Merkle tree and store the batch in the outbox."""
        rows = []
        leaves = []
        for _index, record, canonical, content, prepared in items:
            if prepared is not None:
                salts_text, record_hash = prepared  # salted and hashed by a worker
            else:
                salts, hashed = salt_and_hash(record)
                salts_text, record_hash = salts_to_json(salts), hashed.record_hash
            leaves.append(leaf_hash(record_hash))
            rows.append((record["record_id"], content, canonical.decode("utf-8"), salts_text, _hex(record_hash)))
        tree = MerkleTree(leaves)
        batch_id = self.outbox.seal_batch(agency=self.address, root=_hex(tree.root), rows=rows)
        self._trees[batch_id] = tree

    def flush(self) -> list[SubmitReceipt]:
        """Finish every batch left in the outbox (anchor, upload); receipts of the records delivered now."""
        with self._exclusive():
            delivered = self._deliver()
        receipts = []
        for batch_id in delivered:
            receipts.extend(self._receipts(self.outbox.batch_record_ids(batch_id)))
        return receipts

    def pending(self) -> list[PendingBatch]:
        """Batches not yet fully delivered (anchored and uploaded), oldest first."""
        return self.outbox.pending(self.address)

    def _deliver(self) -> list[int]:
        """Resume every undelivered batch in order; raise DeliveryPendingError if something must wait."""
        delivered = []
        for batch in self.outbox.undelivered_batches(self.address):
            try:
                if batch.state in (SEALED, SIGNED):
                    self._anchor(batch)
                    batch = self.outbox.batch(batch.id)
                if batch.state == ANCHORED:
                    self._upload(batch)
                delivered.append(batch.id)
            except (ChainUnavailableError, ServiceUnavailableError) as exc:
                self.outbox.note_error(batch.id, str(exc))
                raise DeliveryPendingError(
                    f"{exc} — the records are safe in the outbox ({self.outbox.path}); "
                    "call flush() (or `tracechain outbox flush`) when it is reachable again",
                    pending=self.pending(),
                ) from exc
        return delivered

    # -- anchoring ---------------------------------------------------------------------------------
    def _tree(self, batch: BatchRow) -> MerkleTree:
        tree = self._trees.get(batch.id)
        if tree is None:
            records = self.outbox.batch_records(batch.id)
            tree = MerkleTree([leaf_hash(bytes.fromhex(r.record_hash[2:])) for r in records])
            if _hex(tree.root) != batch.root:
                raise TraceError(f"outbox batch {batch.id} is corrupt: its records do not hash to {batch.root}")
            self._trees[batch.id] = tree
        return tree

    def _anchored_on_chain(self, batch: BatchRow) -> int | None:
        """Block number if the chain shows ``batch.root`` anchored by this agency, else None."""
        root = bytes.fromhex(batch.root[2:])
        found = self._chain_call("anchor lookup", lambda: self._chain_reader().batch(root))
        if found is None:
            return None
        if found.agency.lower() != self.address.lower():
            raise ChainError(f"root {batch.root} was anchored by another account ({found.agency})")
        return int(found.block_number)

    def _fees(self, bump: float) -> dict[str, int]:
        latest = self._w3.eth.get_block("latest")
        base_fee = latest.get("baseFeePerGas")
        if base_fee is None:
            return {"gasPrice": int(self._w3.eth.gas_price * bump)}
        try:
            tip = self._w3.eth.max_priority_fee
        except Exception:
            tip = Web3.to_wei(1, "gwei")
        return {"maxFeePerGas": int((2 * base_fee + tip) * bump), "maxPriorityFeePerGas": int(tip * bump)}

    def _sign_anchor(self, batch: BatchRow, *, nonce: int, bump: float) -> tuple[str, bytes, int]:
        anchor = self._contract("TraceAnchor")
        call = anchor.functions.anchorBatch(bytes.fromhex(batch.root[2:]), batch.record_count, SCHEMA_VERSION)
        try:
            gas = call.estimate_gas({"from": self.address})
        except Exception as exc:
            if _is_connection_problem(exc):
                raise
            raise decode_revert(exc) from exc
        tx = call.build_transaction({
            "from": self.address,
            "nonce": nonce,
            "gas": int(gas * 1.2) + 5_000,
            "chainId": int(self.chain_info()["chain_id"]),
            **self._fees(bump),
        })
        signed = self._account.sign_transaction(tx)
        price = int(tx.get("maxFeePerGas", tx.get("gasPrice", 0)))
        return signed.hash.to_0x_hex(), bytes(signed.raw_transaction), price

    def _broadcast(self, raw: bytes) -> None:
        try:
            self._w3.eth.send_raw_transaction(raw)
        except Exception as exc:
            text = str(exc).lower()
            if _is_connection_problem(exc):
                raise
            # Already in the pool / already mined / replaced: the status check below decides.
            if not any(s in text for s in _ALREADY_SEEN):
                raise decode_revert(exc) from exc

    def _anchor(self, batch: BatchRow) -> None:
        """Get ``batch.root`` anchored exactly once: check the chain, (re)send, replace if stuck."""
        self._chain_call("anchoring", lambda: self._anchor_once(batch))

    def _anchor_once(self, batch: BatchRow) -> None:
        bump, replacements, stuck = 1.0, 0, False
        while True:
            batch = self.outbox.batch(batch.id)
            # A sealed batch was never signed, so never broadcast: its (salted) root cannot be on chain yet.
            block = self._anchored_on_chain(batch) if batch.state != SEALED else None
            if block is not None:  # by whichever of our transactions got there
                self._record_anchored(batch, block)
                return
            ours_pending = (
                batch.state == SIGNED
                and batch.raw_tx
                and batch.nonce is not None
                and batch.nonce >= self._w3.eth.get_transaction_count(self.address, "latest")
            )
            try:
                if not ours_pending:  # never signed, or its nonce went to another transaction: sign afresh
                    nonce = self._w3.eth.get_transaction_count(self.address, "pending")
                    self._sign_and_send(batch, nonce=nonce, bump=bump)
                elif stuck:  # same nonce, higher fee, a bounded number of times
                    replacements += 1
                    if replacements > _MAX_REPLACEMENTS:
                        raise ChainUnavailableError(
                            f"anchoring transaction for root {batch.root} not mined after {replacements} attempts"
                        )
                    bump *= 1.25
                    log.warning("anchoring tx %s not mined; replacing it with a higher fee", batch.tx_hash)
                    self._sign_and_send(batch, nonce=batch.nonce or 0, bump=bump)
                else:  # resuming: the stored transaction, byte for byte
                    self._broadcast(batch.raw_tx or b"")
            except ContractRevertError:
                if self._anchored_on_chain(batch) is not None:
                    continue  # anchored meanwhile by a transaction of ours
                raise
            batch = self.outbox.batch(batch.id)
            receipt = self._wait_for_receipt(batch)
            if receipt is not None and receipt["status"] == 1 and self._anchors_root(receipt, batch.root):
                # This transaction anchored the root: what _record_anchored would read back from the chain.
                self.outbox.mark_anchored(
                    batch.id,
                    block_number=int(receipt["blockNumber"]),
                    tx_hash=_tx_hex(receipt["transactionHash"]),
                    gas_used=int(receipt["gasUsed"]),
                )
                return
            if receipt is not None and receipt["status"] != 1 and self._anchored_on_chain(batch) is None:
                raise ChainError(f"anchoring transaction {batch.tx_hash} for root {batch.root} reverted")
            stuck = receipt is None

    def _anchors_root(self, receipt: Any, root: str) -> bool:
        """Whether ``receipt`` holds TraceAnchor's BatchAnchored event for ``root``."""
        anchor = self.chain_info()["contracts"]["TraceAnchor"].lower()
        wanted = bytes.fromhex(root[2:])
        for entry in receipt.get("logs") or ():
            topics = entry.get("topics") or ()
            if (
                str(entry.get("address", "")).lower() == anchor
                and len(topics) >= 2
                and bytes(topics[0]) == _BATCH_ANCHORED_TOPIC
                and bytes(topics[1]) == wanted
            ):
                return True
        return False

    def _sign_and_send(self, batch: BatchRow, *, nonce: int, bump: float) -> None:
        """Sign, store (before anything leaves the process), then broadcast."""
        tx_hash, raw, price = self._sign_anchor(batch, nonce=nonce, bump=bump)
        self.outbox.mark_signed(batch.id, nonce=nonce, tx_hash=tx_hash, raw_tx=raw, gas_price=price)
        self._broadcast(raw)

    def _record_anchored(self, batch: BatchRow, block: int) -> None:
        """Mark the batch anchored with the transaction that really anchored it (from the event log)."""
        anchor = self._contract("TraceAnchor")
        logs = anchor.events.BatchAnchored().get_logs(
            from_block=block, to_block=block, argument_filters={"root": bytes.fromhex(batch.root[2:])}
        )
        tx_hash = gas_used = None
        if logs:
            tx_hash = logs[0]["transactionHash"].to_0x_hex()
            gas_used = int(self._w3.eth.get_transaction_receipt(tx_hash)["gasUsed"])
        self.outbox.mark_anchored(batch.id, block_number=block, tx_hash=tx_hash, gas_used=gas_used)

    def _wait_for_receipt(self, batch: BatchRow) -> Any:
        deadline = time.monotonic() + self._tx_timeout_s
        delay = 0.05
        while time.monotonic() < deadline:
            try:
                return self._w3.eth.get_transaction_receipt(batch.tx_hash)
            except TransactionNotFound:
                pass
            if self._w3.eth.get_transaction_count(self.address, "latest") > (batch.nonce or 0):
                try:  # the nonce is used: by this transaction (receipt now) or by another one
                    return self._w3.eth.get_transaction_receipt(batch.tx_hash)
                except TransactionNotFound:
                    return None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        return None

    # -- upload ------------------------------------------------------------------------------------
    def _upload(self, batch: BatchRow) -> None:
        records = self.outbox.batch_uploads(batch.id)
        tree = self._tree(batch)
        proofs = tree.proofs()
        hexed: dict[bytes, str] = {}  # upper tree nodes recur in many proofs: write each once
        body_of = functools.partial(_upload_body, batch.root, proofs=proofs, hexed=hexed)

        def send(body: bytes) -> dict[str, Any]:
            return self._retry("upload", lambda: self._service.upload_batch(body), ServiceUnavailableError)

        chunks = [records[start : start + _UPLOAD_CHUNK] for start in range(0, len(records), _UPLOAD_CHUNK)]
        certificate_ids: dict[str, str] = {}
        for response in _in_flight(send, map(body_of, chunks), _UPLOADS_IN_FLIGHT if len(chunks) > 1 else 1):
            for item in response.get("certificates", []):
                certificate_ids[item["record_id"]] = item["certificate_id"]
        missing = [record_id for record_id, *_ in records if record_id not in certificate_ids]
        if missing:
            raise ServiceError(502, f"the service did not confirm {len(missing)} records (first: {missing[0]})")
        self.outbox.mark_uploaded(batch.id, certificate_ids)

    def _receipts(self, record_ids: Sequence[str]) -> list[SubmitReceipt]:
        """Receipts of many records (a few queries in all, not two per record)."""
        found = self.outbox.delivery_info(self.address, record_ids)
        batches: dict[int, BatchRow] = {}
        receipts = []
        for record_id in record_ids:
            info = found.get(record_id)
            if info is None:
                raise KeyError(record_id)
            record_hash, batch_id, certificate_id = info
            batch = batches.get(batch_id)
            if batch is None:
                batch = batches[batch_id] = self.outbox.batch(batch_id)
            receipts.append(SubmitReceipt(
                record_id=record_id,
                record_hash=record_hash,
                merkle_root=batch.root,
                tx_hash=batch.tx_hash,
                block_number=batch.block_number,
                certificate_id=certificate_id or certificate_id_for(bytes.fromhex(record_hash[2:])),
                uploaded=certificate_id is not None,
            ))
        return receipts

    def _receipt(self, record_id: str) -> SubmitReceipt:
        return self._receipts([record_id])[0]

    # -- revocation, recall, trace -----------------------------------------------------------------
    def _transact(self, what: str, call: Any) -> dict[str, Any]:
        def send() -> dict[str, Any]:
            try:
                gas = call.estimate_gas({"from": self.address})
            except Exception as exc:
                if _is_connection_problem(exc):
                    raise
                raise decode_revert(exc) from exc
            tx = call.build_transaction({
                "from": self.address,
                "nonce": self._w3.eth.get_transaction_count(self.address, "pending"),
                "gas": int(gas * 1.2) + 5_000,
                "chainId": int(self.chain_info()["chain_id"]),
                **self._fees(1.0),
            })
            signed = self._account.sign_transaction(tx)
            tx_hash = self._w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = self._w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self._tx_timeout_s)
            if receipt["status"] != 1:
                raise ChainError(f"{what} transaction {tx_hash.to_0x_hex()} reverted")
            return {"tx_hash": tx_hash.to_0x_hex(), "block_number": int(receipt["blockNumber"])}

        with self._exclusive():
            return self._chain_call(what, send)

    def revoke(self, record_id: str, reason: str) -> dict[str, Any]:
        """Revoke one record this agency submitted (leaf + proof verified on chain); other records stay valid."""
        if not reason.strip():
            raise ValueError("a revocation needs a reason")
        record = self.outbox.record(self.address, record_id)
        if record is None:
            raise TraceError(f"record_id {record_id!r} is not in this agency's outbox ({self.outbox.path})")
        batch = self.outbox.batch(record.batch_id)
        if batch.state in (SEALED, SIGNED):
            raise TraceError(f"record_id {record_id!r} is not anchored yet: flush() first")
        proof = self._tree(batch).proof(record.leaf_index)
        anchor = self._contract("TraceAnchor")
        call = anchor.functions.revokeRecord(
            bytes.fromhex(batch.root[2:]), bytes.fromhex(record.record_hash[2:]), proof, reason
        )
        result = self._transact("revocation", call)
        return {"record_id": record_id, "record_hash": record.record_hash, **result}

    def recall(self, trace_code: str, reason: str) -> dict[str, Any]:
        """Recall a lot (REGULATOR only): it and every lot downstream of it verify as recalled."""
        if not reason.strip():
            raise ValueError("a recall needs a reason")
        self._require_member("REGULATOR")
        anchor = self._contract("TraceAnchor")
        result = self._transact("recall", anchor.functions.recallLot(trace_code_hash(trace_code), reason))
        return {"trace_code": trace_code, **result}

    def trace(self, trace_code: str, direction: str = "forward") -> dict[str, Any]:
        """The lot graph from the service: ``{"nodes": [...], "edges": [...]}`` (full data for agencies)."""
        if direction not in ("forward", "backward"):
            raise ValueError("direction must be 'forward' or 'backward'")
        return self._retry(
            "trace", lambda: self._service.trace(trace_code, direction), ServiceUnavailableError
        )


def _upload_body(
    root: str, rows: Sequence[tuple[str, str, str, int]], *, proofs: Sequence[Sequence[bytes]], hexed: dict[bytes, str]
) -> bytes:
    """The JSON body uploading ``rows`` (``(record_id, canonical JSON, salts JSON, leaf_index)`` as
    `Outbox.batch_uploads` gives them) of the batch with this root; ``hexed`` remembers proof nodes written.

    Each record's canonical JSON and its salts' JSON go into the body as the outbox holds them (written by
    `canonicalize` and `salts_to_json`), not parsed and written again.
    """
    return orjson.dumps({
        "root": root,
        "records": [
            {
                "record": orjson.Fragment(canonical),
                "salts": orjson.Fragment(salts),
                "leaf_index": leaf_index,
                "proof": [hexed.get(p) or hexed.setdefault(p, _hex(p)) for p in proofs[leaf_index]],
            }
            for _record_id, canonical, salts, leaf_index in rows
        ],
    })


def _in_flight(call: Callable[[Any], _T], arguments: Iterator[Any], limit: int) -> Iterator[_T]:
    """``call`` of each argument, in order, with up to ``limit`` calls running at once (threads).

    The next argument is produced while earlier calls run; the first failure is raised, in order, and
    calls not yet started are dropped.
    """
    if limit <= 1:
        yield from map(call, arguments)
        return
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="tracechain-upload") as threads:
        running: deque[Future[_T]] = deque()
        try:
            for argument in arguments:
                running.append(threads.submit(call, argument))
                if len(running) >= limit:
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
        finally:
            for future in running:
                future.cancel()


def _exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: exit when the submitting process is gone (killed processes run no exit handlers,
    and a worker holding both ends of its task queue would wait for work forever)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _prepare_range(start: int, stop: int) -> list[tuple[Any, ...]]:
    """Worker task: `prepare_records` of ``_pool_records[start:stop]`` as plain tuples (cheap to send back)."""
    return [tuple(p) for p in prepare_records(_pool_records[start:stop], first_index=start)]


def _prepare_in_workers(records: Sequence[Any]) -> list[tuple[Any, ...]] | None:
    """`prepare_records` of a large submission by forked worker processes (None: do it in-process).

    Forking is only safe while this process runs a single thread, so a threaded application prepares
    in-process; so does a machine with one CPU.
    """
    global _pool_records
    if len(records) < _POOL_MIN_RECORDS or not hasattr(os, "fork"):
        return None
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    if cpus < 2:
        return None
    with _pool_lock:
        if threading.active_count() > 1:
            return None
        _pool_records = records
        try:
            with ProcessPoolExecutor(
                max_workers=min(cpus, _POOL_MAX_WORKERS),
                mp_context=multiprocessing.get_context("fork"),
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            ) as workers:
                futures = [
                    workers.submit(_prepare_range, start, min(start + _POOL_CHUNK, len(records)))
                    for start in range(0, len(records), _POOL_CHUNK)
                ]
                prepared: list[tuple[Any, ...]] = []
                for future in futures:
                    prepared.extend(future.result())
                return prepared
        except BrokenProcessPool:
            log.warning("record preparation workers died; preparing in-process")
            return None
        finally:
            _pool_records = ()


def _rejection(errors: list[FieldError], conflicts: list[FieldError]) -> TraceError:
    """ValidationError listing every problem, or ConflictError when reused record_ids are the only problem."""
    if errors:
        return ValidationError(errors + conflicts)
    ids = ", ".join(repr(c.record_id) for c in conflicts)
    return ConflictError(
        conflicts[0].record_id or "",
        f"record_id {ids} already submitted by this agency with different content; the first record stands",
    )
