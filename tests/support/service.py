"""Run the real certificate service as a separate process on 127.0.0.1 (so tests can stop and kill it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chain_node.anvil import free_port
from chain_node.deploy import Deployment


def write_deployment(data_dir: Path, deployment: Deployment, rpc_url: str) -> None:
    """The `deployment.json` chain_node writes, for a service under test."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "deployment.json").write_text(json.dumps({
        "chain_id": deployment.chain_id,
        "rpc_url": rpc_url,
        "contracts": {"ConsortiumRegistry": deployment.registry, "TraceAnchor": deployment.anchor},
        "deployment_block": deployment.deployment_block,
    }))


@dataclass
class ServiceProcess:
    """`uvicorn certificate_service.main:create_app --factory` with its own data dir and database."""

    data_dir: Path
    rpc_url: str
    database_url: str | None = None
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> ServiceProcess:
        env = dict(os.environ)
        env.update(
            TRACECHAIN_DATA_DIR=str(self.data_dir),
            TRACECHAIN_RPC_URL=self.rpc_url,
            TRACECHAIN_HTTP_PORT=str(self.port),
            TRACECHAIN_INDEXER_POLL_INTERVAL_S="0.2",
            **self.extra_env,
        )
        if self.database_url:
            env["TRACECHAIN_DATABASE_URL"] = self.database_url
        log = open(self.data_dir / f"service-{self.port}.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "certificate_service.main:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited: {self.log_tail()}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"service did not start: {self.log_tail()}")

    def log_tail(self) -> str:
        logs = sorted(self.data_dir.glob("service-*.log"))
        return logs[-1].read_text(errors="replace")[-3000:] if logs else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
