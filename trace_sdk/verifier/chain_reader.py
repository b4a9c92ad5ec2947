"""`ChainReader`: typed, cached reads of the ConsortiumRegistry and TraceAnchor views a verifier needs.

Immutable facts (an anchored batch, membership at a mined block, the anchor's registry, the chain id, an
anchoring transaction) are kept in an LRU. Mutable facts (revocations, recalls, issuer fingerprints, member
entries) are read fresh unless a `FactCache` is passed as `mutable_cache`; its owner calls
`ChainReader.invalidate()` (or the cache's own `invalidate()`) when it sees a revocation or recall event.

Reads go straight to the JSON-RPC provider as `eth_call`s encoded from the shipped ABIs (several calls share
one JSON-RPC batch), which keeps a full verification to a handful of milliseconds on a local node.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import requests
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import function_abi_to_4byte_selector, keccak
from web3 import Web3
from web3.providers.rpc.utils import ExceptionRetryConfiguration
from web3.types import RPCEndpoint

from trace_sdk.client.contracts import load_artifact
from trace_sdk.exceptions import ChainError, ChainUnavailableError

__all__ = [
    "AnchorTransaction",
    "AnchoredBatch",
    "ChainReader",
    "ContractNotFoundError",
    "FactCache",
    "LotRecallFact",
    "MemberEntry",
    "RevocationFact",
]

_ZERO_ADDRESS = "0x" + "00" * 20
_BATCH_ANCHORED_TOPIC = keccak(text="BatchAnchored(bytes32,address,uint256,uint8)")
_MISSING = object()


class ContractNotFoundError(ChainError):
    """No contract code answers at an address the certificate names."""


# ---------------------------------------------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True)
class AnchoredBatch:
    """A batch root anchored on TraceAnchor (`batch(root)`)."""

    root: bytes
    """The 32-byte Merkle root."""
    agency: str
    """Checksummed address of the member that anchored it."""
    block_number: int
    """Block in which it was anchored."""
    timestamp: int
    """Unix time (seconds) of that block."""
    count: int
    """Number of records in the batch."""
    schema_version: int
    """Record schema version of the batch."""


@dataclass(frozen=True, slots=True)
class MemberEntry:
    """A ConsortiumRegistry member entry (`member(address)`); all zero for an unknown account."""

    account: str
    """Checksummed account address."""
    identity: int
    """Stable member id shared by rotated keys (0 = unknown account)."""
    roles: int
    """Roles bitmask: MEMBER = 1, REGULATOR = 2, ISSUER = 4."""
    active: bool
    """Whether the entry is active."""
    successor: str
    """Account the key was rotated to (zero address if none)."""
    name: str
    """Agency name."""
    code: str
    """Agency code."""

    @property
    def known(self) -> bool:
        """Whether the account was ever added to the consortium."""
        return self.identity != 0


@dataclass(frozen=True, slots=True)
class RevocationFact:
    """The revocation of a record hash (`revocation(recordHash)`)."""

    revoked: bool
    """Whether the record hash was revoked."""
    timestamp: int
    """Unix time (seconds) of the revocation (0 if none)."""
    root: bytes
    """Root of the batch the revocation was proven against."""
    reason: str
    """Reason given by the revoker."""


@dataclass(frozen=True, slots=True)
class LotRecallFact:
    """The recall of a lot (`recall(traceCodeHash)`)."""

    recalled: bool
    """Whether the lot was recalled."""
    timestamp: int
    """Unix time (seconds) of the recall (0 if none)."""
    recalled_by: str
    """Checksummed address of the recalling regulator."""
    reason: str
    """Reason given by the regulator."""


@dataclass(frozen=True, slots=True)
class AnchorTransaction:
    """A mined transaction and the `BatchAnchored` events TraceAnchor emitted in it."""

    tx_hash: str
    """0x hex transaction hash."""
    block_number: int
    """Block the transaction was mined in."""
    succeeded: bool
    """Receipt status 1."""
    anchored: frozenset[tuple[bytes, str]]
    """(root, checksummed agency) of every batch the TraceAnchor under test anchored in the transaction."""


# ---------------------------------------------------------------------------------------------------- cache


class FactCache:
    """A thread-safe LRU of chain facts with an optional time to live and an `invalidate()` hook."""

    def __init__(self, maxsize: int = 4096, *, ttl_seconds: float | None = None) -> None:
        if maxsize <= 0:
            raise ValueError("maxsize must be positive")
        self._maxsize = maxsize
        self._ttl = ttl_seconds
        self._items: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The cached value of `key`, or `default` if absent or expired."""
        with self._lock:
            item = self._items.get(key, _MISSING)
            if item is _MISSING:
                return default
            stored_at, value = item
            if self._ttl is not None and time.monotonic() - stored_at > self._ttl:
                del self._items[key]
                return default
            self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        """Store `value` under `key`, evicting the least recently used entry when full."""
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)

    def invalidate(self, key: Hashable | None = None) -> None:
        """Forget `key`, or everything when `key` is None."""
        with self._lock:
            if key is None:
                self._items.clear()
            else:
                self._items.pop(key, None)


# ---------------------------------------------------------------------------------------------------- ABI


@dataclass(frozen=True, slots=True)
class _Function:
    selector: bytes
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]


def _abi_type(entry: dict[str, Any]) -> str:
    kind: str = entry["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in entry["components"]) + ")" + kind[len("tuple") :]
    return kind


@cache
def _function(contract: str, name: str) -> _Function:
    for entry in load_artifact(contract)["abi"]:
        if entry.get("type") == "function" and entry["name"] == name:
            return _Function(
                function_abi_to_4byte_selector(entry),
                tuple(_abi_type(i) for i in entry["inputs"]),
                tuple(_abi_type(o) for o in entry["outputs"]),
            )
    raise ChainError(f"{contract} has no function {name!r} in the shipped ABI")


def _bytes32(value: bytes) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError("expected 32 bytes")
    return value


# ---------------------------------------------------------------------------------------------------- reader


class ChainReader:
    """Typed reads of ConsortiumRegistry and TraceAnchor views over one JSON-RPC endpoint."""

    def __init__(
        self,
        rpc: str | Web3,
        registry_address: str,
        anchor_address: str,
        *,
        cache_size: int = 4096,
        mutable_cache: FactCache | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if isinstance(rpc, Web3):
            self._w3 = rpc
        else:
            provider = Web3.HTTPProvider(
                rpc,
                request_kwargs={"timeout": timeout_s},
                exception_retry_configuration=ExceptionRetryConfiguration(
                    errors=(requests.ConnectionError,), retries=2, backoff_factor=0.05
                ),
            )
            self._w3 = Web3(provider)
        self.registry_address: str = Web3.to_checksum_address(registry_address)
        """The ConsortiumRegistry read from."""
        self.anchor_address: str = Web3.to_checksum_address(anchor_address)
        """The TraceAnchor read from."""
        self._facts = FactCache(cache_size)
        self.mutable_cache: FactCache | None = mutable_cache
        """Cache of mutable facts, or None to read them fresh every time."""
        self._head = 0

    def __repr__(self) -> str:
        return f"ChainReader(registry={self.registry_address}, anchor={self.anchor_address})"

    @property
    def w3(self) -> Web3:
        """The underlying Web3."""
        return self._w3

    def invalidate(self) -> None:
        """Forget every cached mutable fact (call on RecordRevoked / LotRecalled / registry events)."""
        if self.mutable_cache is not None:
            self.mutable_cache.invalidate()

    # ------------------------------------------------------------------ immutable facts (LRU)

    def chain_id(self) -> int:
        """The chain id (`eth_chainId`)."""
        return self._immutable(("chain_id",), lambda: int(self._rpc("eth_chainId", []), 16))

    def has_code(self, address: str) -> bool:
        """Whether a contract is deployed at `address` (a positive answer is cached)."""
        address = Web3.to_checksum_address(address)
        key = ("code", address)
        if self._facts.get(key):
            return True
        present = self._rpc("eth_getCode", [address, "latest"]) not in ("0x", "", None)
        if present:
            self._facts.put(key, True)
        return present

    def anchor_registry(self) -> str:
        """The registry TraceAnchor consults for roles (an immutable of the contract)."""
        return self._immutable(("anchor_registry",), lambda: self._call("TraceAnchor", "registry")[0])

    def batch(self, root: bytes) -> AnchoredBatch | None:
        """The batch anchored with `root`, or None if the root was never anchored."""
        key = ("batch", _bytes32(root))
        found = self._facts.get(key)
        if found is not None:
            return found
        agency, block_number, timestamp, count, schema = self._call("TraceAnchor", "batch", root)
        if int(agency, 16) == 0:
            return None  # not cached: it may be anchored later
        result = AnchoredBatch(root, agency, block_number, timestamp, count, schema)
        self._facts.put(key, result)
        return result

    def was_member_at(self, address: str, block_number: int) -> bool:
        """Whether `address` was an active MEMBER during `block_number` (cached once the block is mined)."""
        address = Web3.to_checksum_address(address)
        key = ("was_member_at", address, block_number)
        found = self._facts.get(key)
        if found is not None:
            return bool(found)
        (answer,) = self._call("ConsortiumRegistry", "wasMemberAt", address, block_number)
        if block_number <= self._head or block_number <= self.block_number():
            self._facts.put(key, answer)
        return bool(answer)

    def block_number(self) -> int:
        """The latest block number."""
        head = int(self._rpc("eth_blockNumber", []), 16)
        self._head = max(self._head, head)
        return head

    def anchor_transaction(self, tx_hash: str) -> AnchorTransaction | None:
        """The mined transaction `tx_hash` with the batches TraceAnchor anchored in it, or None if unknown."""
        key = ("tx", tx_hash.lower())
        found = self._facts.get(key)
        if found is not None:
            return found
        receipt = self._rpc("eth_getTransactionReceipt", [tx_hash])
        if not receipt or receipt.get("blockNumber") is None:
            return None
        anchored = set()
        for log in receipt.get("logs") or ():
            topics = log.get("topics") or []
            if (
                Web3.to_checksum_address(log.get("address", _ZERO_ADDRESS)) == self.anchor_address
                and len(topics) == 3
                and bytes.fromhex(topics[0][2:]) == _BATCH_ANCHORED_TOPIC
            ):
                agency = Web3.to_checksum_address("0x" + topics[2][-40:])
                anchored.add((bytes.fromhex(topics[1][2:]), agency))
        result = AnchorTransaction(
            tx_hash=tx_hash.lower(),
            block_number=int(receipt["blockNumber"], 16),
            succeeded=int(receipt.get("status") or "0x0", 16) == 1,
            anchored=frozenset(anchored),
        )
        self._facts.put(key, result)
        return result

    # ------------------------------------------------------------------ mutable facts (fresh by default)

    def member(self, address: str) -> MemberEntry:
        """The registry entry of `address` (all zero if unknown)."""
        address = Web3.to_checksum_address(address)
        return self._mutable(("member", address), lambda: self._member(address))

    def has_role(self, address: str, role: int) -> bool:
        """Whether `address` is active and holds every bit of `role` (MEMBER=1, REGULATOR=2, ISSUER=4)."""
        address = Web3.to_checksum_address(address)
        return bool(
            self._mutable(
                ("has_role", address, role),
                lambda: self._call("ConsortiumRegistry", "hasRole", address, role)[0],
            )
        )

    def is_active_member(self, address: str) -> bool:
        """Whether `address` is active with the MEMBER role now."""
        return self.has_role(address, 1)

    def is_issuer_fingerprint(self, fingerprint: bytes) -> bool:
        """Whether the SHA-256 certificate `fingerprint` belongs to an active ISSUER."""
        fp = _bytes32(fingerprint)
        return bool(
            self._mutable(
                ("is_issuer_fp", fp), lambda: self._call("ConsortiumRegistry", "isIssuerFingerprint", fp)[0]
            )
        )

    def issuer_fingerprint(self, address: str) -> bytes:
        """The certificate fingerprint registered for `address` (32 zero bytes if none)."""
        address = Web3.to_checksum_address(address)
        return bytes(
            self._mutable(
                ("issuer_fp", address),
                lambda: self._call("ConsortiumRegistry", "issuerFingerprint", address)[0],
            )
        )

    def revocation(self, record_hash: bytes) -> RevocationFact:
        """The revocation state of `record_hash`."""
        rh = _bytes32(record_hash)
        return self._mutable(
            ("revocation", rh), lambda: RevocationFact(*self._call("TraceAnchor", "revocation", rh))
        )

    def recall(self, trace_code_hash: bytes) -> LotRecallFact:
        """The recall state of the lot with `trace_code_hash`."""
        return self.recalls([trace_code_hash])[_bytes32(trace_code_hash)]

    def recalls(self, trace_code_hashes: Iterable[bytes]) -> dict[bytes, LotRecallFact]:
        """The recall state of several lots, read in one JSON-RPC batch."""
        wanted = list(dict.fromkeys(_bytes32(h) for h in trace_code_hashes))
        out: dict[bytes, LotRecallFact] = {}
        missing = []
        for h in wanted:
            hit = self.mutable_cache.get(("recall", h)) if self.mutable_cache is not None else None
            if hit is None:
                missing.append(h)
            else:
                out[h] = hit
        answers = self._call_many([("TraceAnchor", "recall", (h,)) for h in missing])
        for h, answer in zip(missing, answers, strict=True):
            fact = LotRecallFact(*answer)
            out[h] = fact
            if self.mutable_cache is not None:
                self.mutable_cache.put(("recall", h), fact)
        return {h: out[h] for h in wanted}

    # ------------------------------------------------------------------ plumbing

    def _member(self, address: str) -> MemberEntry:
        ((identity, roles, active, successor, name, code),) = self._call(
            "ConsortiumRegistry", "member", address
        )
        return MemberEntry(address, identity, roles, active, Web3.to_checksum_address(successor), name, code)

    def _immutable(self, key: Hashable, load: Any) -> Any:
        found = self._facts.get(key, _MISSING)
        if found is _MISSING:
            found = load()
            self._facts.put(key, found)
        return found

    def _mutable(self, key: Hashable, load: Any) -> Any:
        if self.mutable_cache is None:
            return load()
        found = self.mutable_cache.get(key, _MISSING)
        if found is _MISSING:
            found = load()
            self.mutable_cache.put(key, found)
        return found

    def _address_of(self, contract: str) -> str:
        return self.registry_address if contract == "ConsortiumRegistry" else self.anchor_address

    def _encode(self, contract: str, name: str, args: Sequence[Any]) -> tuple[_Function, dict[str, str]]:
        fn = _function(contract, name)
        data = fn.selector + abi_encode(fn.input_types, list(args))
        return fn, {"to": self._address_of(contract), "data": "0x" + data.hex()}

    def _decode(self, contract: str, name: str, fn: _Function, result: Any) -> tuple[Any, ...]:
        raw = bytes.fromhex(result[2:]) if isinstance(result, str) and result.startswith("0x") else b""
        if not raw:
            raise ContractNotFoundError(
                f"no {contract} answers at {self._address_of(contract)} ({name} returned nothing)"
            )
        try:
            decoded = abi_decode(fn.output_types, raw)
        except Exception as exc:  # eth_abi raises several unrelated types for bad data
            raise ContractNotFoundError(
                f"{self._address_of(contract)} is not a {contract} ({name} returned undecodable data)"
            ) from exc
        return tuple(
            Web3.to_checksum_address(v) if t == "address" else v
            for t, v in zip(fn.output_types, decoded, strict=True)
        )

    def _call(self, contract: str, name: str, *args: Any) -> tuple[Any, ...]:
        fn, tx = self._encode(contract, name, args)
        return self._decode(contract, name, fn, self._rpc("eth_call", [tx, "latest"]))

    def _call_many(self, calls: Sequence[tuple[str, str, Sequence[Any]]]) -> list[tuple[Any, ...]]:
        if len(calls) <= 1:
            return [self._call(c, n, *a) for c, n, a in calls]
        encoded = [(c, n, *self._encode(c, n, a)) for c, n, a in calls]
        results = self._rpc_batch([("eth_call", [tx, "latest"]) for _c, _n, _fn, tx in encoded])
        return [self._decode(c, n, fn, r) for (c, n, fn, _tx), r in zip(encoded, results, strict=True)]

    def _rpc(self, method: str, params: list[Any]) -> Any:
        try:
            response = self._w3.provider.make_request(RPCEndpoint(method), params)
        except Exception as exc:
            raise _translate(exc) from exc
        return _result(method, response)

    def _rpc_batch(self, requests_: list[tuple[str, list[Any]]]) -> list[Any]:
        try:
            responses = self._w3.provider.make_batch_request([(RPCEndpoint(m), p) for m, p in requests_])
        except NotImplementedError:
            return [self._rpc(m, p) for m, p in requests_]
        except Exception as exc:
            raise _translate(exc) from exc
        if not isinstance(responses, list) or len(responses) != len(requests_):
            # Some nodes refuse batches; fall back to one request per call.
            return [self._rpc(m, p) for m, p in requests_]
        return [_result(m, r) for (m, _p), r in zip(requests_, responses, strict=True)]


def _result(method: str, response: Any) -> Any:
    if not isinstance(response, dict):
        raise ChainUnavailableError(f"{method}: the endpoint did not answer JSON-RPC")
    if response.get("error"):
        error = response["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise ChainError(f"{method} failed: {message}")
    return response.get("result")


def _translate(exc: Exception) -> ChainError:
    if isinstance(exc, ChainError):
        return exc
    if isinstance(exc, OSError | TimeoutError | ValueError) or "Connection" in type(exc).__name__:
        # requests' errors are OSErrors; a non-JSON answer (not an RPC endpoint) is a ValueError.
        return ChainUnavailableError(
            f"the chain RPC endpoint cannot be reached: {exc}",
            user_message="无法连接区块链节点 (chain RPC unreachable)",
        )
    return ChainError(f"chain read failed: {type(exc).__name__}: {exc}")
