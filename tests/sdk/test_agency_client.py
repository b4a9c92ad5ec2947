"""AgencyClient end to end against a real Anvil and a real certificate service process."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from web3 import Web3

from certificate_service.db.models import Certificate, Record
from tests.support.service import ServiceProcess, write_deployment
from trace_sdk.client.agency import AgencyClient
from trace_sdk.client.contracts import load_artifact
from trace_sdk.exceptions import ConflictError, DeliveryPendingError, NotMemberError, ValidationError
from trace_sdk.protocol.hashing import leaf_hash
from trace_sdk.protocol.merkle import verify_proof

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def service(consortium: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    data_dir = tmp_path_factory.mktemp("service")
    write_deployment(data_dir, consortium.deployment, consortium.rpc_url)
    proc = ServiceProcess(data_dir=data_dir, rpc_url=consortium.rpc_url).start()
    yield proc
    proc.stop()


@pytest.fixture
def client_factory(consortium: Any, service: ServiceProcess, tmp_path: Path) -> Iterator[Any]:
    clients: list[AgencyClient] = []

    def make(agency: str = "customs", *, rpc_url: str | None = None, service_url: str | None = None,
             outbox: Path | None = None) -> AgencyClient:
        client = AgencyClient(
            service_url or service.url,
            rpc_url or consortium.rpc_url,
            consortium.keys[agency],
            outbox_path=outbox or tmp_path / f"{agency}-outbox.sqlite3",
            retries=2,
            backoff_s=0.05,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def fresh(records: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    """Copies of the sample records with record_ids unique to one test."""
    out = copy.deepcopy(records)
    for record in out:
        record["record_id"] = f"{tag}-{record['record_id']}"
    return out


def db_count(service: ServiceProcess, model: Any, **where: Any) -> int:
    engine = create_engine(f"sqlite:///{service.data_dir / 'service.db'}")
    try:
        with engine.connect() as connection:
            query = select(func.count()).select_from(model)
            for column, value in where.items():
                query = query.where(getattr(model, column) == value)
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


def anchored_batches(consortium: Any, agency: str) -> int:
    """BatchAnchored events emitted for this agency since the deployment (counted on chain)."""
    w3 = Web3(Web3.HTTPProvider(consortium.rpc_url))
    anchor = w3.eth.contract(address=consortium.deployment.anchor, abi=load_artifact("TraceAnchor")["abi"])
    logs = anchor.events.BatchAnchored().get_logs(
        from_block=consortium.deployment.deployment_block,
        argument_filters={"agency": consortium.address[agency]},
    )
    return len(logs)


def nonce(consortium: Any, agency: str) -> int:
    w3 = Web3(Web3.HTTPProvider(consortium.rpc_url))
    return w3.eth.get_transaction_count(consortium.address[agency])


def test_submit_anchors_one_transaction_per_batch_and_uploads(
    client_factory: Any, consortium: Any, service: ServiceProcess, sample_records: list[dict[str, Any]]
) -> None:
    records = fresh(sample_records, "happy")
    client = client_factory()
    before = nonce(consortium, "customs")
    receipts = client.submit(records, batch_size=10)

    assert [r.record_id for r in receipts] == [r["record_id"] for r in records]
    assert nonce(consortium, "customs") - before == 4  # 34 records in batches of 10
    assert len({r.merkle_root for r in receipts}) == 4
    w3 = Web3(Web3.HTTPProvider(consortium.rpc_url))
    anchor = w3.eth.contract(address=consortium.deployment.anchor, abi=load_artifact("TraceAnchor")["abi"])
    for receipt in receipts:
        assert receipt.tx_hash and receipt.tx_hash.startswith("0x")
        assert receipt.block_number and receipt.uploaded
        agency, block, *_ = anchor.functions.batch(bytes.fromhex(receipt.merkle_root[2:])).call()
        assert agency == consortium.address["customs"] and block == receipt.block_number
    assert db_count(service, Record, agency_address=consortium.address["customs"]) >= 34
    assert db_count(service, Certificate) >= 34
    assert client.pending() == []

    # The stored proofs verify against the anchored roots.
    engine = create_engine(f"sqlite:///{service.data_dir / 'service.db'}")
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT record_hash, root, proof FROM records WHERE record_id LIKE 'happy-%'")
        ).fetchall()
    engine.dispose()
    assert len(rows) == 34
    import json

    for record_hash, root, proof in rows:
        proof_list = json.loads(proof) if isinstance(proof, str) else proof
        assert verify_proof(
            leaf_hash(bytes.fromhex(record_hash[2:])), [bytes.fromhex(p[2:]) for p in proof_list],
            bytes.fromhex(root[2:]),
        )


def test_resubmission_is_idempotent_even_with_reordered_keys(
    client_factory: Any, consortium: Any, sample_records: list[dict[str, Any]]
) -> None:
    records = fresh(sample_records[:5], "idem")
    client = client_factory()
    first = client.submit(records)
    before = nonce(consortium, "customs")
    reordered = [dict(reversed(list(r.items()))) for r in records]
    again = client.submit(reordered)
    assert again == first
    assert nonce(consortium, "customs") == before  # no transaction sent


def test_conflicting_content_raises_and_the_first_record_stands(
    client_factory: Any, consortium: Any, service: ServiceProcess, sample_records: list[dict[str, Any]]
) -> None:
    records = fresh(sample_records[:2], "conflict")
    client = client_factory()
    first = client.submit(records)
    changed = copy.deepcopy(records[0])
    changed["product"]["quantity"] = 1
    before = nonce(consortium, "customs")
    with pytest.raises(ConflictError) as excinfo:
        client.submit([changed])
    assert excinfo.value.record_id == records[0]["record_id"]
    assert records[0]["record_id"] in str(excinfo.value)
    assert nonce(consortium, "customs") == before
    assert client.submit([records[0]])[0] == first[0]
    assert db_count(service, Record, record_id=records[0]["record_id"]) == 1


def test_one_invalid_record_aborts_before_anything_is_anchored(
    client_factory: Any, consortium: Any, sample_records: list[dict[str, Any]]
) -> None:
    records = fresh(sample_records[:4], "invalid")
    records[2]["product"]["gtin"] = "6906900602670"  # wrong check digit
    del records[3]["event_time"]
    client = client_factory()
    before = nonce(consortium, "customs")
    with pytest.raises(ValidationError) as excinfo:
        client.submit(records)
    located = {(e.index, e.path) for e in excinfo.value.errors}
    assert (2, "product.gtin") in located
    assert any(index == 3 and "event_time" in path for index, path in located)
    assert nonce(consortium, "customs") == before
    assert client.outbox.known_records(client.address, [r["record_id"] for r in records]) == {}


def test_skip_invalid_submits_the_valid_ones_then_reports(
    client_factory: Any, consortium: Any, sample_records: list[dict[str, Any]]
) -> None:
    records = fresh(sample_records[:3], "skip")
    records[1]["enterprise"]["uscc"] = "91310115735468487X"
    client = client_factory()
    with pytest.raises(ValidationError) as excinfo:
        client.submit(records, skip_invalid=True)
    assert [e.index for e in excinfo.value.errors] == [1]
    delivered = excinfo.value.receipts  # type: ignore[attr-defined]
    assert [r.record_id for r in delivered] == [records[0]["record_id"], records[2]["record_id"]]
    assert all(r.uploaded for r in delivered)


def test_non_member_is_refused_before_sending(
    client_factory: Any, consortium: Any, sample_records: list[dict[str, Any]]
) -> None:
    client = client_factory("outsider")
    before = nonce(consortium, "outsider")
    with pytest.raises(NotMemberError):
        client.submit(fresh(sample_records[:1], "outsider"))
    assert nonce(consortium, "outsider") == before


def test_service_down_then_up_delivers_exactly_once(
    client_factory: Any, consortium: Any, service: ServiceProcess, sample_records: list[dict[str, Any]]
) -> None:
    records = fresh(sample_records[:6], "svcdown")
    client = client_factory()
    client.chain_info()  # discovered once while the service was up (cached in the outbox)
    service.stop()
    try:
        with pytest.raises(DeliveryPendingError) as excinfo:
            client.submit(records)
        assert [p.state for p in excinfo.value.pending] == ["anchored"]
        assert [p.state for p in client.pending()] == ["anchored"]
    finally:
        service.start()
    delivered = client.flush()
    assert sorted(r.record_id for r in delivered) == sorted(r["record_id"] for r in records)
    assert client.pending() == []
    assert anchored_batches(consortium, "customs") >= 1
    for record in records:
        assert db_count(service, Record, record_id=record["record_id"]) == 1
    # A second flush has nothing to do and sends nothing.
    before = nonce(consortium, "customs")
    assert client.flush() == []
    assert nonce(consortium, "customs") == before


def test_chain_down_then_up_keeps_records_in_the_outbox(
    client_factory: Any, consortium: Any, service: ServiceProcess, sample_records: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    records = fresh(sample_records[:4], "chaindown")
    outbox = tmp_path / "shared-outbox.sqlite3"
    online = client_factory(outbox=outbox)
    online.chain_info()
    dead_rpc = "http://127.0.0.1:9"  # nothing listens on the discard port
    offline = client_factory(rpc_url=dead_rpc, outbox=outbox)
    before = nonce(consortium, "customs")
    with pytest.raises(DeliveryPendingError):
        offline.submit(records)
    assert [p.state for p in offline.pending()] == ["sealed"]
    assert nonce(consortium, "customs") == before
    receipts = online.flush()
    assert sorted(r.record_id for r in receipts) == sorted(r["record_id"] for r in records)
    assert nonce(consortium, "customs") == before + 1
    for record in records:
        assert db_count(service, Record, record_id=record["record_id"]) == 1


_CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys, json
    from trace_sdk.client.agency import AgencyClient
    point = sys.argv[1]
    original_broadcast = AgencyClient._broadcast
    def crash_before_broadcast(self, raw):
        os._exit(137)
    def crash_before_upload(self, batch):
        os._exit(137)
    if point == "before-broadcast":
        AgencyClient._broadcast = crash_before_broadcast
    else:
        AgencyClient._upload = crash_before_upload
    records = [json.loads(line) for line in open(sys.argv[5])]
    AgencyClient(sys.argv[2], sys.argv[3], sys.argv[4], outbox_path=sys.argv[6]).submit(records)
    """
)


@pytest.mark.parametrize("crash_point", ["before-broadcast", "before-upload"])
def test_process_killed_mid_submission_resumes_exactly_once(
    crash_point: str, client_factory: Any, consortium: Any, service: ServiceProcess,
    sample_records: list[dict[str, Any]], tmp_path: Path,
) -> None:
    import json

    records = fresh(sample_records[:5], f"crash-{crash_point}")
    records_file = tmp_path / "records.jsonl"
    records_file.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records))
    outbox = tmp_path / "crash-outbox.sqlite3"
    batches_before = anchored_batches(consortium, "agri")
    result = subprocess.run(
        [sys.executable, "-c", _CRASH_SCRIPT, crash_point, service.url, consortium.rpc_url,
         consortium.keys["agri"], str(records_file), str(outbox)],
        cwd=REPO_ROOT, env=dict(os.environ), capture_output=True, timeout=120,
    )
    assert result.returncode == 137, result.stderr.decode()[-2000:]
    client = client_factory("agri", outbox=outbox)
    expected_state = "signed" if crash_point == "before-broadcast" else "anchored"
    assert [p.state for p in client.pending()] == [expected_state]

    receipts = client.flush()
    assert sorted(r.record_id for r in receipts) == sorted(r["record_id"] for r in records)
    assert anchored_batches(consortium, "agri") == batches_before + 1
    for record in records:
        assert db_count(service, Record, record_id=record["record_id"]) == 1
    # Submitting the same records again returns the same receipts without a transaction.
    before = nonce(consortium, "agri")
    assert [r.record_id for r in client.submit(records)] == [r["record_id"] for r in records]
    assert nonce(consortium, "agri") == before


def test_revoke_and_recall_reach_the_chain(
    client_factory: Any, consortium: Any, sample_records: list[dict[str, Any]]
) -> None:
    records = fresh(sample_records[:3], "revoke")
    client = client_factory()
    receipts = client.submit(records)
    result = client.revoke(records[1]["record_id"], "检测报告编号录入错误")
    w3 = Web3(Web3.HTTPProvider(consortium.rpc_url))
    anchor = w3.eth.contract(address=consortium.deployment.anchor, abi=load_artifact("TraceAnchor")["abi"])
    root = bytes.fromhex(receipts[1].merkle_root[2:])
    revoked, _, reason = anchor.functions.revocation(root, bytes.fromhex(receipts[1].record_hash[2:])).call()
    assert revoked and reason == "检测报告编号录入错误"
    assert result["record_hash"] == receipts[1].record_hash
    other_root = bytes.fromhex(receipts[0].merkle_root[2:])
    assert not anchor.functions.revocation(other_root, bytes.fromhex(receipts[0].record_hash[2:])).call()[0]

    with pytest.raises(NotMemberError):
        client.recall(records[0]["trace_code"], "not a regulator")
    regulator = client_factory("samr")
    regulator.recall(records[0]["trace_code"], "检出非洲猪瘟病毒核酸阳性")
    from trace_sdk.protocol.hashing import trace_code_hash

    recalled, *_rest = anchor.functions.recall(trace_code_hash(records[0]["trace_code"])).call()
    assert recalled


def test_the_upload_body_carries_the_outbox_json_as_it_is(
    sample_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    # The body splices each record's canonical JSON and its salts' JSON from the outbox into one document:
    # read back, it is the payload of parsed records and salts that it replaces (no chain or service needed).
    records = fresh(sample_records, "body")
    records[0]["extensions"] = {"tiny": 1e-7, "huge": 1e21, "whole": -18.0, "text": "a\u2028é\"\\/b"}
    client = AgencyClient("http://127.0.0.1:9", "http://127.0.0.1:9", "0x" + "11" * 32,
                          outbox_path=tmp_path / "outbox.sqlite3")
    bodies: list[bytes] = []

    def upload_batch(body: bytes) -> dict[str, Any]:
        bodies.append(body)
        items = json.loads(body)["records"]
        return {"certificates": [{"record_id": i["record"]["record_id"], "certificate_id": "C"} for i in items]}

    try:
        client._service.upload_batch = upload_batch  # type: ignore[method-assign]
        errors, conflicts, accepted = client._screen(records)
        assert not errors and not conflicts
        client._seal([candidate for candidate, _known in accepted])
        (batch,) = client.outbox.undelivered_batches(client.address)
        client._upload(batch)
        proofs = client._tree(batch).proofs()
        expected = {
            "root": batch.root,
            "records": [
                {"record": json.loads(r.canonical), "salts": r.salts, "leaf_index": r.leaf_index,
                 "proof": ["0x" + p.hex() for p in proofs[r.leaf_index]]}
                for r in client.outbox.batch_records(batch.id)
            ],
        }
        assert len(bodies) == 1
        assert json.loads(bodies[0]) == expected
        assert json.dumps(json.loads(bodies[0])) == json.dumps(expected)  # key order and number types too
        assert client.outbox.pending(client.address) == []
    finally:
        client.close()
