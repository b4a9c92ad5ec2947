"""Anchoring throughput: `AgencyClient.submit` end to end per batch size, and the naive one-tx-per-record way."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from records import generate_records
from web3 import Web3

from chain_node.consortium import AgencyIdentity
from trace_sdk import AgencyClient
from trace_sdk.client.contracts import load_artifact
from trace_sdk.protocol.canonical import canonicalize
from trace_sdk.protocol.hashing import flatten_fields, hash_record, leaf_hash, new_salts
from trace_sdk.protocol.records import validate_record

__all__ = ["measure_naive", "measure_submit", "warm_up"]


def _client(service_url: str, rpc_url: str, agency: AgencyIdentity, outbox: Path) -> AgencyClient:
    return AgencyClient(service_url, rpc_url, agency.private_key, outbox_path=outbox)


def warm_up(service_url: str, rpc_url: str, agency: AgencyIdentity, work_dir: Path) -> None:
    """One small submit: imports, the compiled schema, HTTP connections and chain facts are warm afterwards."""
    with _client(service_url, rpc_url, agency, work_dir / "outbox-warmup.sqlite3") as client:
        client.submit(generate_records(34, "WARM"), batch_size=34)


def measure_submit(
    service_url: str, rpc_url: str, agency: AgencyIdentity, work_dir: Path, *, batch_size: int, count: int
) -> dict[str, Any]:
    """Records/s of one `submit(records, batch_size)` call on ``count`` fresh records (fresh outbox)."""
    records = generate_records(count)
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    with _client(service_url, rpc_url, agency, work_dir / f"outbox-{batch_size}.sqlite3") as client:
        started = time.perf_counter()
        receipts = client.submit(records, batch_size=batch_size)
        elapsed = time.perf_counter() - started
        stats = dict(client.last_stats)
    if len(receipts) != count or not all(r.uploaded for r in receipts):
        raise RuntimeError("not every record was delivered")
    tx_hashes = list(dict.fromkeys(r.tx_hash for r in receipts if r.tx_hash))
    gas = [int(w3.eth.get_transaction_receipt(tx)["gasUsed"]) for tx in tx_hashes[:5]]
    return {
        "batch_size": batch_size,
        "records": count,
        "batches": len(tx_hashes),
        "seconds": elapsed,
        "prepare_seconds": stats.get("prepare_s", 0.0),
        "records_per_s": count / elapsed,
        "gas_per_batch": sum(gas) / len(gas) if gas else None,
        "certificates": [
            (receipt.certificate_id, record["enterprise"]["uscc"])
            for receipt, record in zip(receipts, records, strict=True)
        ],
    }


def measure_naive(rpc_url: str, agency: AgencyIdentity, anchor_address: str, *, count: int,
                  max_seconds: float = 20.0) -> dict[str, Any]:
    """One anchoring transaction per record through web3.py: validate, hash, `anchorBatch(leaf, 1, 1)`, wait.

    The leaf of a single-record batch is its own root; the transaction is built by web3.py (gas estimated,
    fees filled in), signed locally, sent, and its receipt awaited before the next record (nothing batched).
    """
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    account = w3.eth.account.from_key(agency.private_key)
    anchor = w3.eth.contract(address=Web3.to_checksum_address(anchor_address), abi=load_artifact("TraceAnchor")["abi"])
    records = generate_records(count)
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    done = 0
    gas_used = 0
    started = time.perf_counter()
    for record in records:
        if validate_record(record):
            raise RuntimeError("a generated record is invalid")
        canonicalize(record)
        salts = new_salts(flatten_fields(record))
        root = leaf_hash(hash_record(record, salts).record_hash)
        tx = anchor.functions.anchorBatch(root, 1, 1).build_transaction({"from": account.address, "nonce": nonce})
        signed = account.sign_transaction(tx)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.01)
        if receipt["status"] != 1:
            raise RuntimeError("naive anchoring transaction reverted")
        gas_used += int(receipt["gasUsed"])
        nonce += 1
        done += 1
        if time.perf_counter() - started > max_seconds:
            break
    elapsed = time.perf_counter() - started
    return {"records": done, "seconds": elapsed, "records_per_s": done / elapsed, "gas_per_record": gas_used / done}
