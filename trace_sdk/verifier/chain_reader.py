"""`ChainReader`: typed, cached reads of the ConsortiumRegistry and TraceAnchor views a verifier needs.

Immutable facts (an anchored batch, membership at a mined block, the anchor's registry, the chain id, an
anchoring transaction) are kept in an LRU. Mutable facts (revocations, recalls, issuer fingerprints, member
entries) are read fresh unless a `FactCache` is passed as `mutable_cache`; its owner calls
`ChainReader.invalidate()` (or the cache's own `invalidate()`) when it sees a revocation or recall event.

"Immutable" assumes a final chain (QBFT on Besu, or a dev Anvil): a reorganisation that dropped an anchoring
block would not be noticed by a long-lived reader until its LRU forgets the fact.

Reads go straight to the JSON-RPC provider as `eth_call`s encoded from the shipped ABIs (several calls share
one JSON-RPC batch), which keeps a full verification to a handful of milliseconds on a local node.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, lru_cache
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
    "checksum_address",
]

_ZERO_ADDRESS = "0x" + "00" * 20
_BATCH_ANCHORED_TOPIC = keccak(text="BatchAnchored(bytes32,address,uint256,uint8)")
_MISSING = object()
_MAX_BATCH = 256


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
    """The revocation of a record hash under one batch root (`revocation(root, recordHash)`)."""

    revoked: bool
    """Whether the record hash was revoked under `root`."""
    timestamp: int
    """Unix time (seconds) of the revocation (0 if none)."""
    root: bytes
    """Root of the batch asked about (a revocation is proven against, and stored under, one root)."""
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


@lru_cache(maxsize=4096)
def checksum_address(address: str) -> str:
    """EIP-55 form of `address` (memoised: keccak-based checksumming dominates a cached verification)."""
    return str(Web3.to_checksum_address(address))


def _bytes32(value: bytes) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError("expected 32 bytes")
    return value


# ---------------------------------------------------------------------------------------------------- reads

_IMMUTABLE, _MUTABLE, _UNCACHED = "immutable", "mutable", "uncached"


@dataclass(frozen=True, slots=True)
class _Read:
    """One JSON-RPC read: its cache key, request, decoder and caching policy."""

    key: tuple[Any, ...]
    method: str
    params: list[Any]
    decode: Callable[[Any], Any]
    policy: str
    """`immutable` (LRU), `mutable` (optional cache) or `uncached`."""
    final: Callable[[Any], bool] = lambda _value: True
    """For immutable reads: whether this answer can never change (e.g. a root that is anchored)."""


class _Failed:
    """A prefetched read that raised; re-raised when the value is asked for."""

    __slots__ = ("error",)

    def __init__(self, error: ChainError) -> None:
        self.error = error


# ---------------------------------------------------------------------------------------------------- reader


class ChainReader:
    """Typed reads of ConsortiumRegistry and TraceAnchor views over one JSON-RPC endpoint (thread-safe)."""

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
        self.registry_address: str = checksum_address(registry_address)
        """The ConsortiumRegistry read from."""
        self.anchor_address: str = checksum_address(anchor_address)
        """The TraceAnchor read from."""
        self._facts = FactCache(cache_size)
        self.mutable_cache: FactCache | None = mutable_cache
        """Cache of mutable facts, or None to read them fresh every time."""
        self._head = 0
        self._local = threading.local()

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

    @contextmanager
    def prefetched(self, calls: Iterable[tuple[str, tuple[Any, ...]]]) -> Iterator[None]:
        """Within the block, answer `calls` (`(method name, args)`) from one JSON-RPC batch sent up front.

        Only reads not already cached are sent; mutable answers are shared by this thread's reads inside
        the block (one consistent view per verification) and are cached only if a `mutable_cache` is set.
        Raises `ChainUnavailableError` if the endpoint cannot be reached.
        """
        reads: dict[tuple[Any, ...], _Read] = {}
        for name, args in calls:
            for read in self._reads_for(name, args):
                if self._cached(read) is _MISSING:
                    reads.setdefault(read.key, read)
        if any(r.key[0] == "was_member_at" for r in reads.values()):
            reads[("head",)] = self._head_read()
        scratch: dict[tuple[Any, ...], Any] = {}
        # The head first: caching a wasMemberAt answer depends on it.
        pending = sorted(reads.values(), key=lambda r: r.key != ("head",))
        if pending:
            raws = self._rpc_batch([(r.method, r.params) for r in pending])
            for read, raw in zip(pending, raws, strict=True):
                scratch[read.key] = _Failed(raw) if isinstance(raw, ChainError) else self._settle(read, raw)
        previous = getattr(self._local, "scratch", None)
        self._local.scratch = {**(previous or {}), **scratch}
        try:
            yield
        finally:
            self._local.scratch = previous

    # ------------------------------------------------------------------ immutable facts (LRU)

    def chain_id(self) -> int:
        """The chain id (`eth_chainId`)."""
        return self._get(_Read(("chain_id",), "eth_chainId", [], lambda r: int(r, 16), _IMMUTABLE))

    def has_code(self, address: str) -> bool:
        """Whether a contract is deployed at `address` (a positive answer is cached)."""
        return self._get(self._code_read(checksum_address(address)))

    def anchor_registry(self) -> str:
        """The registry TraceAnchor consults for roles (an immutable of the contract)."""
        return self._get(self._call_read(("anchor_registry",), _IMMUTABLE, "TraceAnchor", "registry", (), _first))

    def batch(self, root: bytes) -> AnchoredBatch | None:
        """The batch anchored with `root`, or None if the root was never anchored."""
        return self._get(self._batch_read(_bytes32(root)))

    def was_member_at(self, address: str, block_number: int) -> bool:
        """Whether `address` was an active MEMBER during `block_number` (cached once the block is mined)."""
        return self._get(self._was_member_read(checksum_address(address), block_number))

    def block_number(self) -> int:
        """The latest block number."""
        return self._get(self._head_read())

    def anchor_transaction(self, tx_hash: str) -> AnchorTransaction | None:
        """The mined transaction `tx_hash` with the batches TraceAnchor anchored in it, or None if unknown."""
        return self._get(self._tx_read(tx_hash.lower()))

    # ------------------------------------------------------------------ mutable facts (fresh by default)

    def member(self, address: str) -> MemberEntry:
        """The registry entry of `address` (all zero if unknown)."""
        return self._get(self._member_read(checksum_address(address)))

    def has_role(self, address: str, role: int) -> bool:
        """Whether `address` is active and holds every bit of `role` (MEMBER=1, REGULATOR=2, ISSUER=4)."""
        address = checksum_address(address)
        return self._get(
            self._call_read(("has_role", address, role), _MUTABLE, "ConsortiumRegistry", "hasRole", (address, role))
        )

    def is_active_member(self, address: str) -> bool:
        """Whether `address` is active with the MEMBER role now."""
        return self.has_role(address, 1)

    def is_issuer_fingerprint(self, fingerprint: bytes) -> bool:
        """Whether the SHA-256 certificate `fingerprint` belongs to an active ISSUER."""
        return self._get(self._is_issuer_fp_read(_bytes32(fingerprint)))

    def issuer_fingerprint(self, address: str) -> bytes:
        """The certificate fingerprint registered for `address` (32 zero bytes if none)."""
        return self._get(self._issuer_fp_read(checksum_address(address)))

    def revocation(self, root: bytes, record_hash: bytes) -> RevocationFact:
        """The revocation state of `record_hash` as a record of the batch `root`.

        Only a revocation under that root counts: any member can anchor a root of its own containing another
        agency's leaf, so a revocation under a different root says nothing about this record.
        """
        return self._get(self._revocation_read(_bytes32(root), _bytes32(record_hash)))

    def recall(self, trace_code_hash: bytes) -> LotRecallFact:
        """The recall state of the lot with `trace_code_hash`."""
        return self._get(self._recall_read(_bytes32(trace_code_hash)))

    def recalls(self, trace_code_hashes: Iterable[bytes]) -> dict[bytes, LotRecallFact]:
        """The recall state of several lots, the ones not at hand read in one JSON-RPC batch."""
        wanted = list(dict.fromkeys(_bytes32(h) for h in trace_code_hashes))
        with self.prefetched([("recall", (h,)) for h in wanted]):
            return {h: self.recall(h) for h in wanted}

    # ------------------------------------------------------------------ read specs

    def _reads_for(self, name: str, args: tuple[Any, ...]) -> list[_Read]:
        """The reads behind public method `name` called with `args` (for `prefetched`)."""
        try:
            if name == "chain_id":
                return [_Read(("chain_id",), "eth_chainId", [], lambda r: int(r, 16), _IMMUTABLE)]
            if name == "has_code":
                return [self._code_read(checksum_address(args[0]))]
            if name == "anchor_registry":
                return [self._call_read(("anchor_registry",), _IMMUTABLE, "TraceAnchor", "registry", (), _first)]
            if name == "batch":
                return [self._batch_read(_bytes32(args[0]))]
            if name == "was_member_at":
                return [self._was_member_read(checksum_address(args[0]), int(args[1]))]
            if name == "anchor_transaction":
                return [self._tx_read(str(args[0]).lower())]
            if name == "member":
                return [self._member_read(checksum_address(args[0]))]
            if name == "is_issuer_fingerprint":
                return [self._is_issuer_fp_read(_bytes32(args[0]))]
            if name == "issuer_fingerprint":
                return [self._issuer_fp_read(checksum_address(args[0]))]
            if name == "revocation":
                return [self._revocation_read(_bytes32(args[0]), _bytes32(args[1]))]
            if name == "recall":
                return [self._recall_read(_bytes32(args[0]))]
        except (ValueError, TypeError, IndexError):
            return []  # a malformed argument: the typed method will reject it when it is called
        raise ValueError(f"ChainReader cannot prefetch {name!r}")

    def _code_read(self, address: str) -> _Read:
        def decode(raw: Any) -> bool:
            return raw not in ("0x", "", None)

        return _Read(("code", address), "eth_getCode", [address, "latest"], decode, _IMMUTABLE, final=bool)

    def _head_read(self) -> _Read:
        def decode(raw: Any) -> int:
            head = int(raw, 16)
            self._head = max(self._head, head)
            return head

        return _Read(("head",), "eth_blockNumber", [], decode, _UNCACHED)

    def _batch_read(self, root: bytes) -> _Read:
        def decode(values: tuple[Any, ...]) -> AnchoredBatch | None:
            agency, block_number, timestamp, count, schema = values
            if int(agency, 16) == 0:
                return None
            return AnchoredBatch(root, agency, block_number, timestamp, count, schema)

        return self._call_read(
            ("batch", root), _IMMUTABLE, "TraceAnchor", "batch", (root,), decode, final=lambda b: b is not None
        )

    def _was_member_read(self, address: str, block_number: int) -> _Read:
        # Final once the block is mined (a future block's answer can still change). The head only grows; a
        # prefetch reads it in the same batch, a single read asks for it only when the known head is lower.
        return self._call_read(
            ("was_member_at", address, block_number),
            _IMMUTABLE,
            "ConsortiumRegistry",
            "wasMemberAt",
            (address, block_number),
            _first,
            final=lambda _v: block_number <= self._head or block_number <= self.block_number(),
        )

    def _tx_read(self, tx_hash: str) -> _Read:
        def decode(receipt: Any) -> AnchorTransaction | None:
            if not receipt or receipt.get("blockNumber") is None:
                return None
            anchored = set()
            for log in receipt.get("logs") or ():
                topics = log.get("topics") or []
                if (
                    checksum_address(log.get("address", _ZERO_ADDRESS)) == self.anchor_address
                    and len(topics) == 3
                    and bytes.fromhex(topics[0][2:]) == _BATCH_ANCHORED_TOPIC
                ):
                    anchored.add((bytes.fromhex(topics[1][2:]), checksum_address("0x" + topics[2][-40:])))
            return AnchorTransaction(
                tx_hash=tx_hash,
                block_number=int(receipt["blockNumber"], 16),
                succeeded=int(receipt.get("status") or "0x0", 16) == 1,
                anchored=frozenset(anchored),
            )

        return _Read(
            ("tx", tx_hash), "eth_getTransactionReceipt", [tx_hash], decode, _IMMUTABLE, final=lambda t: t is not None
        )

    def _member_read(self, address: str) -> _Read:
        def decode(values: tuple[Any, ...]) -> MemberEntry:
            ((identity, roles, active, successor, name, code),) = values
            return MemberEntry(address, identity, roles, active, checksum_address(successor), name, code)

        return self._call_read(("member", address), _MUTABLE, "ConsortiumRegistry", "member", (address,), decode)

    def _is_issuer_fp_read(self, fp: bytes) -> _Read:
        return self._call_read(("is_issuer_fp", fp), _MUTABLE, "ConsortiumRegistry", "isIssuerFingerprint", (fp,))

    def _issuer_fp_read(self, address: str) -> _Read:
        return self._call_read(
            ("issuer_fp", address), _MUTABLE, "ConsortiumRegistry", "issuerFingerprint", (address,), _first
        )

    def _revocation_read(self, root: bytes, record_hash: bytes) -> _Read:
        def decode(values: tuple[Any, ...]) -> RevocationFact:
            revoked, timestamp, reason = values
            return RevocationFact(revoked, timestamp, root, reason)

        return self._call_read(
            ("revocation", root, record_hash),
            _MUTABLE,
            "TraceAnchor",
            "revocation",
            (root, record_hash),
            decode,
        )

    def _recall_read(self, trace_code_hash: bytes) -> _Read:
        return self._call_read(
            ("recall", trace_code_hash),
            _MUTABLE,
            "TraceAnchor",
            "recall",
            (trace_code_hash,),
            lambda v: LotRecallFact(*v),
        )

    def _call_read(
        self,
        key: tuple[Any, ...],
        policy: str,
        contract: str,
        name: str,
        args: tuple[Any, ...],
        decode: Callable[[tuple[Any, ...]], Any] | None = None,
        *,
        final: Callable[[Any], bool] = lambda _value: True,
    ) -> _Read:
        fn = _function(contract, name)
        to = self.registry_address if contract == "ConsortiumRegistry" else self.anchor_address
        data = "0x" + (fn.selector + abi_encode(fn.input_types, list(args))).hex()
        post = decode or (lambda values: values[0] if len(values) == 1 else values)

        def decode_call(raw: Any) -> Any:
            return post(_decode_output(contract, name, to, fn, raw))

        return _Read(key, "eth_call", [{"to": to, "data": data}, "latest"], decode_call, policy, final)

    # ------------------------------------------------------------------ caching and transport

    def _cached(self, read: _Read) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is not None and read.key in scratch:
            return scratch[read.key]
        if read.policy == _IMMUTABLE:
            return self._facts.get(read.key, _MISSING)
        if read.policy == _MUTABLE and self.mutable_cache is not None:
            return self.mutable_cache.get(read.key, _MISSING)
        return _MISSING

    def _get(self, read: _Read) -> Any:
        found = self._cached(read)
        if found is _MISSING:
            found = self._settle(read, self._rpc(read.method, read.params))
        if isinstance(found, _Failed):
            raise found.error
        return found

    def _settle(self, read: _Read, raw: Any) -> Any:
        """Decode a raw answer and cache it according to the read's policy."""
        try:
            value = read.decode(raw)
        except ChainError as exc:
            return _Failed(exc)
        if read.policy == _IMMUTABLE and read.final(value):
            self._facts.put(read.key, value)
        elif read.policy == _MUTABLE and self.mutable_cache is not None:
            self.mutable_cache.put(read.key, value)
        return value

    def _rpc(self, method: str, params: list[Any]) -> Any:
        try:
            response = self._w3.provider.make_request(RPCEndpoint(method), params)
        except Exception as exc:
            raise _translate(exc) from exc
        result = _result(method, response)
        if isinstance(result, ChainError):
            raise result
        return result

    def _rpc_batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Answers (or ChainErrors) of `calls`, in one JSON-RPC batch when the node accepts batches."""
        if len(calls) > _MAX_BATCH:  # stay well under node limits (Besu: 1024 per batch)
            return [r for i in range(0, len(calls), _MAX_BATCH) for r in self._rpc_batch(calls[i : i + _MAX_BATCH])]
        if len(calls) == 1:
            return [self._try_rpc(*calls[0])]
        try:
            responses = self._w3.provider.make_batch_request([(RPCEndpoint(m), p) for m, p in calls])
        except NotImplementedError:
            return [self._try_rpc(m, p) for m, p in calls]
        except Exception as exc:
            raise _translate(exc) from exc
        if not isinstance(responses, list) or len(responses) != len(calls):
            return [self._try_rpc(m, p) for m, p in calls]  # a node that refuses batches
        return [_result(m, r) for (m, _p), r in zip(calls, responses, strict=True)]

    def _try_rpc(self, method: str, params: list[Any]) -> Any:
        try:
            return self._rpc(method, params)
        except ChainUnavailableError:
            raise
        except ChainError as exc:
            return exc


def _first(values: tuple[Any, ...]) -> Any:
    return values[0]


def _decode_output(contract: str, name: str, to: str, fn: _Function, result: Any) -> tuple[Any, ...]:
    raw = bytes.fromhex(result[2:]) if isinstance(result, str) and result.startswith("0x") else b""
    if not raw:
        raise ContractNotFoundError(f"no {contract} answers at {to} ({name} returned nothing)")
    try:
        decoded = abi_decode(fn.output_types, raw)
    except Exception as exc:  # eth_abi raises several unrelated types for bad data
        raise ContractNotFoundError(f"{to} is not a {contract} ({name} returned undecodable data)") from exc
    return tuple(checksum_address(v) if t == "address" else v for t, v in zip(fn.output_types, decoded, strict=True))


def _result(method: str, response: Any) -> Any:
    """The result of one JSON-RPC response; an error response becomes a ChainError value."""
    if not isinstance(response, dict):
        raise ChainUnavailableError(f"{method}: the endpoint did not answer JSON-RPC")
    if response.get("error"):
        error = response["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        return ChainError(f"{method} failed: {message}")
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
