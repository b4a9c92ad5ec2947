"""`verify_payload` against a real Anvil: every check valid, and each way a certificate can be wrong."""

from __future__ import annotations

import asyncio

import pytest

from tests.verifier.builders import rehash, seal
from tests.verifier.conftest import VerifierNet
from trace_sdk.client.contracts import load_artifact
from trace_sdk.exceptions import ContractRevertError
from trace_sdk.protocol.hashing import from_hex, hash_record, keccak256, leaf_hash
from trace_sdk.protocol.merkle import MerkleTree
from trace_sdk.verifier.chain_reader import ChainReader
from trace_sdk.verifier.checks import async_verify_payload, verify_payload
from trace_sdk.verifier.result import CHECK_NAMES, VerificationResult


def statuses(result: VerificationResult) -> dict[str, str]:
    """Check name -> status."""
    return {c.name: c.status for c in result.checks}


def only_invalid(result: VerificationResult) -> set[str]:
    """Names of the checks that came out invalid."""
    return {c.name for c in result.checks if c.status == "invalid"}


# ----------------------------------------------------------------------------------------------------- valid


@pytest.mark.parametrize("index", range(7))
def test_every_certificate_of_a_batch_is_valid(vnet: VerifierNet, reader: ChainReader, index: int) -> None:
    result = verify_payload(vnet.payload("meat", index), reader)
    assert result.status == "valid", result.to_json()["checks"]
    assert result.valid and result.ok
    assert [c.name for c in result.checks] == list(CHECK_NAMES)
    assert statuses(result) == {**dict.fromkeys(CHECK_NAMES, "valid"), "pdf_signature": "skipped"}
    assert all(c.message for c in result.checks)


def test_result_json_shape(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 0)
    data = verify_payload(payload, reader).to_json()
    assert set(data) == {"valid", "status", "checks", "certificate", "anchor"}
    assert data["valid"] is True and data["status"] == "valid"
    assert all(set(c) == {"name", "status", "message"} for c in data["checks"])
    cert = data["certificate"]
    assert cert["certificate_id"] == payload["certificate_id"]
    assert cert["certificate_hash"] == payload["certificate_hash"]
    assert cert["trace_code"] == payload["record"]["trace_code"]
    assert cert["revocation"] is None and cert["recalls"] == []
    assert "salts" not in cert and "contact" not in cert["record"]
    assert sorted(cert["hidden_fields"]) == cert["hidden_fields"] and "contact.phone" in cert["hidden_fields"]
    anchor = data["anchor"]
    assert {"tx_hash", "block_number", "block_time", "agency"} <= set(anchor)
    assert anchor["agency"]["address"] == vnet.address["customs"]
    assert anchor["tx_hash"] == vnet.batches["meat"].tx_hash


def test_hidden_field_revealed_correctly_stays_valid(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 0)
    batch = vnet.batches["meat"]
    full = batch.records[0]
    payload["record"]["contact"] = full["contact"]
    for path in ("contact.person", "contact.phone"):
        payload["salts"][path] = batch.salts[0][path]
        del payload["hidden_fields"][path]
    seal(payload)
    assert verify_payload(payload, reader).status == "valid"


def test_async_twin_gives_the_same_result(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 3)
    assert asyncio.run(async_verify_payload(payload, reader)) == verify_payload(payload, reader)


# ----------------------------------------------------------------------------------------- payload_integrity


def test_edited_field_without_recomputing_hashes(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 1)
    payload["record"]["product"]["quantity"] = 30.0
    result = verify_payload(payload, reader)
    assert result.status == "invalid" and not result.valid
    assert only_invalid(result) == {"payload_integrity"}
    message = result.check("payload_integrity").message  # type: ignore[union-attr]
    assert "记录哈希" in message and "证书哈希" in message


def test_edited_field_with_recomputed_hashes_breaks_the_proof(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 1)
    payload["record"]["disposition"] = "conformant"
    rehash(payload)
    result = verify_payload(payload, reader)
    assert result.status == "invalid"
    assert statuses(result)["payload_integrity"] == "valid"
    assert only_invalid(result) == {"merkle_proof"}


def test_certificate_hash_alone_edited(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 2)
    payload["issued_at"] = "2030-01-01T00:00:00+08:00"
    result = verify_payload(payload, reader)
    assert only_invalid(result) == {"payload_integrity"}
    assert "证书哈希" in result.check("payload_integrity").message  # type: ignore[union-attr]


def test_changed_salt(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 2)
    payload["salts"]["product.lot"] = "0x" + "ab" * 32
    seal(payload)
    result = verify_payload(payload, reader)
    assert result.status == "invalid"
    assert only_invalid(result) == {"payload_integrity"}


def test_extra_salt_is_rejected(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 2)
    payload["salts"]["product.secret"] = "0x" + "ab" * 32
    seal(payload)
    assert only_invalid(verify_payload(payload, reader)) == {"payload_integrity"}


def test_hidden_field_revealed_with_a_wrong_value(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 0)
    payload["record"]["enterprise"]["uscc"] = "91310000000000000X"
    payload["salts"]["enterprise.uscc"] = vnet.batches["meat"].salts[0]["enterprise.uscc"]
    del payload["hidden_fields"]["enterprise.uscc"]
    seal(payload)
    result = verify_payload(payload, reader)
    assert result.status == "invalid"
    assert only_invalid(result) == {"payload_integrity"}


def test_field_both_disclosed_and_hidden(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 0)
    payload["record"]["enterprise"]["uscc"] = vnet.batches["meat"].records[0]["enterprise"]["uscc"]
    payload["salts"]["enterprise.uscc"] = vnet.batches["meat"].salts[0]["enterprise.uscc"]
    seal(payload)
    assert only_invalid(verify_payload(payload, reader)) == {"payload_integrity"}


def test_certificate_id_must_derive_from_the_record_hash(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 3)
    payload["certificate_id"] = vnet.batches["meat"].payloads[4]["certificate_id"]
    seal(payload)
    result = verify_payload(payload, reader)
    assert only_invalid(result) == {"payload_integrity"}
    assert "证书编号" in result.check("payload_integrity").message  # type: ignore[union-attr]


@pytest.mark.parametrize("payload", [None, [], "certificate"])
def test_not_a_payload(reader: ChainReader, payload: object) -> None:
    result = verify_payload(payload, reader)  # type: ignore[arg-type]
    assert result.status == "invalid"
    assert statuses(result)["payload_integrity"] == "invalid"
    assert statuses(result)["anchored_on_chain"] == "skipped"


def test_missing_pieces_are_invalid_not_crashes(vnet: VerifierNet, reader: ChainReader) -> None:
    for key in ("record", "salts", "hidden_fields", "record_hash", "merkle", "anchor", "certificate_hash"):
        payload = vnet.payload("meat", 5)
        del payload[key]
        seal(payload) if key != "certificate_hash" else None
        result = verify_payload(payload, reader)
        assert result.status == "invalid", key


# ---------------------------------------------------------------------------------------------- merkle_proof


def test_proof_from_another_certificate(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 1)
    payload["merkle"]["proof"] = vnet.batches["meat"].payloads[4]["merkle"]["proof"]
    seal(payload)
    result = verify_payload(payload, reader)
    assert result.status == "invalid"
    assert only_invalid(result) == {"merkle_proof"}


def test_leaf_must_be_the_hash_of_the_record_hash(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 1)
    payload["merkle"]["leaf"] = vnet.batches["meat"].payloads[1]["record_hash"]
    seal(payload)
    assert only_invalid(verify_payload(payload, reader)) == {"merkle_proof"}


# ----------------------------------------------------------------------------------------- anchored_on_chain


def test_unknown_root(vnet: VerifierNet, reader: ChainReader) -> None:
    result = verify_payload(vnet.payload("unanchored", 1), reader)
    assert result.status == "invalid"
    assert statuses(result)["merkle_proof"] == "valid"
    assert statuses(result)["anchored_on_chain"] == "invalid"
    assert "未在链上锚定" in result.check("anchored_on_chain").message  # type: ignore[union-attr]
    assert statuses(result)["agency_membership"] == "skipped"


def test_root_anchored_by_another_member_than_claimed(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 2)
    payload["anchor"]["agency"] = {
        "name": "上海市农业农村委员会",
        "code": "SHAGRI",
        "address": vnet.address["agri"],
    }
    seal(payload)
    result = verify_payload(payload, reader)
    assert result.status == "invalid"
    assert "anchored_on_chain" in only_invalid(result)
    assert vnet.address["customs"] in result.check("anchored_on_chain").message  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("block_number", 1),
        ("block_time", "2020-01-01T00:00:00+08:00"),
        ("chain_id", 1),
        ("tx_hash", "0x" + "11" * 32),
    ],
)
def test_anchor_claims_must_match_the_chain(vnet: VerifierNet, reader: ChainReader, key: str, value: object) -> None:
    payload = vnet.payload("meat", 2)
    payload["anchor"][key] = value
    seal(payload)
    result = verify_payload(payload, reader)
    assert only_invalid(result) == {"anchored_on_chain"}, result.to_json()["checks"]


def test_anchor_transaction_of_another_batch(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 2)
    payload["anchor"]["tx_hash"] = vnet.batches["pork"].tx_hash
    seal(payload)
    assert only_invalid(verify_payload(payload, reader)) == {"anchored_on_chain"}


def test_payload_naming_other_contracts(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 2)
    payload["anchor"]["contracts"]["TraceAnchor"] = vnet.address["agri"]
    seal(payload)
    result = verify_payload(payload, reader)
    assert result.status == "invalid" and "anchored_on_chain" in only_invalid(result)


def test_anchor_bound_to_another_registry(vnet: VerifierNet) -> None:
    # A reader pinning a registry the anchor does not consult: the anchor is not part of that consortium.
    other = vnet.reader()
    impostor = ChainReader(vnet.rpc_url, vnet.address["agri"], vnet.deployment.anchor)
    payload = vnet.payload("meat", 2)
    payload["anchor"]["contracts"]["ConsortiumRegistry"] = vnet.address["agri"]
    seal(payload)
    result = verify_payload(payload, impostor)
    assert "anchored_on_chain" in only_invalid(result)
    assert verify_payload(vnet.payload("meat", 2), other).valid


# ----------------------------------------------------------------------------------------- agency_membership


def test_agency_name_must_match_the_registry(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 3)
    payload["anchor"]["agency"]["name"] = "上海市市场监督管理局"
    seal(payload)
    result = verify_payload(payload, reader)
    assert only_invalid(result) == {"agency_membership"}


def test_removed_member_old_anchor_stays_valid(mutable_chain: VerifierNet) -> None:
    net = mutable_chain
    payload = net.payload("pork", 1)
    anchored_at = payload["anchor"]["block_number"]
    proposal = net.gov("customs").propose_remove_member(net.address["port"])
    net.pass_proposal("customs", proposal)
    net.w3.provider.make_request("anvil_mine", ["0x1"])  # type: ignore[arg-type]  # removal block is done
    registry = net.registry.functions
    assert not registry.isActiveMember(net.address["port"]).call()
    assert registry.wasMemberAt(net.address["port"], anchored_at).call()
    assert not registry.wasMemberAt(net.address["port"], net.w3.eth.block_number).call()
    # A removed member can no longer anchor...
    records = net.batches["pork"].records
    from tests.verifier.builders import salts_for, tree_for

    fresh = tree_for(records, [salts_for(r) for r in records])
    with pytest.raises(ContractRevertError) as excinfo:
        net.send("port", net.anchor.functions.anchorBatch(fresh.root, len(records), 1))
    assert excinfo.value.error_name == "TraceAnchorNotMember"
    # ...but what it anchored while it was a member stays verifiable.
    result = verify_payload(payload, net.reader())
    assert result.status == "valid", result.to_json()["checks"]
    assert "现已不是成员" in result.check("agency_membership").message  # type: ignore[union-attr]


def test_was_member_at_is_false_for_a_block_after_removal(mutable_chain: VerifierNet) -> None:
    net = mutable_chain
    proposal = net.gov("customs").propose_remove_member(net.address["port"])
    net.pass_proposal("customs", proposal)
    net.w3.provider.make_request("anvil_mine", ["0x1"])  # type: ignore[arg-type]  # removal block is done
    reader = net.reader()
    after = reader.block_number()
    assert not reader.was_member_at(net.address["port"], after)
    assert reader.was_member_at(net.address["port"], net.payload("pork", 0)["anchor"]["block_number"])


# ----------------------------------------------------------------------------------------------- not_revoked


def revoke(net: VerifierNet, batch: str, index: int, reason: str, who: str = "customs") -> None:
    """Revoke one record of a batch on chain."""
    payload = net.batches[batch].payloads[index]
    call = net.anchor.functions.revokeRecord(
        from_hex(payload["merkle"]["root"]),
        from_hex(payload["record_hash"]),
        [from_hex(n) for n in payload["merkle"]["proof"]],
        reason,
    )
    net.send(who, call)


def test_revoked_record(mutable_chain: VerifierNet) -> None:
    net = mutable_chain
    revoke(net, "meat", 3, "收货数量录入错误")
    result = verify_payload(net.payload("meat", 3), net.reader())
    assert result.status == "revoked" and not result.valid
    check = result.check("not_revoked")
    assert check is not None and check.status == "invalid"
    assert "收货数量录入错误" in check.message and "被撤销" in check.message
    assert result.revocation is not None and result.revocation.reason == "收货数量录入错误"
    data = result.to_json()
    assert data["status"] == "revoked" and data["valid"] is False
    assert data["certificate"]["revocation"]["reason"] == "收货数量录入错误"
    assert data["certificate"]["revocation"]["revoked_at"].endswith("Z")
    # The other records of the batch are untouched.
    assert verify_payload(net.payload("meat", 4), net.reader()).status == "valid"


def test_revocation_under_another_members_root_does_not_count(mutable_chain: VerifierNet) -> None:
    """Regression: a member anchoring its own root with another agency's (public) leaf and revoking it there."""
    net = mutable_chain
    payload = net.payload("meat", 2)
    record_hash = from_hex(payload["record_hash"])
    tree = MerkleTree([leaf_hash(record_hash), leaf_hash(keccak256(b"port's own record"))])
    net.send("port", net.anchor.functions.anchorBatch(tree.root, 2, 1))
    net.send("port", net.anchor.functions.revokeRecord(tree.root, record_hash, tree.proof(0), "hijack"))
    reader = net.reader()
    assert reader.revocation(tree.root, record_hash).revoked
    result = verify_payload(payload, reader)
    assert result.status == "valid" and result.revocation is None
    # The anchoring agency can still revoke it under the certificate's own root.
    revoke(net, "meat", 2, "收货数量录入错误")
    result = verify_payload(payload, net.reader())
    assert result.status == "revoked"
    assert result.revocation is not None and result.revocation.reason == "收货数量录入错误"
    assert result.revocation.root == payload["merkle"]["root"]


def test_invalid_wins_over_revoked(mutable_chain: VerifierNet) -> None:
    net = mutable_chain
    revoke(net, "meat", 3, "重复上报")
    payload = net.payload("meat", 3)
    payload["record"]["disposition"] = "expired"
    assert verify_payload(payload, net.reader()).status == "invalid"


# ---------------------------------------------------------------------------------------------- not_recalled


def test_recalled_lot_itself(mutable_chain: VerifierNet) -> None:
    net = mutable_chain
    payload = net.payload("meat", 4)
    net.recall(payload["record"]["trace_code"], "核酸检测阳性")
    result = verify_payload(payload, net.reader())
    assert result.status == "recalled" and not result.valid
    message = result.check("not_recalled").message  # type: ignore[union-attr]
    assert payload["record"]["trace_code"] in message and "核酸检测阳性" in message and "本批次" in message
    assert [r.relation for r in result.recalls] == ["self"]


def test_recalled_via_an_input(mutable_chain: VerifierNet) -> None:
    net = mutable_chain
    payload = net.payload("meat", 4)  # DEMOS169526530500008, input DEMOW698611480900004
    (parent,) = payload["record"]["inputs"]
    net.recall(parent, "冷库温度记录异常")
    result = verify_payload(payload, net.reader())
    assert result.status == "recalled"
    message = result.check("not_recalled").message  # type: ignore[union-attr]
    assert parent in message and "冷库温度记录异常" in message
    assert result.to_json()["certificate"]["recalls"][0]["trace_code"] == parent


def test_recalled_via_a_distant_ancestor(mutable_chain: VerifierNet) -> None:
    net = mutable_chain
    payload = net.payload("meat", 4)
    grandparent = payload["lineage"]["upstream_trace_codes"][-1]
    assert grandparent not in payload["record"]["inputs"]
    net.recall(grandparent, "进口批次检出非洲猪瘟")
    result = verify_payload(payload, net.reader())
    assert result.status == "recalled"
    assert [(r.trace_code, r.relation) for r in result.recalls] == [(grandparent, "upstream")]
    # An unrelated lot is not affected.
    assert verify_payload(net.payload("pork", 0), net.reader()).status == "valid"


def test_recalled_via_extra_upstream_codes(mutable_chain: VerifierNet) -> None:
    net = mutable_chain
    payload = net.payload("meat", 0)
    net.recall("DEMOX000000000000001", "后续查明的原料批次")
    reader = net.reader()
    assert verify_payload(payload, reader).status == "valid"
    result = verify_payload(payload, reader, extra_upstream_trace_codes=["DEMOX000000000000001"])
    assert result.status == "recalled"


def test_revoked_wins_over_recalled(mutable_chain: VerifierNet) -> None:
    net = mutable_chain
    payload = net.payload("meat", 5)
    revoke(net, "meat", 5, "错误批次")
    net.recall(payload["record"]["trace_code"], "召回")
    result = verify_payload(payload, net.reader())
    assert result.status == "revoked"
    assert result.revoked and result.recalled


# ------------------------------------------------------------------------------------------------ chain down


def test_unreachable_chain_fails_closed(vnet: VerifierNet) -> None:
    from chain_node.anvil import free_port

    dead = ChainReader(f"http://127.0.0.1:{free_port()}", vnet.deployment.registry, vnet.deployment.anchor)
    result = verify_payload(vnet.payload("meat", 0), dead)
    assert not result.valid and result.status == "invalid" and result.undecided
    assert statuses(result) == {
        "payload_integrity": "valid",
        "merkle_proof": "valid",
        "anchored_on_chain": "error",
        "agency_membership": "error",
        "pdf_signature": "skipped",
        "not_revoked": "error",
        "not_recalled": "error",
    }
    assert "无法连接区块链节点" in result.check("anchored_on_chain").message  # type: ignore[union-attr]


def test_unreachable_chain_still_reports_a_forgery_as_invalid(vnet: VerifierNet) -> None:
    from chain_node.anvil import free_port

    dead = ChainReader(f"http://127.0.0.1:{free_port()}", vnet.deployment.registry, vnet.deployment.anchor)
    payload = vnet.payload("meat", 0)
    payload["record"]["trace_code"] = "DEMOI000000000000000"
    assert verify_payload(payload, dead).status == "invalid"


def test_contract_address_without_code(vnet: VerifierNet) -> None:
    empty = vnet.address["agri"]  # an externally owned account: no code
    reader = ChainReader(vnet.rpc_url, vnet.deployment.registry, empty)
    payload = vnet.payload("meat", 0)
    payload["anchor"]["contracts"]["TraceAnchor"] = empty
    seal(payload)
    result = verify_payload(payload, reader)
    assert result.status == "invalid"
    assert statuses(result)["anchored_on_chain"] == "invalid"


def test_sanity_record_hash_matches_builder(vnet: VerifierNet) -> None:
    batch = vnet.batches["meat"]
    rh = hash_record(batch.records[2], batch.salts[2]).record_hash
    assert batch.payloads[2]["record_hash"] == "0x" + rh.hex()
    assert load_artifact("TraceAnchor")["contractName"] == "TraceAnchor"
