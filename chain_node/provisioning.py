"""Prepare a reachable chain for TraceChain: deploy once, seed and fund the demo consortium, register the issuer.

Shared by `tracechain up` (embedded Anvil or TRACECHAIN_RPC_URL, then runs the service) and
`tracechain deploy` (one-shot, for containers and Besu networks).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import rlp
from eth_account import Account
from eth_utils import keccak, to_canonical_address, to_checksum_address
from rich.console import Console
from web3 import Web3

from chain_node.consortium import (
    AgencyIdentity,
    demo_consortium_document,
    load_or_create_agency_keys,
    write_private_json,
)
from chain_node.deploy import Deployment, MemberSpec, contracts_present, deploy_contracts
from trace_sdk.client.governance import GovernanceClient

__all__ = [
    "ProvisioningError",
    "archive_stale_service_data",
    "create_address",
    "ensure_deployment",
    "ensure_issuer_fingerprint",
    "fund_agencies",
    "provision",
    "read_deployment_manifest",
    "write_deployment_manifest",
]

_AGENCY_MIN_BALANCE_WEI = Web3.to_wei(10, "ether")
_AGENCY_TOP_UP_WEI = Web3.to_wei(1000, "ether")


class ProvisioningError(RuntimeError):
    """The chain cannot be prepared as asked."""


def create_address(sender: str, nonce: int) -> str:
    """The address of a contract created by ``sender``'s transaction number ``nonce`` (CREATE)."""
    return to_checksum_address(keccak(rlp.encode([to_canonical_address(sender), nonce]))[12:])


def read_deployment_manifest(path: Path) -> Deployment | None:
    """`deployment.json`, if there is one."""
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return Deployment(
        registry=data["contracts"]["ConsortiumRegistry"],
        anchor=data["contracts"]["TraceAnchor"],
        deployment_block=int(data["deployment_block"]),
        chain_id=int(data["chain_id"]),
    )


def write_deployment_manifest(path: Path, deployment: Deployment, rpc_url: str) -> None:
    """Write `deployment.json` atomically (the service reads it at start)."""
    document = {
        "chain_id": deployment.chain_id,
        "rpc_url": rpc_url,
        "contracts": {"ConsortiumRegistry": deployment.registry, "TraceAnchor": deployment.anchor},
        "deployment_block": deployment.deployment_block,
        "deployed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def archive_stale_service_data(data_dir: Path, log: Console) -> None:
    """Move the default SQLite database of a lost deployment aside: its records point at contracts that no
    longer exist. (A PostgreSQL database named by TRACECHAIN_DATABASE_URL is left to its operator.)"""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    for name in ("service.db", "service.db-wal", "service.db-shm"):
        path = data_dir / name
        if path.exists():
            path.rename(data_dir / f"{name}.stale-{stamp}")
            log.print(f"[yellow]![/] kept the old deployment's {name} as {name}.stale-{stamp}")


def ensure_deployment(
    w3: Web3,
    deployer_key: str,
    agencies: list[AgencyIdentity],
    data_dir: Path,
    rpc_url: str,
    log: Console,
    *,
    expected_registry: str | None = None,
) -> Deployment:
    """Reuse the manifest's deployment when the chain still holds it; deploy otherwise.

    The deployer is allowed as a non-member account: on Besu with account permissioning bound to
    `transactionAllowed`, the registry's creation switches permissioning on and the deployer's next
    transaction (TraceAnchor's creation) must pass it. ``expected_registry`` is the address the nodes'
    permissioning points at (predicted from the deployer's nonce); deploying anywhere else is refused.
    """
    manifest = data_dir / "deployment.json"
    existing = read_deployment_manifest(manifest)
    if existing is not None and existing.chain_id == w3.eth.chain_id and contracts_present(w3, existing):
        if expected_registry is not None and existing.registry != expected_registry:
            raise ProvisioningError(
                f"deployment.json's ConsortiumRegistry {existing.registry} is not the address the nodes' "
                f"permissioning expects ({expected_registry})"
            )
        log.print(f"[green]✓[/] contracts already deployed (block {existing.deployment_block})")
        return existing
    if existing is not None:
        log.print("[yellow]![/] the chain no longer has the deployed contracts: deploying again")
        archive_stale_service_data(data_dir, log)
    deployer = Account.from_key(deployer_key).address
    predicted = create_address(deployer, int(w3.eth.get_transaction_count(deployer, "pending")))
    if expected_registry is not None and predicted != expected_registry:
        raise ProvisioningError(
            f"the registry would be created at {predicted} (deployer {deployer}), but the nodes' permissioning "
            f"points at {expected_registry}; deploy from a fresh deployer (nonce 0) or regenerate the consortium"
        )
    members = [MemberSpec(a.address, a.name, a.code, a.roles) for a in agencies]
    deployment = deploy_contracts(w3, deployer_key, members, threshold=0, allowed_accounts=[deployer])
    if deployment.registry != predicted:
        raise ProvisioningError(f"the registry was created at {deployment.registry}, not at {predicted}")
    write_deployment_manifest(manifest, deployment, rpc_url)
    log.print(f"[green]✓[/] deployed ConsortiumRegistry {deployment.registry}, TraceAnchor {deployment.anchor}")
    return deployment


def fund_agencies(w3: Web3, funder_key: str, agencies: list[AgencyIdentity]) -> None:
    """Top up the agencies' gas money from the funder (dev chains; zero-gas-price chains need none)."""
    if w3.eth.gas_price == 0:
        return
    funder = Account.from_key(funder_key)
    nonce = w3.eth.get_transaction_count(funder.address, "pending")
    hashes = []
    for agency in agencies:
        if w3.eth.get_balance(agency.address) >= _AGENCY_MIN_BALANCE_WEI:
            continue
        tx = {
            "to": agency.address,
            "value": _AGENCY_TOP_UP_WEI,
            "gas": 21_000,
            "gasPrice": w3.eth.gas_price * 2,
            "nonce": nonce,
            "chainId": w3.eth.chain_id,
        }
        hashes.append(w3.eth.send_raw_transaction(funder.sign_transaction(tx).raw_transaction))
        nonce += 1
    for tx_hash in hashes:
        w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)


def ensure_issuer_fingerprint(
    rpc_url: str, deployment: Deployment, agencies: list[AgencyIdentity], fingerprint_hex: str, log: Console
) -> None:
    """Register the certificate service's X.509 fingerprint for the ISSUER through M-of-N governance."""
    wanted = fingerprint_hex.lower().removeprefix("0x")
    issuer = next(a for a in agencies if "ISSUER" in a.roles)
    proposer = GovernanceClient(rpc_url, issuer.private_key, deployment.registry)
    if proposer.issuer_fingerprint(issuer.address) == wanted:
        return
    proposal_id = proposer.propose_issuer_fingerprint(issuer.address, fingerprint_hex)
    for voter in agencies:
        if voter.address == issuer.address or proposer.proposal_executed(proposal_id):
            continue
        GovernanceClient(rpc_url, voter.private_key, deployment.registry).vote(proposal_id, support=True)
    if proposer.issuer_fingerprint(issuer.address) != wanted:
        raise ProvisioningError("governance did not register the issuer fingerprint")
    log.print(f"[green]✓[/] issuer certificate fingerprint registered on chain by governance ({proposal_id=})")


def provision(
    w3: Web3,
    *,
    rpc_url: str,
    deployer_key: str,
    data_dir: Path,
    service_url: str,
    log: Console,
    expected_registry: str | None = None,
) -> tuple[Deployment, list[AgencyIdentity]]:
    """Everything `up` and `deploy` do to a reachable chain; writes `demo-consortium.json` last."""
    data_dir.mkdir(parents=True, exist_ok=True)
    agencies = load_or_create_agency_keys(data_dir / "agency-keys.json")
    deployment = ensure_deployment(
        w3, deployer_key, agencies, data_dir, rpc_url, log, expected_registry=expected_registry
    )
    fund_agencies(w3, deployer_key, agencies)

    from certificate_service.pki import IssuerPKI  # the service's PKI lives with the service

    pki = IssuerPKI.load_or_create(data_dir)
    ensure_issuer_fingerprint(rpc_url, deployment, agencies, pki.fingerprint_sha256, log)
    write_private_json(
        data_dir / "demo-consortium.json",
        demo_consortium_document(
            rpc_url=rpc_url,
            service_url=service_url,
            chain_id=deployment.chain_id,
            contracts={"ConsortiumRegistry": deployment.registry, "TraceAnchor": deployment.anchor},
            agencies=agencies,
            funder_private_key=deployer_key,
        ),
    )
    return deployment, agencies
