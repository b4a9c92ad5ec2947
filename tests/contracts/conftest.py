"""Contract fixtures: one 8-member deployment per session, rolled back with evm_snapshot/evm_revert per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from chain_node.anvil import AnvilProcess
from chain_node.deploy import Deployment, MemberSpec, deploy_contracts
from trace_sdk.client.contracts import contract_at
from trace_sdk.client.governance import GovernanceClient
from trace_sdk.client.transactions import TransactionSender

LIFETIME_BLOCKS = 20
MEMBER, REGULATOR, ISSUER = 1, 2, 4

# (name, code, roles) of the eight initial agencies; index 0 is the only regulator, index 1 the issuer.
AGENCIES = [
    ("上海市市场监督管理局", "SHSAMR", MEMBER | REGULATOR),
    ("上海市大数据中心", "SHBDC", MEMBER | ISSUER),
    ("上海市农业农村委员会", "SHAGRI", MEMBER),
    ("上海海关", "SHCUS", MEMBER),
    ("上海市卫生健康委员会", "SHHEALTH", MEMBER),
    ("上海市商务委员会", "SHCOMM", MEMBER),
    ("上海市粮食和物资储备局", "SHGRAIN", MEMBER),
    ("上海市绿化和市容管理局", "SHGREEN", MEMBER),
]


@dataclass(frozen=True)
class Key:
    """A funded dev account."""

    private_key: str
    address: str


@dataclass
class Consortium:
    """A deployed registry + anchor with eight member keys and spare stranger keys."""

    w3: Web3
    rpc_url: str
    deployment: Deployment
    deployer: Key
    members: list[Key]
    strangers: list[Key]
    allowed: Key
    registry: Contract
    anchor: Contract
    _senders: dict[str, TransactionSender] = field(default_factory=dict)
    _govs: dict[str, GovernanceClient] = field(default_factory=dict)

    @property
    def regulator(self) -> Key:
        """The only initial REGULATOR (also a MEMBER)."""
        return self.members[0]

    @property
    def issuer(self) -> Key:
        """The initial ISSUER (also a MEMBER)."""
        return self.members[1]

    def sender(self, key: Key) -> TransactionSender:
        """A cached TransactionSender for ``key``."""
        if key.private_key not in self._senders:
            self._senders[key.private_key] = TransactionSender(self.w3, key.private_key)
        return self._senders[key.private_key]

    def send(self, key: Key, call: Any) -> TxReceipt:
        """Send ``call`` from ``key``; reverts raise decoded ContractRevertErrors."""
        return self.sender(key).transact(call)

    def gov(self, key: Key) -> GovernanceClient:
        """A cached GovernanceClient for ``key`` on this deployment."""
        if key.private_key not in self._govs:
            client = GovernanceClient(self.rpc_url, key.private_key, self.deployment.registry, w3=self.w3)
            self._govs[key.private_key] = client
        return self._govs[key.private_key]

    def pass_proposal(self, proposer: Key, propose: Callable[[GovernanceClient], int]) -> int:
        """Propose with ``proposer`` and vote YES with the others until the proposal executes."""
        proposal_id = propose(self.gov(proposer))
        for voter in self.members:
            if self.gov(voter).proposal_executed(proposal_id):
                break
            if voter != proposer and self.registry.functions.isActiveMember(voter.address).call():
                self.gov(voter).vote(proposal_id)
        assert self.gov(proposer).proposal_executed(proposal_id)
        return proposal_id

    def mine(self, blocks: int) -> None:
        """Mine empty blocks."""
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]


def _key(private_key: str) -> Key:
    return Key(private_key, Account.from_key(private_key).address)


@pytest.fixture(scope="session")
def consortium_base(anvil: AnvilProcess) -> Consortium:
    """Deploy once per session: 8 members, majority threshold, 20-block proposals, one allowed account."""
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url, request_kwargs={"timeout": 30}))
    keys = [_key(k) for k in anvil.private_keys]
    deployer, members, allowed, strangers = keys[0], keys[1:9], keys[9], keys[10:]
    specs = [MemberSpec(k.address, n, c, r) for k, (n, c, r) in zip(members, AGENCIES, strict=True)]
    deployment = deploy_contracts(
        w3, deployer.private_key, specs, proposal_lifetime_blocks=LIFETIME_BLOCKS, allowed_accounts=[allowed.address]
    )
    return Consortium(
        w3=w3,
        rpc_url=anvil.rpc_url,
        deployment=deployment,
        deployer=deployer,
        members=members,
        strangers=strangers,
        allowed=allowed,
        registry=contract_at(w3, "ConsortiumRegistry", deployment.registry),
        anchor=contract_at(w3, "TraceAnchor", deployment.anchor),
    )


@pytest.fixture
def consortium(consortium_base: Consortium) -> Iterator[Consortium]:
    """The session deployment, reverted to its pristine state after each test."""
    w3 = consortium_base.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    try:
        yield consortium_base
    finally:
        w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
