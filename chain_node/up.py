"""`tracechain up`: start (or reach) the chain, deploy once, seed the demo consortium, run the service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from eth_account import Account
from rich.console import Console
from rich.table import Table
from web3 import Web3

from chain_node.anvil import AnvilProcess, derive_private_keys, new_mnemonic, start_anvil
from chain_node.consortium import (
    AgencyIdentity,
    demo_consortium_document,
    load_or_create_agency_keys,
    write_private_json,
)
from chain_node.deploy import Deployment, MemberSpec, contracts_present, deploy_contracts
from chain_node.settings import NodeSettings
from trace_sdk.client.governance import GovernanceClient

__all__ = ["ChainSession", "prepare_chain", "run_up"]

_DEV_ACCOUNTS = 10
_AGENCY_MIN_BALANCE_WEI = Web3.to_wei(10, "ether")
_AGENCY_TOP_UP_WEI = Web3.to_wei(1000, "ether")


@dataclass
class ChainSession:
    """A chain that is up with the contracts deployed and the demo consortium seeded."""

    rpc_url: str
    deployment: Deployment
    agencies: list[AgencyIdentity]
    funder_private_key: str
    anvil: AnvilProcess | None

    def stop(self) -> None:
        if self.anvil is not None:
            self.anvil.stop()


def _load_or_create_mnemonic(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    mnemonic = new_mnemonic()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(mnemonic + "\n")
    return mnemonic


def _read_deployment(path: Path) -> Deployment | None:
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return Deployment(
        registry=data["contracts"]["ConsortiumRegistry"],
        anchor=data["contracts"]["TraceAnchor"],
        deployment_block=int(data["deployment_block"]),
        chain_id=int(data["chain_id"]),
    )


def _write_deployment(path: Path, deployment: Deployment, rpc_url: str) -> None:
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


def _ensure_deployment(
    w3: Web3, deployer_key: str, agencies: list[AgencyIdentity], manifest: Path, rpc_url: str, log: Console
) -> Deployment:
    """Reuse the deployment in the manifest when the chain still has it; deploy otherwise."""
    existing = _read_deployment(manifest)
    if existing is not None and existing.chain_id == w3.eth.chain_id and contracts_present(w3, existing):
        log.print(f"[green]✓[/] contracts already deployed (block {existing.deployment_block})")
        return existing
    if existing is not None:
        log.print("[yellow]![/] the chain no longer has the deployed contracts: deploying again")
        _archive_stale_service_data(manifest.parent, log)
    members = [MemberSpec(a.address, a.name, a.code, a.roles) for a in agencies]
    deployment = deploy_contracts(w3, deployer_key, members, threshold=0)
    _write_deployment(manifest, deployment, rpc_url)
    log.print(f"[green]✓[/] deployed ConsortiumRegistry {deployment.registry}, TraceAnchor {deployment.anchor}")
    return deployment


def _archive_stale_service_data(data_dir: Path, log: Console) -> None:
    """Move the default SQLite database of the lost deployment aside: its records point at contracts
    that no longer exist. (A PostgreSQL database named by TRACECHAIN_DATABASE_URL is left to its operator.)"""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    for name in ("service.db", "service.db-wal", "service.db-shm"):
        path = data_dir / name
        if path.exists():
            path.rename(data_dir / f"{name}.stale-{stamp}")
            log.print(f"[yellow]![/] kept the old deployment's {name} as {name}.stale-{stamp}")


def _fund_agencies(w3: Web3, funder_key: str, agencies: list[AgencyIdentity]) -> None:
    """Top up the agencies' gas money from the funder (dev chains; zero-gas-price chains need none)."""
    funder = Account.from_key(funder_key)
    if w3.eth.gas_price == 0:
        return
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
        signed = funder.sign_transaction(tx)
        hashes.append(w3.eth.send_raw_transaction(signed.raw_transaction))
        nonce += 1
    for tx_hash in hashes:
        w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)


def ensure_issuer_fingerprint(
    rpc_url: str, deployment: Deployment, agencies: list[AgencyIdentity], fingerprint_hex: str, log: Console
) -> None:
    """Register the certificate service's X.509 fingerprint for the ISSUER through M-of-N governance."""
    issuer = next(a for a in agencies if "ISSUER" in a.roles)
    proposer = GovernanceClient(rpc_url, issuer.private_key, deployment.registry)
    if proposer.issuer_fingerprint(issuer.address) == fingerprint_hex.lower().removeprefix("0x"):
        return
    proposal_id = proposer.propose_issuer_fingerprint(issuer.address, fingerprint_hex)
    for voter in agencies:
        if voter.address == issuer.address:
            continue
        if proposer.proposal_executed(proposal_id):
            break
        GovernanceClient(rpc_url, voter.private_key, deployment.registry).vote(proposal_id, support=True)
    if proposer.issuer_fingerprint(issuer.address) != fingerprint_hex.lower().removeprefix("0x"):
        raise RuntimeError("governance did not register the issuer fingerprint")
    log.print(f"[green]✓[/] issuer certificate fingerprint registered on chain by governance ({proposal_id=})")


def prepare_chain(settings: NodeSettings, log: Console) -> ChainSession:
    """Start Anvil (or reach TRACECHAIN_RPC_URL), deploy once, seed and fund the demo consortium."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    anvil: AnvilProcess | None = None
    if settings.rpc_url:
        rpc_url = settings.rpc_url
        funder_key = settings.external_deployer_key()
    else:
        chain_dir = settings.data_dir / "dev-chain"
        mnemonic = _load_or_create_mnemonic(chain_dir / "mnemonic")
        anvil = start_anvil(
            port=settings.anvil_port,
            mnemonic=mnemonic,
            accounts=_DEV_ACCOUNTS,
            state_path=chain_dir / "state.json",
            log_path=chain_dir / "anvil.log",
        )
        rpc_url = anvil.rpc_url
        funder_key = derive_private_keys(mnemonic, 1)[0]
        log.print(f"[green]✓[/] Anvil listening on {rpc_url} (state in {chain_dir})")
    try:
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        agencies = load_or_create_agency_keys(settings.data_dir / "agency-keys.json")
        deployment = _ensure_deployment(
            w3, funder_key, agencies, settings.data_dir / "deployment.json", rpc_url, log
        )
        _fund_agencies(w3, funder_key, agencies)
    except BaseException:
        if anvil is not None:
            anvil.stop()
        raise
    return ChainSession(rpc_url, deployment, agencies, funder_key, anvil)


def _start_service(settings: NodeSettings, rpc_url: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        TRACECHAIN_RPC_URL=rpc_url,
        TRACECHAIN_DATA_DIR=str(settings.data_dir),
        TRACECHAIN_HTTP_HOST=settings.http_host,
        TRACECHAIN_HTTP_PORT=str(settings.http_port),
    )
    return subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "certificate_service.main:create_app", "--factory",
            "--host", settings.http_host, "--port", str(settings.http_port), "--log-level", "warning",
        ],
        env=env,
        start_new_session=True,
    )


def _wait_for_service(proc: subprocess.Popen[bytes], url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the certificate service exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the certificate service did not answer on {url} within {timeout_s:.0f}s")


def _stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _print_summary(log: Console, session: ChainSession, service_url: str, settings: NodeSettings) -> None:
    table = Table(title="TraceChain is up", show_header=False)
    table.add_row("chain RPC", session.rpc_url)
    table.add_row("chain id", str(session.deployment.chain_id))
    table.add_row("ConsortiumRegistry", session.deployment.registry)
    table.add_row("TraceAnchor", session.deployment.anchor)
    table.add_row("certificate service", f"{service_url}  (API docs {service_url}/docs)")
    table.add_row("verify page", f"{service_url}/verify")
    table.add_row("data dir", str(settings.data_dir))
    table.add_row("agencies + keys", str(settings.data_dir / "demo-consortium.json"))
    log.print(table)
    log.print("Press Ctrl-C to stop.")


def run_up(settings: NodeSettings | None = None, *, console: Console | None = None) -> int:
    """Bring the whole local system up and keep it running until SIGINT/SIGTERM."""
    settings = settings or NodeSettings.from_env()
    log = console or Console()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    session = prepare_chain(settings, log)
    service: subprocess.Popen[bytes] | None = None
    service_url = f"http://{settings.http_host}:{settings.http_port}"
    try:
        from certificate_service.pki import IssuerPKI  # the service's PKI lives with the service

        pki = IssuerPKI.load_or_create(settings.data_dir)
        ensure_issuer_fingerprint(session.rpc_url, session.deployment, session.agencies, pki.fingerprint_sha256, log)
        write_private_json(
            settings.data_dir / "demo-consortium.json",
            demo_consortium_document(
                rpc_url=session.rpc_url,
                service_url=service_url,
                chain_id=session.deployment.chain_id,
                contracts={"ConsortiumRegistry": session.deployment.registry, "TraceAnchor": session.deployment.anchor},
                agencies=session.agencies,
                funder_private_key=session.funder_private_key,
            ),
        )
        service = _start_service(settings, session.rpc_url)
        _wait_for_service(service, service_url)
        _print_summary(log, session, service_url, settings)
        while not stop.wait(0.5):
            if service.poll() is not None:
                log.print(f"[red]✗[/] the certificate service exited with code {service.returncode}")
                return 1
            if session.anvil is not None and not session.anvil.running():
                log.print("[red]✗[/] Anvil exited")
                return 1
        log.print("stopping…")
        return 0
    finally:
        if service is not None:
            _stop_process(service)
        session.stop()
        log.print("stopped.")
