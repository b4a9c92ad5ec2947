"""`ChainReader`: typed views, the immutable-fact LRU, the optional mutable cache and fail-closed errors."""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3

from chain_node.anvil import free_port
from tests.verifier.conftest import VerifierNet
from trace_sdk.exceptions import ChainError, ChainUnavailableError
from trace_sdk.protocol.hashing import from_hex, trace_code_hash
from trace_sdk.verifier.chain_reader import ChainReader, ContractNotFoundError, FactCache


def count_requests(reader: ChainReader) -> list[str]:
    """Record every JSON-RPC method the reader sends (a batch counts once, as 'batch')."""
    sent: list[str] = []
    provider = reader.w3.provider
    single, batch = provider.make_request, provider.make_batch_request

    def make_request(method: Any, params: Any) -> Any:
        sent.append(str(method))
        return single(method, params)

    def make_batch_request(requests: Any) -> Any:
        sent.append("batch")
        return batch(requests)

    provider.make_request = make_request  # type: ignore[method-assign]
    provider.make_batch_request = make_batch_request  # type: ignore[method-assign]
    return sent


def test_typed_views(vnet: VerifierNet, reader: ChainReader) -> None:
    payload = vnet.payload("meat", 0)
    batch = reader.batch(from_hex(payload["merkle"]["root"]))
    assert batch is not None
    assert batch.agency == vnet.address["customs"]
    assert batch.block_number == payload["anchor"]["block_number"]
    assert batch.count == 7 and batch.schema_version == 1
    assert reader.batch(b"\x01" * 32) is None
    assert reader.was_member_at(vnet.address["customs"], batch.block_number)
    assert not reader.was_member_at(vnet.address["customs"], 0)
    member = reader.member(vnet.address["samr"])
    assert (member.name, member.code, member.roles, member.active, member.known) == (
        "上海市市场监督管理局",
        "SHSAMR",
        3,
        True,
        True,
    )
    assert not reader.member(Web3.to_checksum_address("0x" + "12" * 20)).known
    fp = bytes.fromhex(vnet.pki.fingerprint_sha256)
    assert reader.is_issuer_fingerprint(fp)
    assert not reader.is_issuer_fingerprint(bytes.fromhex(vnet.stranger_pki.fingerprint_sha256))
    assert reader.issuer_fingerprint(vnet.address["bdc"]) == fp
    revocation = reader.revocation(batch.root, from_hex(payload["record_hash"]))
    assert not revocation.revoked and revocation.root == batch.root
    assert not reader.recall(trace_code_hash(payload["record"]["trace_code"])).recalled
    assert reader.anchor_registry() == vnet.deployment.registry
    assert reader.chain_id() == vnet.deployment.chain_id
    tx = reader.anchor_transaction(payload["anchor"]["tx_hash"])
    assert tx is not None and tx.succeeded and (batch.root, batch.agency) in tx.anchored
    assert reader.anchor_transaction("0x" + "22" * 32) is None


def test_immutable_facts_are_cached(vnet: VerifierNet, reader: ChainReader) -> None:
    root = from_hex(vnet.payload("meat", 0)["merkle"]["root"])
    sent = count_requests(reader)
    first = reader.batch(root)
    assert first is not None
    reader.was_member_at(first.agency, first.block_number)
    reader.chain_id()
    reader.anchor_registry()
    calls = len(sent)
    assert reader.batch(root) == first
    assert reader.was_member_at(first.agency, first.block_number)
    reader.chain_id()
    reader.anchor_registry()
    assert len(sent) == calls


def test_unknown_root_and_future_block_are_not_cached(vnet: VerifierNet, reader: ChainReader) -> None:
    sent = count_requests(reader)
    assert reader.batch(b"\x02" * 32) is None
    assert reader.batch(b"\x02" * 32) is None
    future = reader.block_number() + 1000
    assert reader.was_member_at(vnet.address["customs"], future)
    before = len(sent)
    reader.was_member_at(vnet.address["customs"], future)
    assert len(sent) > before
    assert sent.count("eth_call") >= 2


def test_mutable_facts_are_fresh_by_default(mutable_chain: VerifierNet) -> None:
    net = mutable_chain
    reader = net.reader()
    code = net.payload("meat", 1)["record"]["trace_code"]
    assert not reader.recall(trace_code_hash(code)).recalled
    net.recall(code, "抽检不合格")
    fact = reader.recall(trace_code_hash(code))
    assert fact.recalled and fact.reason == "抽检不合格" and fact.recalled_by == net.address["samr"]


def test_mutable_cache_and_invalidate_hook(mutable_chain: VerifierNet) -> None:
    net = mutable_chain
    cache = FactCache(128)
    reader = net.reader(mutable_cache=cache)
    code = net.payload("meat", 1)["record"]["trace_code"]
    assert not reader.recall(trace_code_hash(code)).recalled
    net.recall(code, "抽检不合格")
    assert not reader.recall(trace_code_hash(code)).recalled  # served from the cache
    reader.invalidate()
    assert reader.recall(trace_code_hash(code)).recalled
    assert len(cache) == 1


def test_recalls_are_read_in_one_batch(vnet: VerifierNet, reader: ChainReader) -> None:
    sent = count_requests(reader)
    codes = [r["trace_code"] for r in vnet.batches["meat"].records]
    facts = reader.recalls(trace_code_hash(c) for c in codes)
    assert len(facts) == len(set(codes)) and not any(f.recalled for f in facts.values())
    assert sent == ["batch"]


def test_fact_cache_lru_and_ttl() -> None:
    cache = FactCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # evicts b, the least recently used
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    cache.invalidate("a")
    assert cache.get("a", "gone") == "gone"
    expired = FactCache(2, ttl_seconds=-1)
    expired.put("a", 1)
    assert expired.get("a") is None
    with pytest.raises(ValueError):
        FactCache(0)


def test_unreachable_endpoint_raises_chain_unavailable(vnet: VerifierNet) -> None:
    dead = ChainReader(f"http://127.0.0.1:{free_port()}", vnet.deployment.registry, vnet.deployment.anchor)
    with pytest.raises(ChainUnavailableError) as excinfo:
        dead.batch(b"\x01" * 32)
    assert isinstance(excinfo.value, ChainError)
    assert excinfo.value.user_message


def test_address_without_a_contract(vnet: VerifierNet) -> None:
    reader = ChainReader(vnet.rpc_url, vnet.address["agri"], vnet.address["agri"])
    assert not reader.has_code(vnet.address["agri"])
    with pytest.raises(ContractNotFoundError):
        reader.batch(b"\x01" * 32)


def test_accepts_a_web3_instance(vnet: VerifierNet) -> None:
    reader = ChainReader(vnet.w3, vnet.deployment.registry.lower(), vnet.deployment.anchor.lower())
    assert reader.w3 is vnet.w3
    assert reader.registry_address == vnet.deployment.registry
    assert reader.anchor_registry() == vnet.deployment.registry


def test_roles(vnet: VerifierNet, reader: ChainReader) -> None:
    assert reader.has_role(vnet.address["samr"], 2)
    assert reader.has_role(vnet.address["samr"], 3)
    assert not reader.has_role(vnet.address["customs"], 2)
    assert reader.is_active_member(vnet.address["customs"])
    assert not reader.is_active_member(Web3.to_checksum_address("0x" + "12" * 20))


def test_many_lots_are_read_in_chunks(vnet: VerifierNet, reader: ChainReader) -> None:
    sent = count_requests(reader)
    facts = reader.recalls(trace_code_hash(f"DEMOX{i:015d}") for i in range(600))
    assert len(facts) == 600 and not any(f.recalled for f in facts.values())
    assert sent == ["batch", "batch", "batch"]
