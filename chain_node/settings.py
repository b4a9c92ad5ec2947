"""Chain-side configuration, read from the `TRACECHAIN_*` environment (see README's table)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account

__all__ = ["NodeSettings", "default_workers"]


def default_workers() -> int:
    """Certificate service worker processes by default: one per CPU, at most 4."""
    return max(1, min(os.cpu_count() or 1, 4))


def _workers(value: str | None) -> int:
    """``TRACECHAIN_WORKERS`` as a positive count (unset or empty: :func:`default_workers`)."""
    if not value:
        return default_workers()
    workers = int(value)
    if workers < 1:
        raise ValueError(f"TRACECHAIN_WORKERS must be at least 1, got {value!r}")
    return workers


@dataclass(frozen=True)
class NodeSettings:
    """What `tracechain up` needs to start or reach the chain and the service."""

    data_dir: Path
    rpc_url: str | None
    anvil_port: int
    http_host: str
    http_port: int
    service_workers: int
    deployer_key: str | None
    deployer_keystore: Path | None
    deployer_keystore_password: str | None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> NodeSettings:
        env = dict(os.environ if env is None else env)
        keystore = env.get("TRACECHAIN_DEPLOYER_KEYSTORE")
        return cls(
            data_dir=Path(env.get("TRACECHAIN_DATA_DIR", "./.tracechain")).resolve(),
            rpc_url=env.get("TRACECHAIN_RPC_URL") or None,
            anvil_port=int(env.get("TRACECHAIN_ANVIL_PORT", "8545")),
            http_host=env.get("TRACECHAIN_HTTP_HOST", "127.0.0.1"),
            http_port=int(env.get("TRACECHAIN_HTTP_PORT", "8000")),
            service_workers=_workers(env.get("TRACECHAIN_WORKERS")),
            deployer_key=env.get("TRACECHAIN_DEPLOYER_KEY") or None,
            deployer_keystore=Path(keystore) if keystore else None,
            deployer_keystore_password=env.get("TRACECHAIN_DEPLOYER_KEYSTORE_PASSWORD"),
        )

    def external_deployer_key(self) -> str:
        """The deployer key for an external chain: raw key or an encrypted keystore file."""
        if self.deployer_key:
            return self.deployer_key
        if self.deployer_keystore:
            if self.deployer_keystore_password is None:
                raise ValueError("TRACECHAIN_DEPLOYER_KEYSTORE_PASSWORD is required with TRACECHAIN_DEPLOYER_KEYSTORE")
            keystore = json.loads(self.deployer_keystore.read_text(encoding="utf-8"))
            return "0x" + Account.decrypt(keystore, self.deployer_keystore_password).hex()
        raise ValueError(
            "TRACECHAIN_RPC_URL is set, so a deployer is needed: set TRACECHAIN_DEPLOYER_KEY "
            "or TRACECHAIN_DEPLOYER_KEYSTORE (+ _PASSWORD)"
        )
