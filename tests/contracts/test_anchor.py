"""TraceAnchor: anchoring, on-chain Merkle revocation, recalls, every revert path and gas, on a real Anvil."""

from __future__ import annotations

import os

import pytest
from web3.logs import DISCARD

from tests.contracts.conftest import Consortium
from trace_sdk.client.contracts import load_artifact
from trace_sdk.exceptions import ContractRevertError, NotMemberError
from trace_sdk.protocol.hashing import keccak256, leaf_hash, trace_code_hash
from trace_sdk.protocol.merkle import MerkleTree

ANCHOR_GAS_LIMIT = 60_000


def _record_hashes(n: int, tag: str = "") -> list[bytes]:
    return [keccak256(f"record {tag}{i}".encode()) for i in range(n)]


def _anchor_tree(c: Consortium, agency_index: int, n: int = 5, tag: str = "") -> tuple[MerkleTree, list[bytes]]:
    records = _record_hashes(n, tag)
    tree = MerkleTree([leaf_hash(r) for r in records])
    c.send(c.members[agency_index], c.anchor.functions.anchorBatch(tree.root, n, 1))
    return tree, records


def _sorted_pair_root(leaves: list[bytes]) -> bytes:
    """An independent sorted-pair keccak tree (odd node promoted), to pin MerkleTree against the contract."""
    level = leaves
    while len(level) > 1:
        nxt = [keccak256(b"".join(sorted(level[i : i + 2]))) for i in range(0, len(level) - 1, 2)]
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def test_anchor_batch_stores_one_packed_slot_under_gas_target(consortium: Consortium) -> None:
    c = consortium
    root = keccak256(b"batch 1")
    receipt = c.send(c.members[3], c.anchor.functions.anchorBatch(root, 1000, 2))
    gas = receipt["gasUsed"]
    print(f"\nanchorBatch gas used: {gas}")
    assert gas < ANCHOR_GAS_LIMIT
    block = c.w3.eth.get_block(receipt["blockNumber"])
    assert c.anchor.functions.batch(root).call() == [
        c.members[3].address, receipt["blockNumber"], block["timestamp"], 1000, 2
    ]
    (event,) = c.anchor.events.BatchAnchored().process_receipt(receipt, errors=DISCARD)
    assert dict(event["args"]) == {"root": root, "agency": c.members[3].address, "count": 1000, "schemaVersion": 2}
    slot = c.w3.eth.get_storage_at(c.deployment.anchor, _mapping_slot(root, 0))
    packed = int.from_bytes(slot, "big")
    assert packed & (2**160 - 1) == int(c.members[3].address, 16)
    assert packed >> 224 & (2**24 - 1) == 1000
    assert c.anchor.functions.registry().call() == c.deployment.registry


def _mapping_slot(key: bytes, base: int) -> int:
    return int.from_bytes(keccak256(key + base.to_bytes(32, "big")), "big")


def test_anchor_rejects_non_members_zero_and_duplicates(consortium: Consortium) -> None:
    c = consortium
    root = keccak256(b"batch 2")
    for outsider in (c.strangers[0], c.allowed):
        with pytest.raises(NotMemberError) as excinfo:
            c.send(outsider, c.anchor.functions.anchorBatch(root, 1, 1))
        assert excinfo.value.error_name == "TraceAnchorNotMember"  # type: ignore[attr-defined]
        assert excinfo.value.args == (outsider.address,)
    with pytest.raises(ContractRevertError) as excinfo:
        c.send(c.members[2], c.anchor.functions.anchorBatch(b"\x00" * 32, 1, 1))
    assert (excinfo.value.error_name, excinfo.value.args) == ("TraceAnchorZeroRoot", ())
    with pytest.raises(ContractRevertError) as excinfo:
        c.send(c.members[2], c.anchor.functions.anchorBatch(root, 0, 1))
    assert excinfo.value.error_name == "TraceAnchorZeroCount"
    c.send(c.members[2], c.anchor.functions.anchorBatch(root, 1, 1))
    with pytest.raises(ContractRevertError) as excinfo:
        c.send(c.members[4], c.anchor.functions.anchorBatch(root, 7, 1))
    assert (excinfo.value.error_name, excinfo.value.args) == (
        "TraceAnchorDuplicateRoot", ("0x" + root.hex(), c.members[2].address)
    )
    assert "this Merkle root was already anchored" in str(excinfo.value)


def test_contract_accepts_protocol_merkle_proofs(consortium: Consortium) -> None:
    c = consortium
    for n in (1, 2, 3, 7):
        records = _record_hashes(n, f"n{n}-")
        leaves = [leaf_hash(r) for r in records]
        tree = MerkleTree(leaves)
        assert tree.root == _sorted_pair_root(leaves)
        c.send(c.members[2], c.anchor.functions.anchorBatch(tree.root, n, 1))
        last = n - 1
        receipt = c.send(
            c.members[2], c.anchor.functions.revokeRecord(tree.root, records[last], tree.proof(last), "test")
        )
        assert receipt["status"] == 1
    assert MerkleTree([leaf_hash(_record_hashes(1, "n1-")[0])]).proof(0) == []


def test_revoke_by_anchoring_agency(consortium: Consortium) -> None:
    c = consortium
    tree, records = _anchor_tree(c, 2)
    receipt = c.send(
        c.members[2], c.anchor.functions.revokeRecord(tree.root, records[3], tree.proof(3), "标签错误 wrong label")
    )
    print(f"\nrevokeRecord gas used (5 leaves, 3-node proof): {receipt['gasUsed']}")
    block = c.w3.eth.get_block(receipt["blockNumber"])
    assert c.anchor.functions.revocation(tree.root, records[3]).call() == [
        True, block["timestamp"], "标签错误 wrong label"
    ]
    assert c.anchor.functions.revocation(tree.root, records[2]).call() == [False, 0, ""]
    assert c.anchor.functions.revocation(keccak256(b"another root"), records[3]).call() == [False, 0, ""]
    (event,) = c.anchor.events.RecordRevoked().process_receipt(receipt, errors=DISCARD)
    assert dict(event["args"]) == {
        "root": tree.root, "recordHash": records[3], "revokedBy": c.members[2].address,
        "reason": "标签错误 wrong label",
    }
    with pytest.raises(ContractRevertError) as excinfo:
        c.send(c.members[2], c.anchor.functions.revokeRecord(tree.root, records[3], tree.proof(3), "again"))
    assert (excinfo.value.error_name, excinfo.value.args) == (
        "TraceAnchorAlreadyRevoked", ("0x" + tree.root.hex(), "0x" + records[3].hex())
    )


def test_member_cannot_revoke_another_agencys_record_through_its_own_root(consortium: Consortium) -> None:
    """Regression: revocations were keyed by record hash alone, so B could revoke A's record via B's root."""
    c = consortium
    victim_tree, victim_records = _anchor_tree(c, 2, tag="victim-")
    target = victim_records[1]
    # B anchors a root of its own that contains A's (public) leaf, and revokes it under that root.
    attacker_records = [target, *_record_hashes(2, "attacker-")]
    attacker_tree = MerkleTree([leaf_hash(r) for r in attacker_records])
    c.send(c.members[3], c.anchor.functions.anchorBatch(attacker_tree.root, len(attacker_records), 1))
    c.send(c.members[3], c.anchor.functions.revokeRecord(attacker_tree.root, target, attacker_tree.proof(0), "hijack"))
    assert c.anchor.functions.revocation(attacker_tree.root, target).call()[0]
    # A's record under A's root is untouched ...
    assert c.anchor.functions.revocation(victim_tree.root, target).call() == [False, 0, ""]
    # ... B still cannot revoke under A's root ...
    with pytest.raises(ContractRevertError) as excinfo:
        c.send(c.members[3], c.anchor.functions.revokeRecord(victim_tree.root, target, victim_tree.proof(1), "x"))
    assert excinfo.value.error_name == "TraceAnchorUnauthorizedRevoker"
    # ... and A can still revoke it under its own root, with its own reason.
    receipt = c.send(
        c.members[2], c.anchor.functions.revokeRecord(victim_tree.root, target, victim_tree.proof(1), "A's reason")
    )
    block = c.w3.eth.get_block(receipt["blockNumber"])
    assert c.anchor.functions.revocation(victim_tree.root, target).call() == [True, block["timestamp"], "A's reason"]
    assert c.anchor.functions.revocation(attacker_tree.root, target).call()[2] == "hijack"


def test_revoke_with_bad_proof(consortium: Consortium) -> None:
    c = consortium
    tree, records = _anchor_tree(c, 2)
    revoke = c.anchor.functions.revokeRecord
    bad_cases = [
        (records[0], tree.proof(1)),  # someone else's proof
        (records[0], []),  # no proof
        (keccak256(b"not in the batch"), tree.proof(0)),  # a record outside the batch
        (tree.leaves[0], tree.proof(0)),  # the leaf itself instead of the record hash
        (records[0], [*tree.proof(0), b"\x01" * 32]),  # an extra node
    ]
    for record, proof in bad_cases:
        with pytest.raises(ContractRevertError) as excinfo:
            c.send(c.members[2], revoke(tree.root, record, proof, "x"))
        assert (excinfo.value.error_name, excinfo.value.args) == (
            "TraceAnchorInvalidProof", ("0x" + tree.root.hex(), "0x" + record.hex())
        )
    with pytest.raises(ContractRevertError) as excinfo:
        c.send(c.members[2], revoke(keccak256(b"unknown root"), records[0], tree.proof(0), "x"))
    assert excinfo.value.error_name == "TraceAnchorUnknownRoot"


def test_revoke_by_stranger_or_other_member_is_refused(consortium: Consortium) -> None:
    c = consortium
    tree, records = _anchor_tree(c, 2)
    for outsider in (c.strangers[0], c.members[3], c.issuer):
        with pytest.raises(ContractRevertError) as excinfo:
            c.send(outsider, c.anchor.functions.revokeRecord(tree.root, records[0], tree.proof(0), "x"))
        assert (excinfo.value.error_name, excinfo.value.args) == (
            "TraceAnchorUnauthorizedRevoker", (outsider.address, "0x" + tree.root.hex())
        )


def test_revoke_by_regulator(consortium: Consortium) -> None:
    c = consortium
    tree, records = _anchor_tree(c, 2)
    c.send(c.regulator, c.anchor.functions.revokeRecord(tree.root, records[1], tree.proof(1), "regulator order"))
    assert c.anchor.functions.revocation(tree.root, records[1]).call()[0]


def test_revoke_by_rotated_key_but_not_by_the_old_one(consortium: Consortium) -> None:
    c = consortium
    tree, records = _anchor_tree(c, 2)
    new_key = c.strangers[0]
    c.pass_proposal(c.members[0], lambda g: g.propose_rotate_key(c.members[2].address, new_key.address))
    with pytest.raises(ContractRevertError) as excinfo:
        c.send(c.members[2], c.anchor.functions.revokeRecord(tree.root, records[0], tree.proof(0), "old key"))
    assert excinfo.value.error_name == "TraceAnchorUnauthorizedRevoker"
    c.send(new_key, c.anchor.functions.revokeRecord(tree.root, records[0], tree.proof(0), "new key"))
    assert c.anchor.functions.revocation(tree.root, records[0]).call()[2] == "new key"
    # The anchor stays attributed to the old key, which was a member when it anchored.
    agency, block_number, *_ = c.anchor.functions.batch(tree.root).call()
    assert agency == c.members[2].address
    assert c.registry.functions.wasMemberAt(agency, block_number).call()


def test_removed_agency_cannot_revoke_its_records(consortium: Consortium) -> None:
    c = consortium
    tree, records = _anchor_tree(c, 6)
    c.pass_proposal(c.members[0], lambda g: g.propose_remove_member(c.members[6].address))
    with pytest.raises(ContractRevertError) as excinfo:
        c.send(c.members[6], c.anchor.functions.revokeRecord(tree.root, records[0], tree.proof(0), "x"))
    assert excinfo.value.error_name == "TraceAnchorUnauthorizedRevoker"


def test_recall_lot(consortium: Consortium) -> None:
    c = consortium
    code_hash = trace_code_hash("SH-2025-LOT-0001")
    for outsider in (c.members[2], c.strangers[0]):
        with pytest.raises(NotMemberError) as excinfo:
            c.send(outsider, c.anchor.functions.recallLot(code_hash, "x"))
        assert excinfo.value.error_name == "TraceAnchorNotRegulator"  # type: ignore[attr-defined]
        assert "only an active regulator can do this" in str(excinfo.value)
    receipt = c.send(c.regulator, c.anchor.functions.recallLot(code_hash, "李斯特菌 Listeria"))
    print(f"\nrecallLot gas used: {receipt['gasUsed']}")
    block = c.w3.eth.get_block(receipt["blockNumber"])
    assert c.anchor.functions.recall(code_hash).call() == [
        True, block["timestamp"], c.regulator.address, "李斯特菌 Listeria"
    ]
    (event,) = c.anchor.events.LotRecalled().process_receipt(receipt, errors=DISCARD)
    assert dict(event["args"]) == {
        "traceCodeHash": code_hash, "recalledBy": c.regulator.address, "reason": "李斯特菌 Listeria"
    }
    with pytest.raises(ContractRevertError) as excinfo:
        c.send(c.regulator, c.anchor.functions.recallLot(code_hash, "again"))
    assert excinfo.value.error_name == "TraceAnchorAlreadyRecalled"
    with pytest.raises(ContractRevertError) as excinfo:
        c.send(c.regulator, c.anchor.functions.recallLot(b"\x00" * 32, "x"))
    assert excinfo.value.error_name == "TraceAnchorZeroTraceCodeHash"
    assert c.anchor.functions.recall(trace_code_hash("other")).call() == [False, 0, "0x" + "00" * 20, ""]


def test_anchor_needs_a_registry_contract(consortium: Consortium) -> None:
    c = consortium
    artifact = load_artifact("TraceAnchor")
    with pytest.raises(ContractRevertError) as excinfo:
        c.sender(c.deployer).deploy(artifact["abi"], artifact["bytecode"], c.strangers[0].address)
    assert (excinfo.value.error_name, excinfo.value.args) == ("TraceAnchorInvalidRegistry", (c.strangers[0].address,))


def test_gas_report(consortium: Consortium) -> None:
    """Measure the main operations (printed with -s; only anchorBatch has a hard target)."""
    c = consortium
    gas: dict[str, int] = {}
    roots = [os.urandom(32) for _ in range(3)]
    gas["anchorBatch (first)"] = c.send(c.members[2], c.anchor.functions.anchorBatch(roots[0], 500, 1))["gasUsed"]
    gas["anchorBatch (next)"] = c.send(c.members[2], c.anchor.functions.anchorBatch(roots[1], 500, 1))["gasUsed"]
    tree, records = _anchor_tree(c, 3, n=1000, tag="gas")
    receipt = c.send(
        c.members[3], c.anchor.functions.revokeRecord(tree.root, records[500], tree.proof(500), "mislabelled")
    )
    gas["revokeRecord (1000 leaves)"] = receipt["gasUsed"]
    gas["recallLot"] = c.send(c.regulator, c.anchor.functions.recallLot(roots[2], "recall"))["gasUsed"]
    registry = c.registry.functions
    propose = c.send(c.members[0], registry.proposeAddMember(c.strangers[0].address, "上海市水务局", "SHWATER", 1))
    gas["proposeAddMember"] = propose["gasUsed"]
    gas["proposeSetThreshold"] = c.send(c.members[0], registry.proposeSetThreshold(3))["gasUsed"]
    gas["vote (not executing)"] = c.send(c.members[1], registry.vote(1, True))["gasUsed"]
    for voter in c.members[2:4]:
        c.send(voter, registry.vote(1, True))
    gas["vote (executing AddMember)"] = c.send(c.members[4], registry.vote(1, True))["gasUsed"]
    print("\n" + "\n".join(f"{name:<28} {value:>8,}" for name, value in gas.items()))
    assert gas["anchorBatch (first)"] < ANCHOR_GAS_LIMIT
    assert gas["anchorBatch (next)"] < ANCHOR_GAS_LIMIT
