"""Nonce management: a dropped anchoring transaction is replaced, a nonce taken by another transaction is
re-signed — and the root is anchored exactly once. Runs on its own Anvil (it switches automining off)."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import TransactionNotFound

from chain_node.anvil import AnvilProcess, start_anvil
from chain_node.deploy import MemberSpec, deploy_contracts
from tests.support.service import ServiceProcess, write_deployment
from trace_sdk.client.agency import AgencyClient
from trace_sdk.client.contracts import load_artifact
from trace_sdk.client.outbox import SIGNED


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AnvilProcess, Any, ServiceProcess]]:
    node = start_anvil(accounts=4)
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    agency = Account.from_key(node.private_keys[1]).address
    deployment = deploy_contracts(w3, node.private_keys[0], [
        MemberSpec(agency, "上海海关", "SHCUSTOMS", ["MEMBER", "REGULATOR"]),
    ])
    data_dir = tmp_path_factory.mktemp("stuck")
    write_deployment(data_dir, deployment, node.rpc_url)
    service = ServiceProcess(data_dir=data_dir, rpc_url=node.rpc_url).start()
    yield node, deployment, service
    service.stop()
    node.stop()


def _rpc(w3: Web3, method: str, *params: Any) -> Any:
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response
    return response.get("result")


def _wait_signed(client: AgencyClient, w3: Web3, previous: str | None = None, timeout_s: float = 30) -> str:
    """The tx hash of the batch once it is signed and broadcast (and different from ``previous``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batches = client.outbox.undelivered_batches(client.address)
        tx_hash = batches[0].tx_hash if batches and batches[0].state == SIGNED else None
        if tx_hash and tx_hash != previous:
            try:
                w3.eth.get_transaction(tx_hash)  # stored before it is broadcast: wait for the node to have it
                return tx_hash
            except TransactionNotFound:
                pass
        time.sleep(0.02)
    raise AssertionError("the anchoring transaction was never signed")


def _records(sample_records: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    records = copy.deepcopy(sample_records[:3])
    for record in records:
        record["record_id"] = f"{tag}-{record['record_id']}"
    return records


def _submit_in_background(client: AgencyClient, records: list[dict[str, Any]]) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(client.submit(records))
        except Exception as exc:  # reported by the assertions below
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _anchors(w3: Web3, deployment: Any) -> int:
    anchor = w3.eth.contract(address=deployment.anchor, abi=load_artifact("TraceAnchor")["abi"])
    return len(anchor.events.BatchAnchored().get_logs(from_block=deployment.deployment_block))


def test_a_dropped_transaction_is_replaced_and_anchors_once(
    chain: tuple[AnvilProcess, Any, ServiceProcess], sample_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    node, deployment, service = chain
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    before = _anchors(w3, deployment)
    client = AgencyClient(service.url, node.rpc_url, node.private_keys[1], outbox_path=tmp_path / "o.sqlite3",
                          tx_timeout_s=1.0)
    client.chain_info()
    _rpc(w3, "evm_setAutomine", False)
    try:
        thread, outcome = _submit_in_background(client, _records(sample_records, "dropped"))
        first = _wait_signed(client, w3)
        _rpc(w3, "anvil_dropTransaction", first)
        replacement = _wait_signed(client, w3, previous=first)
    finally:
        _rpc(w3, "evm_setAutomine", True)
        _rpc(w3, "evm_mine")
    thread.join(timeout=60)
    assert not thread.is_alive()
    receipts = outcome[0]
    assert not isinstance(receipts, Exception), receipts
    assert replacement != first
    (tx_hash,) = {r.tx_hash for r in receipts}
    assert tx_hash != first  # the dropped one never made it
    assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1  # the receipt names the tx that anchored
    assert _anchors(w3, deployment) == before + 1
    client.close()


def test_a_nonce_taken_by_another_transaction_is_re_signed(
    chain: tuple[AnvilProcess, Any, ServiceProcess], sample_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    node, deployment, service = chain
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    before = _anchors(w3, deployment)
    key = node.private_keys[1]
    client = AgencyClient(service.url, node.rpc_url, key, outbox_path=tmp_path / "o.sqlite3", tx_timeout_s=1.0)
    client.chain_info()
    _rpc(w3, "evm_setAutomine", False)
    try:
        thread, outcome = _submit_in_background(client, _records(sample_records, "taken"))
        first = _wait_signed(client, w3)
        nonce = w3.eth.get_transaction(first)["nonce"]
        _rpc(w3, "anvil_dropTransaction", first)
        # The same key spends that nonce elsewhere (another system sharing the agency key).
        account = Account.from_key(key)
        other = account.sign_transaction({
            "to": account.address, "value": 1, "gas": 21_000, "nonce": nonce, "chainId": w3.eth.chain_id,
            "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9,
        })
        w3.eth.send_raw_transaction(other.raw_transaction)
        _rpc(w3, "evm_mine")
    finally:
        _rpc(w3, "evm_setAutomine", True)
    thread.join(timeout=60)
    assert not thread.is_alive()
    receipts = outcome[0]
    assert not isinstance(receipts, Exception), receipts
    anchored_tx = w3.eth.get_transaction(receipts[0].tx_hash)
    assert anchored_tx["nonce"] > nonce
    assert _anchors(w3, deployment) == before + 1
    client.close()
