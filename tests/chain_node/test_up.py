"""`tracechain up` as a user runs it: a real Anvil, real deployment, real service; stop and start again."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3 import Web3

from chain_node.anvil import free_port
from chain_node.settings import NodeSettings, default_workers
from chain_node.up import service_command
from trace_sdk.client.agency import AgencyClient
from trace_sdk.client.contracts import load_artifact

EXPECTED_AGENCIES = {
    "上海市市场监督管理局": {"MEMBER", "REGULATOR"},
    "上海市农业农村委员会": {"MEMBER"},
    "上海市商务委员会": {"MEMBER"},
    "上海市教育委员会": {"MEMBER"},
    "上海市粮食和物资储备局": {"MEMBER"},
    "上海海关": {"MEMBER"},
    "上海市经济和信息化委员会": {"MEMBER"},
    "上海市大数据中心": {"MEMBER", "ISSUER"},
}


class Up:
    """One `tracechain up` process."""

    def __init__(self, data_dir: Path, anvil_port: int, http_port: int) -> None:
        env = dict(os.environ, TRACECHAIN_DATA_DIR=str(data_dir), TRACECHAIN_ANVIL_PORT=str(anvil_port),
                   TRACECHAIN_HTTP_PORT=str(http_port))
        env.pop("TRACECHAIN_RPC_URL", None)
        env.pop("TRACECHAIN_DATABASE_URL", None)
        self.log = data_dir.parent / f"up-{time.monotonic_ns()}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trace_sdk.cli", "up"], env=env, stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200 and \
                        "Press Ctrl-C" in self.output():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"tracechain up did not come up:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


def test_workers_setting_and_the_service_command_line() -> None:
    assert NodeSettings.from_env({}).service_workers == default_workers() == max(1, min(os.cpu_count() or 1, 4))
    assert NodeSettings.from_env({"TRACECHAIN_WORKERS": "3"}).service_workers == 3
    with pytest.raises(ValueError, match="TRACECHAIN_WORKERS"):
        NodeSettings.from_env({"TRACECHAIN_WORKERS": "0"})
    command = service_command("127.0.0.1", 8123, 3)
    assert command[command.index("--workers") + 1] == "3" and command[command.index("--port") + 1] == "8123"


def test_up_seeds_the_demo_consortium_and_survives_a_restart(
    tmp_path: Path, ports: tuple[int, int], sample_records: list[dict[str, Any]]
) -> None:
    data_dir = tmp_path / "data"
    first = Up(data_dir, *ports)
    try:
        demo = json.loads((data_dir / "demo-consortium.json").read_text(encoding="utf-8"))
        assert set(demo) == {"rpc_url", "service_url", "chain_id", "contracts", "agencies", "funder_private_key"}
        assert set(demo["contracts"]) == {"ConsortiumRegistry", "TraceAnchor"}
        assert {a["name"]: set(a["roles"]) for a in demo["agencies"]} == EXPECTED_AGENCIES
        for name in ("demo-consortium.json", "agency-keys.json", "dev-chain/mnemonic"):
            assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
        chain = httpx.get(first.url + "/api/v1/chain").json()
        assert chain["chain_id"] == demo["chain_id"] and chain["contracts"] == demo["contracts"]

        w3 = Web3(Web3.HTTPProvider(demo["rpc_url"]))
        registry = w3.eth.contract(address=demo["contracts"]["ConsortiumRegistry"],
                                   abi=load_artifact("ConsortiumRegistry")["abi"])
        for agency in demo["agencies"]:
            assert registry.functions.isActiveMember(agency["address"]).call()
        issuer = next(a for a in demo["agencies"] if "ISSUER" in a["roles"])
        fingerprint = httpx.get(first.url + "/api/v1/issuer").json()["fingerprint_sha256"]
        assert registry.functions.issuerFingerprint(issuer["address"]).call().hex() == fingerprint

        customs = next(a for a in demo["agencies"] if a["code"] == "SHCUSTOMS")
        with AgencyClient(demo["service_url"], demo["rpc_url"], customs["private_key"],
                          outbox_path=tmp_path / "outbox.sqlite3") as client:
            receipt = client.submit(sample_records[:3])[0]
        # Counted in memory by the service's workers (each sees the others' counts after a flush, every second);
        # written when they stop.
        counts = [
            httpx.get(f"{first.url}/api/v1/verify/{receipt.certificate_id}").json()["verification"]["count"]
            for _ in range(3)
        ]
        assert counts[0] == 1 and all(1 <= count <= 3 for count in counts)
        assert first.interrupt() == 0
    finally:
        if first.process.poll() is None:
            first.process.kill()
    assert "stopped." in first.output()

    second = Up(data_dir, *ports)
    try:
        assert "deploying again" not in second.output()
        assert "already deployed" in second.output()
        w3 = Web3(Web3.HTTPProvider(demo["rpc_url"]))
        anchor = w3.eth.contract(address=demo["contracts"]["TraceAnchor"], abi=load_artifact("TraceAnchor")["abi"])
        agency, block, *_ = anchor.functions.batch(bytes.fromhex(receipt.merkle_root[2:])).call()
        assert agency == customs["address"] and block == receipt.block_number
        assert json.loads((data_dir / "demo-consortium.json").read_text(encoding="utf-8")) == demo
        again = httpx.get(f"{second.url}/api/v1/verify/{receipt.certificate_id}").json()
        assert again["verification"]["count"] == 4  # none of the first run's three was lost
    finally:
        assert second.interrupt() == 0
