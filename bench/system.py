"""The system under benchmark, brought up the way `make run` (`tracechain up`) brings it up, on 127.0.0.1.

Anvil with persisted state, the contracts deployed, the demo consortium seeded and funded and the issuer
fingerprint registered by governance (`chain_node.up.prepare_chain`), then the certificate service
with the command line `tracechain up` uses (`chain_node.up.service_command`: uvicorn with uvloop and httptools,
TRACECHAIN_WORKERS worker processes, by default one per CPU). Everything lives in a throw-away data directory
and uses free ports.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console

from chain_node.anvil import free_port
from chain_node.consortium import AgencyIdentity
from chain_node.settings import NodeSettings
from chain_node.up import ChainSession, prepare_chain, service_command

__all__ = ["ServiceProcess", "System", "start_system"]


@dataclass
class ServiceProcess:
    """One certificate service process (the command line of `chain_node.up._start_service`)."""

    data_dir: Path
    rpc_url: str
    port: int
    database_url: str | None = None
    workers: int = field(default_factory=lambda: _workers_from_env())
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        """Base URL of the service."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120.0) -> ServiceProcess:
        """Start uvicorn and wait until `/api/v1/health` answers."""
        env = dict(os.environ)
        env.update(
            TRACECHAIN_RPC_URL=self.rpc_url,
            TRACECHAIN_DATA_DIR=str(self.data_dir),
            TRACECHAIN_HTTP_HOST="127.0.0.1",
            TRACECHAIN_HTTP_PORT=str(self.port),
        )
        if self.database_url:
            env["TRACECHAIN_DATABASE_URL"] = self.database_url
        self.log_path = self.data_dir / f"service-{self.port}.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                service_command("127.0.0.1", self.port, self.workers),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the certificate service exited: {self.log_tail()}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the certificate service did not start: {self.log_tail()}")

    def log_tail(self) -> str:
        """The end of the service log."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """SIGTERM (as `tracechain up` does on Ctrl-C), then kill if it hangs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class System:
    """A running chain + certificate service."""

    data_dir: Path
    chain: ChainSession
    service: ServiceProcess
    extra_services: list[ServiceProcess] = field(default_factory=list)

    @property
    def rpc_url(self) -> str:
        """JSON-RPC URL of the chain."""
        return self.chain.rpc_url

    @property
    def agencies(self) -> list[AgencyIdentity]:
        """The seeded demo agencies (all MEMBERs, funded)."""
        return self.chain.agencies

    def stop(self) -> None:
        """Stop the services, then Anvil."""
        for service in [self.service, *self.extra_services]:
            service.stop()
        self.chain.stop()


def _workers_from_env() -> int:
    """TRACECHAIN_WORKERS as `tracechain up` reads it (every service the benchmark starts uses it)."""
    return NodeSettings.from_env().service_workers


def start_system(data_dir: Path) -> System:
    """Anvil + contracts + demo consortium + issuer fingerprint + the certificate service, in ``data_dir``."""
    settings = NodeSettings(
        data_dir=data_dir.resolve(),
        rpc_url=None,
        anvil_port=free_port(),
        http_host="127.0.0.1",
        http_port=free_port(),
        service_workers=_workers_from_env(),
        deployer_key=None,
        deployer_keystore=None,
        deployer_keystore_password=None,
    )
    chain = prepare_chain(settings, Console(file=io.StringIO()))  # also registers the issuer fingerprint
    try:
        service = ServiceProcess(
            settings.data_dir, chain.rpc_url, settings.http_port, workers=settings.service_workers
        ).start()
    except BaseException:
        chain.stop()
        raise
    return System(settings.data_dir, chain, service)
