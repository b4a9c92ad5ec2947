"""`tracechain up`: start (or reach) the chain, deploy once, seed the demo consortium, run the service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from web3 import Web3

from chain_node.anvil import AnvilProcess, derive_private_keys, new_mnemonic, start_anvil
from chain_node.consortium import AgencyIdentity
from chain_node.deploy import Deployment
from chain_node.provisioning import provision
from chain_node.settings import NodeSettings

__all__ = ["ChainSession", "prepare_chain", "run_up", "service_command"]

_DEV_ACCOUNTS = 10


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
        deployment, agencies = provision(
            w3,
            rpc_url=rpc_url,
            deployer_key=funder_key,
            data_dir=settings.data_dir,
            service_url=f"http://{settings.http_host}:{settings.http_port}",
            log=log,
        )
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
        service_command(settings.http_host, settings.http_port, settings.service_workers),
        env=env,
        start_new_session=True,
    )


def service_command(host: str, port: int, workers: int) -> list[str]:
    """The command line of the certificate service: uvicorn (uvloop, httptools) with ``workers`` processes.

    Every worker runs the whole app; one of them at a time is the chain indexer (a database lock decides).
    """
    return [
        sys.executable, "-m", "uvicorn", "certificate_service.main:create_app", "--factory",
        "--host", host, "--port", str(port), "--workers", str(workers),
        "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
    ]


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
