"""Verifier fixtures: a dedicated deployment on the session Anvil with anchored batches and their payloads.

Everything that stays (deployment, issuer fingerprint, anchored batches) is made once per session; tests
that revoke, recall or remove members run inside `evm_snapshot`/`evm_revert` (the `mutable_chain` fixture).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from certificate_service.pki import IssuerPKI
from chain_node.anvil import AnvilProcess
from chain_node.deploy import Deployment, MemberSpec, deploy_contracts
from tests.verifier.builders import ancestors, block_time, build_payload, salts_for, tree_for
from trace_sdk.client.contracts import contract_at
from trace_sdk.client.governance import GovernanceClient
from trace_sdk.client.transactions import TransactionSender
from trace_sdk.protocol.hashing import trace_code_hash
from trace_sdk.protocol.merkle import MerkleTree
from trace_sdk.verifier.chain_reader import ChainReader

AGENCIES = {
    # key name: (anvil key index, name, code, roles)
    "customs": (1, "上海海关", "SHCUSTOMS", ["MEMBER"]),
    "samr": (2, "上海市市场监督管理局", "SHSAMR", ["MEMBER", "REGULATOR"]),
    "bdc": (3, "上海市大数据中心", "SHBDC", ["MEMBER", "ISSUER"]),
    "agri": (4, "上海市农业农村委员会", "SHAGRI", ["MEMBER"]),
    "port": (5, "上海国际港务集团", "SIPG", ["MEMBER"]),
}
HIDDEN_IN_FIRST = ("contact", "enterprise.uscc", "documents.1")


@dataclass
class Batch:
    """Records anchored together, their salts and tree, and a sealed payload per record."""

    records: list[dict[str, Any]]
    salts: list[dict[str, str]]
    tree: MerkleTree
    payloads: list[dict[str, Any]]
    tx_hash: str = ""


@dataclass
class VerifierNet:
    """The verifier tests' consortium: keys, contracts, issuer PKIs and anchored certificates."""

    w3: Web3
    rpc_url: str
    deployment: Deployment
    keys: dict[str, str]
    address: dict[str, str]
    registry: Contract
    anchor: Contract
    pki: IssuerPKI
    stranger_pki: IssuerPKI
    batches: dict[str, Batch] = field(default_factory=dict)
    _senders: dict[str, TransactionSender] = field(default_factory=dict)

    def send(self, who: str, call: Any) -> Any:
        """Send a contract call from agency ``who``."""
        if who not in self._senders:
            self._senders[who] = TransactionSender(self.w3, self.keys[who])
        return self._senders[who].transact(call)

    def gov(self, who: str) -> GovernanceClient:
        """Governance client of agency ``who``."""
        return GovernanceClient(self.rpc_url, self.keys[who], self.deployment.registry, w3=self.w3)

    def pass_proposal(self, proposer: str, proposal_id: int) -> None:
        """Vote YES with the other active agencies until the proposal executes."""
        for voter in AGENCIES:
            if self.gov(proposer).proposal_executed(proposal_id):
                return
            if voter != proposer and self.registry.functions.isActiveMember(self.address[voter]).call():
                self.gov(voter).vote(proposal_id)
        assert self.gov(proposer).proposal_executed(proposal_id)

    def payload(self, batch: str, index: int) -> dict[str, Any]:
        """A fresh deep copy of a sealed payload."""
        return copy.deepcopy(self.batches[batch].payloads[index])

    def reader(self, **kwargs: Any) -> ChainReader:
        """A new ChainReader on this deployment."""
        return ChainReader(self.rpc_url, self.deployment.registry, self.deployment.anchor, **kwargs)

    def recall(self, trace_code: str, reason: str) -> None:
        """Recall a lot as the regulator."""
        self.send("samr", self.anchor.functions.recallLot(trace_code_hash(trace_code), reason))

    def issuer(self) -> dict[str, str]:
        """The issuer block of a payload."""
        return {
            "name": AGENCIES["bdc"][1],
            "code": AGENCIES["bdc"][2],
            "address": self.address["bdc"],
            "certificate_fingerprint_sha256": self.pki.fingerprint_sha256,
        }

    def anchor_batch(self, name: str, agency: str, records: list[dict[str, Any]], all_records: list[dict]) -> None:
        """Anchor ``records`` as one batch from ``agency`` and build a payload for each."""
        salts = [salts_for(r) for r in records]
        tree = tree_for(records, salts)
        receipt = self.send(agency, self.anchor.functions.anchorBatch(tree.root, len(records), 1))
        block = self.w3.eth.get_block(receipt["blockNumber"])
        anchor = self.anchor_block(agency, receipt["transactionHash"].to_0x_hex(), receipt["blockNumber"])
        anchor["block_time"] = block_time(block["timestamp"])
        self.batches[name] = self.make_batch(records, salts, tree, anchor, all_records)
        self.batches[name].tx_hash = anchor["tx_hash"]

    def anchor_block(self, agency: str, tx_hash: str, block_number: int) -> dict[str, Any]:
        """The anchor block of a payload (block_time filled by the caller)."""
        return {
            "tx_hash": tx_hash,
            "block_number": block_number,
            "block_time": None,
            "chain_id": self.deployment.chain_id,
            "contracts": {
                "ConsortiumRegistry": self.deployment.registry,
                "TraceAnchor": self.deployment.anchor,
            },
            "agency": {
                "name": AGENCIES[agency][1],
                "code": AGENCIES[agency][2],
                "address": self.address[agency],
            },
        }

    def make_batch(
        self,
        records: list[dict[str, Any]],
        salts: list[dict[str, str]],
        tree: MerkleTree,
        anchor: dict[str, Any],
        all_records: list[dict],
    ) -> Batch:
        """Payloads for every record of a batch (the first one with some fields hidden)."""
        payloads = [
            build_payload(
                record,
                salts[i],
                tree,
                i,
                anchor=anchor,
                issuer=self.issuer(),
                hide=[p for p in HIDDEN_IN_FIRST if i == 0 and _has(record, p)],
                upstream=ancestors(record["trace_code"], all_records),
            )
            for i, record in enumerate(records)
        ]
        return Batch(records, salts, tree, payloads)


def _has(record: dict[str, Any], path: str) -> bool:
    value: Any = record
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return False
    return True


@pytest.fixture(scope="session")
def vnet(anvil: AnvilProcess, sample_records: list[dict], tmp_path_factory: pytest.TempPathFactory) -> VerifierNet:
    """Deploy, register the issuer's certificate fingerprint and anchor three kinds of batches."""
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url, request_kwargs={"timeout": 30}))
    keys = {name: anvil.private_keys[index] for name, (index, *_rest) in AGENCIES.items()}
    address = {name: Account.from_key(key).address for name, key in keys.items()}
    specs = [MemberSpec(address[n], name, code, roles) for n, (_i, name, code, roles) in AGENCIES.items()]
    deployment = deploy_contracts(w3, anvil.private_keys[0], specs, threshold=0)
    net = VerifierNet(
        w3=w3,
        rpc_url=anvil.rpc_url,
        deployment=deployment,
        keys=keys,
        address=address,
        registry=contract_at(w3, "ConsortiumRegistry", deployment.registry),
        anchor=contract_at(w3, "TraceAnchor", deployment.anchor),
        pki=IssuerPKI.load_or_create(Path(tmp_path_factory.mktemp("issuer"))),
        stranger_pki=IssuerPKI.load_or_create(Path(tmp_path_factory.mktemp("stranger")), organisation="冒名机构"),
    )
    proposal = net.gov("bdc").propose_issuer_fingerprint(address["bdc"], net.pki.fingerprint_sha256)
    net.pass_proposal("bdc", proposal)
    records = [copy.deepcopy(r) for r in sample_records]
    net.anchor_batch("meat", "customs", records[0:7], records)  # imported frozen meat chain
    net.anchor_batch("pork", "port", records[7:10], records)  # the port agency is removed in one test
    # A batch that was never anchored (its anchor block copies the meat batch's claims).
    unanchored = records[10:13]
    salts = [salts_for(r) for r in unanchored]
    meat_anchor = net.batches["meat"].payloads[0]["anchor"]
    net.batches["unanchored"] = net.make_batch(unanchored, salts, tree_for(unanchored, salts), meat_anchor, records)
    return net


@pytest.fixture
def mutable_chain(vnet: VerifierNet) -> Iterator[VerifierNet]:
    """The verifier deployment, reverted after the test (revocations, recalls, member removals)."""
    snapshot = vnet.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    try:
        yield vnet
    finally:
        vnet.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]


@pytest.fixture
def reader(vnet: VerifierNet) -> ChainReader:
    """A fresh ChainReader (no cached facts) on the verifier deployment."""
    return vnet.reader()
