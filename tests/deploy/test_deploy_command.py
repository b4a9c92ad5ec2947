"""`chain_node.deploy_command` on a real Anvil: the bootstrap order the Besu consortium relies on."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from rich.console import Console
from web3 import Web3

from chain_node.anvil import AnvilProcess, start_anvil
from chain_node.deploy_command import create_address, main, run_deploy
from chain_node.settings import NodeSettings
from trace_sdk.client.contracts import contract_at
from trace_sdk.client.governance import GovernanceClient


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilProcess]:
    """A fresh Anvil of its own, so the deployer's nonce is ours to reason about."""
    node = start_anvil(accounts=2, log_path=tmp_path_factory.mktemp("anvil") / "anvil.log")
    try:
        yield node
    finally:
        node.stop()


def _funded_deployer(chain: AnvilProcess, key_file: Path) -> str:
    """The generated deployer key, funded from Anvil (on Besu the genesis alloc funds it)."""
    key = key_file.read_text().strip()
    w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
    funder = Account.from_key(chain.private_keys[0])
    tx = {"to": Account.from_key(key).address, "value": Web3.to_wei(20_000, "ether"), "gas": 21_000,
          "gasPrice": w3.eth.gas_price * 2, "nonce": w3.eth.get_transaction_count(funder.address),
          "chainId": w3.eth.chain_id}
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(funder.sign_transaction(tx).raw_transaction))
    return key


def _settings(data_dir: Path, rpc_url: str | None, key: str | None) -> NodeSettings:
    env = {"TRACECHAIN_DATA_DIR": str(data_dir)}
    if rpc_url:
        env["TRACECHAIN_RPC_URL"] = rpc_url
    if key:
        env["TRACECHAIN_DEPLOYER_KEY"] = key
    return NodeSettings.from_env(env)


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def test_deploys_at_the_predicted_address_with_the_deployer_allowed(
    chain: AnvilProcess, generated_consortium: Any, tmp_path: Path
) -> None:
    key = _funded_deployer(chain, generated_consortium.out_dir / "deployer" / "key")
    predicted = (generated_consortium.out_dir / "registry-address").read_text().strip()
    settings = _settings(tmp_path / "data", chain.rpc_url, key)

    assert run_deploy(settings, expected_registry=predicted, console=_quiet(), chain_wait_s=10) == 0

    manifest = json.loads((tmp_path / "data" / "deployment.json").read_text())
    assert manifest["contracts"]["ConsortiumRegistry"] == predicted
    w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
    registry = contract_at(w3, "ConsortiumRegistry", predicted)
    deployer = Account.from_key(key).address
    allowed = registry.functions.transactionAllowed
    assert allowed(deployer, manifest["contracts"]["TraceAnchor"], 0, 0, 0, b"").call() is True
    assert allowed(Account.create().address, predicted, 0, 0, 0, b"").call() is False
    demo = json.loads((tmp_path / "data" / "demo-consortium.json").read_text())
    for agency in demo["agencies"]:
        assert allowed(agency["address"], predicted, 0, 0, 0, b"").call() is True, agency["code"]
    issuer = next(a for a in demo["agencies"] if "ISSUER" in a["roles"])
    fingerprint = GovernanceClient(chain.rpc_url, issuer["private_key"], predicted).issuer_fingerprint(
        issuer["address"]
    )
    assert fingerprint and (tmp_path / "data" / "pki").is_dir()
    assert demo["contracts"]["ConsortiumRegistry"] == predicted

    # A second run (every `docker compose up`) reuses the deployment.
    nonce = w3.eth.get_transaction_count(deployer)
    assert run_deploy(settings, expected_registry=predicted, console=_quiet(), chain_wait_s=10) == 0
    assert json.loads((tmp_path / "data" / "deployment.json").read_text()) == manifest
    assert w3.eth.get_transaction_count(deployer) == nonce


def test_refuses_to_deploy_anywhere_but_the_expected_address(chain: AnvilProcess, tmp_path: Path) -> None:
    key = chain.private_keys[1]
    w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
    deployer = Account.from_key(key).address
    nonce = w3.eth.get_transaction_count(deployer)
    wrong = create_address(deployer, nonce + 5)
    output = io.StringIO()
    settings = _settings(tmp_path / "data", chain.rpc_url, key)
    assert run_deploy(settings, expected_registry=wrong, console=Console(file=output), chain_wait_s=10) == 1
    assert "permissioning points at" in output.getvalue()
    assert w3.eth.get_transaction_count(deployer) == nonce, "nothing was sent"
    assert not (tmp_path / "data" / "deployment.json").exists()


def test_needs_an_rpc_url_and_a_deployer_key(tmp_path: Path) -> None:
    output = io.StringIO()
    assert run_deploy(_settings(tmp_path, None, None), console=Console(file=output)) == 1
    assert "TRACECHAIN_RPC_URL" in output.getvalue()
    output = io.StringIO()
    assert run_deploy(_settings(tmp_path, "http://127.0.0.1:9", None), console=Console(file=output)) == 1
    assert "TRACECHAIN_DEPLOYER_KEY" in output.getvalue()


def test_module_entry_point_parses_its_option(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run_deploy(**kwargs: Any) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr("chain_node.deploy_command.run_deploy", fake_run_deploy)
    assert main(["--expect-registry", "0x5FbDB2315678afecb367f032d93F642f64180aa3"]) == 0
    assert seen == {"expected_registry": "0x5FbDB2315678afecb367f032d93F642f64180aa3"}
