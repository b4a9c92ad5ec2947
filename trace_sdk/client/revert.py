"""Decode contract reverts (custom errors of both TraceChain contracts) into readable SDK exceptions."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractLogicError, Web3RPCError

from trace_sdk.client.contracts import CONTRACT_NAMES, load_artifact
from trace_sdk.exceptions import ChainError, ContractRevertError, NotMemberError, TraceError

__all__ = [
    "ERROR_DESCRIPTIONS",
    "DecodedRevertError",
    "NotMemberRevertError",
    "decode_revert",
    "decode_revert_data",
    "revert_data",
]

# One plain sentence per custom error; tests check that every error of both ABIs has one.
ERROR_DESCRIPTIONS: dict[str, str] = {
    "ConsortiumRegistryNotMember": "the account is not an active consortium member",
    "ConsortiumRegistryInvalidAccount": "the zero address cannot be used as an account",
    "ConsortiumRegistryAccountExists": "the account was already added once and cannot be reused",
    "ConsortiumRegistryInactiveAccount": "the account is not an active member entry",
    "ConsortiumRegistryInvalidRoles": "roles must combine MEMBER=1, REGULATOR=2, ISSUER=4 (and not be 0)",
    "ConsortiumRegistryMissingRole": "the account does not hold the required role",
    "ConsortiumRegistryNoActiveMembers": "the change would leave no active member",
    "ConsortiumRegistryNoActiveRegulator": "the change would leave no active regulator",
    "ConsortiumRegistryUnreachableThreshold": "the threshold would exceed the number of active members",
    "ConsortiumRegistryFingerprintInUse": "the fingerprint is already registered to another active issuer",
    "ConsortiumRegistryInitialMembersMismatch": "the initial member lists have different lengths",
    "ConsortiumRegistryInvalidProposalLifetime": "the proposal lifetime must be at least one block",
    "ConsortiumRegistryNonexistentProposal": "there is no proposal with this id",
    "ConsortiumRegistryUnexpectedProposalState": "the proposal is no longer open for votes",
    "ConsortiumRegistryAlreadyVoted": "this member already voted on the proposal",
    "ConsortiumRegistryThresholdNotReached": "the proposal does not have enough YES votes yet",
    "TraceAnchorNotMember": "only an active consortium member can anchor batches",
    "TraceAnchorNotRegulator": "only an active regulator can do this",
    "TraceAnchorInvalidRegistry": "the registry address has no contract code",
    "TraceAnchorZeroRoot": "the Merkle root must not be zero",
    "TraceAnchorZeroCount": "a batch must contain at least one record",
    "TraceAnchorDuplicateRoot": "this Merkle root was already anchored",
    "TraceAnchorUnknownRoot": "this Merkle root was never anchored",
    "TraceAnchorInvalidProof": "the Merkle proof does not show the record to be part of the batch",
    "TraceAnchorUnauthorizedRevoker": "only the anchoring agency or an active regulator may revoke it",
    "TraceAnchorAlreadyRevoked": "the record was already revoked under this Merkle root",
    "TraceAnchorZeroTraceCodeHash": "the trace code hash must not be zero",
    "TraceAnchorAlreadyRecalled": "the lot was already recalled",
    "TraceAnchorClockOverflow": "the block number or timestamp no longer fits the anchor format",
    "Error": "the contract reverted with a reason string",
    "Panic": "the contract hit an internal assertion (Solidity panic)",
}

_NOT_MEMBER_ERRORS = frozenset(
    {"ConsortiumRegistryNotMember", "TraceAnchorNotMember", "TraceAnchorNotRegulator"}
)
_PROPOSAL_STATES = ("Active", "Executed", "Expired")
_PANIC_CODES = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x22: "corrupt storage byte array",
    0x31: "pop on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialised function",
}
_HEX_DATA = re.compile(r"^0x[0-9a-fA-F]{8}(?:[0-9a-fA-F]{64})*$")
_HEX_IN_TEXT = re.compile(r"0x[0-9a-fA-F]{8}(?:[0-9a-fA-F]{64})*\b")


class DecodedRevertError(ContractRevertError):
    """A decoded custom-error revert whose ``str()`` is the readable sentence (also in ``user_message``)."""

    def __init__(self, error_name: str, args: Sequence[Any], description: str, readable: str) -> None:
        super().__init__(error_name, args, user_message=readable)
        self.description = description
        self.readable = readable

    def __str__(self) -> str:
        return self.readable


class NotMemberRevertError(DecodedRevertError, NotMemberError):
    """A revert because the sender lacks membership or a role; also a :class:`NotMemberError`."""


@lru_cache(maxsize=1)
def _error_table() -> dict[bytes, tuple[str, list[dict[str, Any]]]]:
    """Custom errors of both contracts (plus Error/Panic) by 4-byte selector."""
    table: dict[bytes, tuple[str, list[dict[str, Any]]]] = {}
    entries: list[dict[str, Any]] = [
        {"type": "error", "name": "Error", "inputs": [{"name": "reason", "type": "string"}]},
        {"type": "error", "name": "Panic", "inputs": [{"name": "code", "type": "uint256"}]},
    ]
    for name in CONTRACT_NAMES:
        entries += [e for e in load_artifact(name)["abi"] if e.get("type") == "error"]
    for entry in entries:
        inputs = list(entry.get("inputs", []))
        signature = f"{entry['name']}({','.join(_canonical_type(i) for i in inputs)})"
        table[keccak(text=signature)[:4]] = (entry["name"], inputs)
    return table


def _canonical_type(param: Mapping[str, Any]) -> str:
    """The canonical ABI type of a parameter, expanding tuples."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in param.get("components", []))
        return f"({inner}){kind[len('tuple'):]}"
    return kind


def _normalise(value: Any) -> Any:
    """Decoded ABI values as plain Python: checksum addresses, 0x-hex bytes, tuples of those."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return to_checksum_address(value)
    if isinstance(value, list | tuple):
        return tuple(_normalise(v) for v in value)
    return value


def _render(name: str, inputs: Sequence[Mapping[str, Any]], args: Sequence[Any]) -> str:
    """``Name(arg, ...)`` with enums and state bitmaps spelled out."""
    parts = []
    for param, value in zip(inputs, args, strict=False):
        internal = str(param.get("internalType", ""))
        if internal.endswith("ProposalState") and isinstance(value, int) and value < len(_PROPOSAL_STATES):
            parts.append(_PROPOSAL_STATES[value])
        elif name.endswith("UnexpectedProposalState") and param.get("name") == "expectedStates":
            bits = int(value, 16)
            parts.append("|".join(s for i, s in enumerate(_PROPOSAL_STATES) if bits >> i & 1) or "none")
        elif name == "Panic" and isinstance(value, int):
            parts.append(f"0x{value:02x}: {_PANIC_CODES.get(value, 'unknown panic')}")
        elif isinstance(value, str) and not value.startswith("0x"):
            parts.append(repr(value))
        else:
            parts.append(str(value))
    return f"{name}({', '.join(parts)})"


def decode_revert_data(data: str | bytes) -> DecodedRevertError | None:
    """Decode raw revert data by its selector; None if the selector is not one of ours."""
    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else bytes(data)
    if len(raw) < 4:
        return None
    entry = _error_table().get(raw[:4])
    if entry is None:
        return None
    name, inputs = entry
    try:
        decoded = abi_decode([_canonical_type(i) for i in inputs], raw[4:])
    except Exception:
        return None
    args = tuple(_normalise(v) for v in decoded)
    description = ERROR_DESCRIPTIONS.get(name, "the contract rejected the transaction")
    readable = f"{_render(name, inputs, args)}: {description}"
    cls = NotMemberRevertError if name in _NOT_MEMBER_ERRORS else DecodedRevertError
    return cls(name, args, description, readable)


def _find_revert_hex(value: Any, depth: int = 0) -> str | None:
    """The first revert-data-shaped hex string in an RPC error payload (str, dict, list)."""
    if depth > 6 or value is None:
        return None
    if isinstance(value, bytes):
        return "0x" + value.hex() if len(value) >= 4 else None
    if isinstance(value, str):
        text = value.removeprefix("Reverted ").strip()
        if _HEX_DATA.match(text):
            return text
        return None
    if isinstance(value, Mapping):
        for key in ("data", "error", "result", "revert", "originalError"):
            if key in value and (found := _find_revert_hex(value[key], depth + 1)):
                return found
        for item in value.values():
            if found := _find_revert_hex(item, depth + 1):
                return found
        return None
    if isinstance(value, list | tuple):
        for item in value:
            if found := _find_revert_hex(item, depth + 1):
                return found
    return None


def revert_data(exc: BaseException) -> str | None:
    """The raw revert data carried by a web3/RPC exception (``data`` or ``error.data``), if any."""
    candidates: list[Any] = []
    if isinstance(exc, ContractLogicError):
        candidates.append(exc.data)
    if isinstance(exc, Web3RPCError):
        candidates.append(exc.rpc_response)
    candidates.extend(getattr(exc, "args", ()))
    for candidate in candidates:
        if found := _find_revert_hex(candidate):
            return found
    # Last resort: a node that only puts the data in its message text.
    match = _HEX_IN_TEXT.search(str(exc))
    return match.group(0) if match else None


def decode_revert(exc: BaseException) -> TraceError:
    """Turn a failed call/estimate/send into a TraceError: a decoded ContractRevertError when possible."""
    if isinstance(exc, TraceError):
        return exc
    data = revert_data(exc)
    if data is not None and (decoded := decode_revert_data(data)) is not None:
        return decoded
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return ChainError(f"the chain rejected the call: {message}")
