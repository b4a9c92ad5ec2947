"""SDK plumbing around the contracts: artifacts, roles, revert decoding, the sender, deployment checks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode
from eth_utils import keccak
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from chain_node.deploy import Deployment, MemberSpec, contracts_present, deploy_contracts
from tests.contracts.conftest import Consortium
from trace_sdk.client.contracts import CONTRACT_NAMES, contract_at, load_artifact, role_mask, role_names
from trace_sdk.client.revert import ERROR_DESCRIPTIONS, decode_revert, decode_revert_data, revert_data
from trace_sdk.client.transactions import TransactionSender
from trace_sdk.exceptions import ChainError, ContractRevertError, NotMemberError

REPO_ROOT = Path(__file__).resolve().parents[2]
ADDRESS = "0x00000000000000000000000000000000000000aB"
CHECKSUM = "0x00000000000000000000000000000000000000AB"


def _data(signature: str, types: list[str], values: list[Any]) -> str:
    return "0x" + (keccak(text=signature)[:4] + encode(types, values)).hex()


NOT_MEMBER = _data("ConsortiumRegistryNotMember(address)", ["address"], [ADDRESS])


def test_artifacts_ship_in_the_sdk() -> None:
    for name in CONTRACT_NAMES:
        artifact = load_artifact(name)
        assert artifact["contractName"] == name
        assert {"abi", "bytecode", "deployedBytecode", "compiler"} <= artifact.keys()
        assert artifact["compiler"]["settings"]["evmVersion"] == "paris"
        assert artifact["deployedBytecode"].startswith("0x6080")
        size = len(artifact["deployedBytecode"]) // 2 - 1
        print(f"\n{name}: {size} bytes deployed (EIP-170 limit 24,576)")
        assert size < 24_576
    with pytest.raises(ValueError):
        load_artifact("Nope")


def _documented_events() -> set[str]:
    """Event signatures listed in docs/interfaces.md (the indexer's contract)."""
    text = (REPO_ROOT / "docs" / "interfaces.md").read_text(encoding="utf-8")
    events = set()
    for name, params in re.findall(r"- `(\w+)\(([^)]*)\)`", text):
        if name[0].isupper():
            words = [p.split() for p in params.split(",") if p.strip()]
            events.add(f"{name}({','.join(w[0] + (' indexed' if 'indexed' in w else '') for w in words)})")
    return events


def test_events_match_docs_interfaces() -> None:
    emitted = set()
    for name in CONTRACT_NAMES:
        for e in load_artifact(name)["abi"]:
            if e["type"] == "event":
                params = ",".join(i["type"] + (" indexed" if i["indexed"] else "") for i in e["inputs"])
                emitted.add(f"{e['name']}({params})")
    documented = _documented_events()
    assert len(documented) == 13
    assert emitted == documented


def test_every_custom_error_has_a_description() -> None:
    names = {e["name"] for n in CONTRACT_NAMES for e in load_artifact(n)["abi"] if e["type"] == "error"}
    assert names <= ERROR_DESCRIPTIONS.keys()


def test_role_mask_and_names() -> None:
    assert role_mask(["MEMBER", "REGULATOR"]) == 3
    assert role_mask("member, issuer") == 5
    assert role_mask("REGULATOR") == 2
    assert role_mask(7) == 7
    assert role_names(5) == ["MEMBER", "ISSUER"]
    for bad in (0, 8, [], ["AUDITOR"]):
        with pytest.raises(ValueError):
            role_mask(bad)
    with pytest.raises(TypeError):
        role_mask(True)


def test_decode_revert_data_readable_message() -> None:
    error = decode_revert_data(NOT_MEMBER)
    assert isinstance(error, ContractRevertError) and isinstance(error, NotMemberError)
    assert (error.error_name, error.args) == ("ConsortiumRegistryNotMember", (CHECKSUM,))
    assert str(error) == f"ConsortiumRegistryNotMember({CHECKSUM}): the account is not an active consortium member"
    assert error.user_message == str(error)
    unexpected = decode_revert_data(
        _data("ConsortiumRegistryUnexpectedProposalState(uint256,uint8,bytes32)",
              ["uint256", "uint8", "bytes32"], [4, 2, (1).to_bytes(32, "big")])
    )
    assert str(unexpected).startswith("ConsortiumRegistryUnexpectedProposalState(4, Expired, Active): ")
    assert decode_revert_data("0x12345678") is None
    assert decode_revert_data("0x") is None


def test_decode_error_string_and_panic() -> None:
    reason = decode_revert_data(_data("Error(string)", ["string"], ["nope"]))
    assert reason is not None and (reason.error_name, reason.args) == ("Error", ("nope",))
    panic = decode_revert_data(_data("Panic(uint256)", ["uint256"], [0x11]))
    assert panic is not None and "0x11: arithmetic overflow or underflow" in str(panic)


@pytest.mark.parametrize(
    "exc",
    [
        ContractCustomError(NOT_MEMBER, data=NOT_MEMBER),  # Anvil/geth: web3 already split it out
        ContractLogicError("execution reverted", data={"data": NOT_MEMBER}),  # nested payloads
        Web3RPCError(  # Besu: {"code": -32000, "message": "Execution reverted", "data": "0x..."}
            "Execution reverted",
            rpc_response={"jsonrpc": "2.0", "id": 1,
                          "error": {"code": -32000, "message": "Execution reverted", "data": NOT_MEMBER}},
        ),
        ValueError({"code": 3, "message": "execution reverted", "data": NOT_MEMBER}),  # raw RPC error dicts
        ValueError({"error": {"code": -32000, "data": {"data": NOT_MEMBER}}}),
        ContractLogicError("execution reverted", data=f"Reverted {NOT_MEMBER}"),
        RuntimeError(f"node said: execution reverted, data {NOT_MEMBER}"),  # only in the message text
    ],
)
def test_decode_revert_finds_data_in_every_payload_shape(exc: BaseException) -> None:
    assert revert_data(exc) == NOT_MEMBER
    error = decode_revert(exc)
    assert isinstance(error, ContractRevertError)
    assert error.error_name == "ConsortiumRegistryNotMember"


def test_decode_revert_without_data_is_a_chain_error() -> None:
    error = decode_revert(ContractLogicError("execution reverted", data=None))
    assert type(error) is ChainError
    assert "execution reverted" in str(error)
    unknown = decode_revert(ContractCustomError("0xdeadbeef", data="0xdeadbeef"))
    assert type(unknown) is ChainError
    already = ChainError("x")
    assert decode_revert(already) is already


def test_call_reverts_are_decoded(consortium: Consortium) -> None:
    c = consortium
    with pytest.raises(ContractCustomError) as raw:
        c.registry.functions.proposalState(7).call()
    error = decode_revert(raw.value)
    assert isinstance(error, ContractRevertError)
    assert str(error) == "ConsortiumRegistryNonexistentProposal(7): there is no proposal with this id"


def test_sender_fees_nonce_and_plain_transfers(consortium: Consortium) -> None:
    c = consortium
    sender = TransactionSender(c.w3, c.strangers[0].private_key)
    fees = sender.fee_fields()
    assert set(fees) == {"maxFeePerGas", "maxPriorityFeePerGas"}  # Anvil has a base fee
    nonce = sender.next_nonce()
    receipt = sender.transact(tx={"to": c.strangers[1].address, "value": 12345})
    assert receipt["status"] == 1
    assert sender.next_nonce() == nonce + 1
    assert sender.chain_id == c.deployment.chain_id


class _LegacyEth:
    """A chain without a base fee (pre-London or Besu free gas)."""

    gas_price = 0

    def get_block(self, _block: str) -> dict[str, Any]:
        return {"number": 1}


class _LegacyWeb3:
    eth = _LegacyEth()


def test_sender_uses_legacy_gas_price_without_base_fee(consortium: Consortium) -> None:
    sender = TransactionSender(_LegacyWeb3(), consortium.strangers[0].private_key)  # type: ignore[arg-type]
    assert sender.fee_fields() == {"gasPrice": 0}


def test_mined_revert_is_replayed_and_decoded(consortium: Consortium) -> None:
    """A transaction that reverts on chain (gas fixed, so no estimate) is decoded from an eth_call replay."""
    c = consortium
    sender = c.sender(c.strangers[0])
    call = c.anchor.functions.anchorBatch(b"\x05" * 32, 1, 1)
    with pytest.raises(NotMemberError) as excinfo:
        sender.transact(call, tx={"gas": 100_000})
    assert "TraceAnchorNotMember" in str(excinfo.value)


def test_deploy_and_contracts_present(consortium: Consortium) -> None:
    c = consortium
    assert contracts_present(c.w3, c.deployment)
    assert c.deployment.chain_id == c.w3.eth.chain_id
    swapped = Deployment(c.deployment.anchor, c.deployment.registry, c.deployment.deployment_block, 1)
    assert not contracts_present(c.w3, swapped)
    empty = Deployment(c.strangers[0].address, c.strangers[1].address, 0, 1)
    assert not contracts_present(c.w3, empty)
    # A second deployment (different immutables) is recognised too.
    other = deploy_contracts(
        c.w3, c.deployer.private_key, [MemberSpec(c.strangers[0].address, "x", "X", 3)], threshold=1,
        proposal_lifetime_blocks=7,
    )
    assert contracts_present(c.w3, other)
    registry = contract_at(c.w3, "ConsortiumRegistry", other.registry)
    assert registry.functions.proposalLifetimeBlocks().call() == 7
    assert registry.functions.configuredThreshold().call() == 1
    assert contract_at(c.w3, "TraceAnchor", other.anchor).functions.registry().call() == other.registry
