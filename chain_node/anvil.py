"""Start and stop a local Anvil chain (the embedded single-node development chain)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from eth_account import Account

__all__ = ["AnvilError", "AnvilProcess", "derive_private_keys", "find_anvil", "new_mnemonic", "start_anvil"]

Account.enable_unaudited_hdwallet_features()

_REPO_ROOT = Path(__file__).resolve().parent.parent


class AnvilError(RuntimeError):
    """Anvil could not be found or did not start."""


def find_anvil() -> str:
    """Locate the pinned Anvil binary (npm @foundry-rs/anvil-linux-amd64), then PATH."""
    explicit = os.environ.get("TRACECHAIN_ANVIL_BIN")
    candidates = [explicit] if explicit else []
    candidates += [str(_REPO_ROOT / "node_modules" / ".bin" / "anvil"), shutil.which("anvil")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise AnvilError(
        "anvil not found: run `make setup` (installs npm @foundry-rs/anvil-linux-amd64) "
        "or set TRACECHAIN_ANVIL_BIN"
    )


def new_mnemonic() -> str:
    """A fresh random BIP39 mnemonic for the dev accounts (generated once per data dir)."""
    _account, mnemonic = Account.create_with_mnemonic()
    return mnemonic


def derive_private_keys(mnemonic: str, count: int) -> list[str]:
    """The first ``count`` dev keys Anvil derives from ``mnemonic`` (m/44'/60'/0'/0/i)."""
    return [
        Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}").key.to_0x_hex()
        for i in range(count)
    ]


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """An unused TCP port on ``host`` (for tests and ephemeral chains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class AnvilProcess:
    """A running Anvil node."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    mnemonic: str
    private_keys: list[str] = field(default_factory=list)
    state_path: Path | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Anvil gracefully (SIGINT makes it dump its state), then force if needed."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """Kill Anvil abruptly (a crash, for fault tests)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def _wait_until_ready(proc: subprocess.Popen[bytes], rpc_url: str, log_path: Path | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    payload = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            detail = log_path.read_text(errors="replace")[-2000:] if log_path and log_path.exists() else ""
            raise AnvilError(f"anvil exited with code {proc.returncode} during start-up\n{detail}")
        try:
            response = httpx.post(rpc_url, json=payload, timeout=1.0)
            if response.status_code == 200 and "result" in response.json():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise AnvilError(f"anvil did not answer on {rpc_url} within {timeout:.0f}s")


def start_anvil(
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    mnemonic: str | None = None,
    accounts: int = 10,
    state_path: Path | None = None,
    state_interval_s: int = 1,
    log_path: Path | None = None,
    chain_id: int | None = None,
    block_time_s: float | None = None,
    startup_timeout_s: float = 30.0,
) -> AnvilProcess:
    """Start Anvil on ``host:port``; with ``state_path`` the chain is loaded from and saved to that file."""
    port = port or free_port(host)
    if not _port_is_free(host, port):
        raise AnvilError(f"port {host}:{port} is already in use (set TRACECHAIN_ANVIL_PORT to another port)")
    mnemonic = mnemonic or new_mnemonic()
    args = [
        find_anvil(),
        "--host", host,
        "--port", str(port),
        "--mnemonic", mnemonic,
        "--accounts", str(accounts),
        "--balance", "1000000",
    ]
    if chain_id is not None:
        args += ["--chain-id", str(chain_id)]
    if block_time_s is not None:
        args += ["--block-time", str(block_time_s)]
    if state_path is not None:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        # --state loads the file if present and dumps on exit; the interval bounds loss on a crash.
        args += ["--state", str(state_path), "--state-interval", str(state_interval_s),
                 "--preserve-historical-states"]
    log_file = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - kept open by the child
    try:
        proc = subprocess.Popen(
            args, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    finally:
        if log_path:
            log_file.close()  # type: ignore[union-attr]
    rpc_url = f"http://{host}:{port}"
    _wait_until_ready(proc, rpc_url, log_path, startup_timeout_s)
    return AnvilProcess(
        process=proc,
        host=host,
        port=port,
        mnemonic=mnemonic,
        private_keys=derive_private_keys(mnemonic, accounts),
        state_path=state_path,
    )
