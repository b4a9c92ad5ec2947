"""Shared fixtures: a real Anvil chain for the whole session, a fresh Web3 per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from chain_node.anvil import AnvilProcess, start_anvil

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilProcess]:
    """One real Anvil node (random dev mnemonic, 20 funded accounts) for the session."""
    log_path = tmp_path_factory.mktemp("anvil") / "anvil.log"
    node = start_anvil(accounts=20, log_path=log_path)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def w3(anvil: AnvilProcess) -> Web3:
    """A Web3 connected to the session's Anvil."""
    return Web3(Web3.HTTPProvider(anvil.rpc_url, request_kwargs={"timeout": 30}))


@pytest.fixture(scope="session")
def sample_records() -> list[dict]:
    """The 34 sample records of ../shared (valid, linked through inputs/outputs)."""
    import json

    path = SHARED_DIR / "data" / "sample-records.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def consortium(anvil: AnvilProcess):
    """A deployment on the session chain: customs (MEMBER), SAMR (MEMBER+REGULATOR), big-data centre
    (MEMBER+ISSUER), agriculture (MEMBER); ``keys['outsider']`` is no member."""
    from types import SimpleNamespace

    from eth_account import Account

    from chain_node.deploy import MemberSpec, deploy_contracts

    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
    keys = {
        "customs": anvil.private_keys[11],
        "samr": anvil.private_keys[12],
        "bdc": anvil.private_keys[13],
        "agri": anvil.private_keys[14],
        "outsider": anvil.private_keys[19],
    }
    members = [
        MemberSpec(Account.from_key(keys["customs"]).address, "上海海关", "SHCUSTOMS", ["MEMBER"]),
        MemberSpec(Account.from_key(keys["samr"]).address, "上海市市场监督管理局", "SHSAMR", ["MEMBER", "REGULATOR"]),
        MemberSpec(Account.from_key(keys["bdc"]).address, "上海市大数据中心", "SHBDC", ["MEMBER", "ISSUER"]),
        MemberSpec(Account.from_key(keys["agri"]).address, "上海市农业农村委员会", "SHAGRI", ["MEMBER"]),
    ]
    deployment = deploy_contracts(w3, anvil.private_keys[10], members)
    return SimpleNamespace(deployment=deployment, keys=keys, rpc_url=anvil.rpc_url,
                           address={k: Account.from_key(v).address for k, v in keys.items()})
