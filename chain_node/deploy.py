"""Deploy ConsortiumRegistry + TraceAnchor from the SDK's artifacts, and check a deployment is still there."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from web3 import Web3

from trace_sdk.client.contracts import load_artifact, role_mask
from trace_sdk.client.transactions import TransactionSender

__all__ = [
    "DEFAULT_PROPOSAL_LIFETIME_BLOCKS", "Deployment", "MemberSpec", "contracts_present", "deploy_contracts"
]

# About one week of 2-second QBFT blocks; on an automining Anvil a block per transaction.
DEFAULT_PROPOSAL_LIFETIME_BLOCKS = 302_400


@dataclass(frozen=True)
class MemberSpec:
    """An initial consortium member: address, agency name, agency code, roles (names or bitmask)."""

    address: str
    name: str
    code: str
    roles: int | str | Iterable[str]


@dataclass(frozen=True)
class Deployment:
    """Where the contracts live on a chain."""

    registry: str
    anchor: str
    deployment_block: int
    chain_id: int


def deploy_contracts(
    w3: Web3,
    deployer_private_key: str,
    members: Sequence[MemberSpec],
    *,
    threshold: int = 0,
    proposal_lifetime_blocks: int = DEFAULT_PROPOSAL_LIFETIME_BLOCKS,
    allowed_accounts: Iterable[str] = (),
) -> Deployment:
    """Deploy the registry with ``members`` (threshold 0 = majority) and the anchor bound to it."""
    sender = TransactionSender(w3, deployer_private_key)
    registry_artifact = load_artifact("ConsortiumRegistry")
    anchor_artifact = load_artifact("TraceAnchor")
    registry_receipt = sender.deploy(
        registry_artifact["abi"],
        registry_artifact["bytecode"],
        [Web3.to_checksum_address(m.address) for m in members],
        [m.name for m in members],
        [m.code for m in members],
        [role_mask(m.roles) for m in members],
        threshold,
        proposal_lifetime_blocks,
        [Web3.to_checksum_address(a) for a in allowed_accounts],
    )
    registry = Web3.to_checksum_address(registry_receipt["contractAddress"])
    anchor_receipt = sender.deploy(anchor_artifact["abi"], anchor_artifact["bytecode"], registry)
    return Deployment(
        registry=registry,
        anchor=Web3.to_checksum_address(anchor_receipt["contractAddress"]),
        deployment_block=int(registry_receipt["blockNumber"]),
        chain_id=sender.chain_id,
    )


def _masked(code: bytes, artifact: dict[str, Any]) -> bytes:
    """``code`` with the artifact's immutable slots zeroed (as solc leaves them in deployedBytecode)."""
    buffer = bytearray(code)
    for references in artifact.get("immutableReferences", {}).values():
        for ref in references:
            start, length = int(ref["start"]), int(ref["length"])
            buffer[start : start + length] = bytes(length)
    return bytes(buffer)


def contracts_present(w3: Web3, deployment: Deployment) -> bool:
    """True if both addresses hold exactly the artifacts' runtime code (immutables ignored)."""
    for name, address in (("ConsortiumRegistry", deployment.registry), ("TraceAnchor", deployment.anchor)):
        artifact = load_artifact(name)
        expected = bytes.fromhex(artifact["deployedBytecode"].removeprefix("0x"))
        code = bytes(w3.eth.get_code(Web3.to_checksum_address(address)))
        if len(code) != len(expected) or _masked(code, artifact) != expected:
            return False
    return True
