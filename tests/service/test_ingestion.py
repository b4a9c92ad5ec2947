"""POST /api/v1/batches: what the service accepts from an agency and everything it refuses (nothing partial)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select
from web3 import Web3

from certificate_service.api.routes.ingest import _json_response, parse_json_body
from certificate_service.core.config import Settings
from certificate_service.db.models import Certificate, LotLink, Record
from certificate_service.errors import BadRequest
from certificate_service.main import create_app
from certificate_service.services.ingestion import IngestResult
from tests.support.service import write_deployment
from trace_sdk.client.contracts import load_artifact
from trace_sdk.client.service_api import signed_headers
from trace_sdk.protocol.hashing import flatten_fields, hash_record, leaf_hash, new_salts
from trace_sdk.protocol.merkle import MerkleTree
from trace_sdk.protocol.request_signing import request_message


@pytest.fixture
def api(database_url: str, consortium: Any, tmp_path: Path) -> Iterator[TestClient]:
    data_dir = tmp_path / "data"
    write_deployment(data_dir, consortium.deployment, consortium.rpc_url)
    settings = Settings(DATA_DIR=data_dir, DATABASE_URL=database_url, RPC_URL=consortium.rpc_url)
    with TestClient(create_app(settings, run_indexer=False)) as client:
        yield client


def _count(database_url: str, model: Any, **where: Any) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            query = select(func.count()).select_from(model)
            for column, value in where.items():
                query = query.where(getattr(model, column) == value)
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


class Batch:
    """Records hashed and anchored on chain by one agency, ready to upload."""

    def __init__(self, consortium: Any, agency: str, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.salts = [new_salts(flatten_fields(r)) for r in records]
        self.hashes = [hash_record(r, s).record_hash for r, s in zip(records, self.salts, strict=True)]
        self.tree = MerkleTree([leaf_hash(h) for h in self.hashes])
        self.root = "0x" + self.tree.root.hex()
        w3 = Web3(Web3.HTTPProvider(consortium.rpc_url))
        anchor = w3.eth.contract(address=consortium.deployment.anchor, abi=load_artifact("TraceAnchor")["abi"])
        account = Account.from_key(consortium.keys[agency])
        tx = anchor.functions.anchorBatch(self.tree.root, len(records), 1).build_transaction({
            "from": account.address, "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        })
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        )
        assert receipt["status"] == 1

    def payload(self, indexes: list[int] | None = None) -> dict[str, Any]:
        chosen = range(len(self.records)) if indexes is None else indexes
        return {
            "root": self.root,
            "records": [
                {"record": self.records[i], "salts": self.salts[i], "leaf_index": i,
                 "proof": ["0x" + p.hex() for p in self.tree.proof(i)]}
                for i in chosen
            ],
        }


def _post(api: TestClient, key: str | None, payload: Any, *, headers: dict[str, str] | None = None) -> Any:
    body = json.dumps(payload, ensure_ascii=False).encode() if not isinstance(payload, bytes) else payload
    signed = signed_headers(Account.from_key(key), "POST", "/api/v1/batches", body) if key else {}
    return api.post("/api/v1/batches", content=body,
                    headers={"Content-Type": "application/json", **signed, **(headers or {})})


@pytest.fixture
def records(sample_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tag = f"ing{time.monotonic_ns()}"
    chosen = copy.deepcopy(sample_records[:4])
    for record in chosen:
        record["record_id"] = f"{tag}-{record['record_id']}"
    return chosen


def test_accepts_an_anchored_batch_once_and_a_replay_changes_nothing(
    api: TestClient, consortium: Any, database_url: str, records: list[dict[str, Any]]
) -> None:
    batch = Batch(consortium, "customs", records)
    first = _post(api, consortium.keys["customs"], batch.payload())
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["root"] == batch.root and body["accepted"] == 4 and body["already_present"] == 0
    assert [c["record_id"] for c in body["certificates"]] == [r["record_id"] for r in records]
    assert _count(database_url, Record) == 4 and _count(database_url, Certificate) == 4
    links = sum(len(r.get("inputs", [])) + len(r.get("outputs", [])) for r in records)
    assert _count(database_url, LotLink) == links

    replay = _post(api, consortium.keys["customs"], batch.payload())
    assert replay.status_code == 200
    assert replay.json()["accepted"] == 0 and replay.json()["already_present"] == 4
    assert replay.json()["certificates"] == body["certificates"]
    assert _count(database_url, Record) == 4 and _count(database_url, Certificate) == 4


def test_refuses_a_root_anchored_by_another_member(
    api: TestClient, consortium: Any, database_url: str, records: list[dict[str, Any]]
) -> None:
    batch = Batch(consortium, "customs", records)
    response = _post(api, consortium.keys["agri"], batch.payload())
    assert response.status_code == 403
    assert "anchored by another member" in response.json()["message"]
    assert _count(database_url, Record) == 0


def test_refuses_a_signer_who_is_not_a_member(
    api: TestClient, consortium: Any, database_url: str, records: list[dict[str, Any]]
) -> None:
    batch = Batch(consortium, "customs", records)
    response = _post(api, consortium.keys["outsider"], batch.payload())
    assert response.status_code == 403 and "not an active member" in response.json()["message"]
    assert _count(database_url, Record) == 0


def test_refuses_unsigned_forged_and_stale_requests(
    api: TestClient, consortium: Any, database_url: str, records: list[dict[str, Any]]
) -> None:
    batch = Batch(consortium, "customs", records)
    body = json.dumps(batch.payload()).encode()
    assert _post(api, None, body).status_code == 401

    customs = Account.from_key(consortium.keys["customs"])
    forged = signed_headers(Account.from_key(consortium.keys["agri"]), "POST", "/api/v1/batches", body)
    forged["X-TraceChain-Address"] = customs.address  # claims to be customs, signed by agri
    response = _post(api, None, body, headers=forged)
    assert response.status_code == 401 and "does not match" in response.json()["message"]

    stale_time = int(time.time()) - 3600
    message = request_message("POST", "/api/v1/batches", stale_time, body)
    signature = Account.sign_message(encode_defunct(text=message), customs.key).signature.to_0x_hex()
    stale = {"X-TraceChain-Address": customs.address, "X-TraceChain-Timestamp": str(stale_time),
             "X-TraceChain-Signature": signature}
    response = _post(api, None, body, headers=stale)
    assert response.status_code == 401 and "timestamp" in response.json()["message"]

    tampered = signed_headers(customs, "POST", "/api/v1/batches", body)
    response = _post(api, None, body.replace(b'"leaf_index": 0', b'"leaf_index": 1'), headers=tampered)
    assert response.status_code == 401  # the signature covers the body
    assert _count(database_url, Record) == 0


def test_refuses_an_unknown_root(
    api: TestClient, consortium: Any, database_url: str, records: list[dict[str, Any]]
) -> None:
    batch = Batch(consortium, "customs", records)
    payload = batch.payload()
    payload["root"] = "0x" + "11" * 32
    response = _post(api, consortium.keys["customs"], payload)
    assert response.status_code == 404 and "not anchored" in response.json()["message"]


def test_a_record_that_does_not_match_its_leaf_rejects_the_whole_request(
    api: TestClient, consortium: Any, database_url: str, records: list[dict[str, Any]]
) -> None:
    batch = Batch(consortium, "customs", records)
    payload = batch.payload()
    payload["records"][2]["record"] = copy.deepcopy(payload["records"][2]["record"])
    payload["records"][2]["record"]["product"]["lot"] = "LOT-CHANGED"
    payload["records"][3]["proof"] = payload["records"][1]["proof"]
    response = _post(api, consortium.keys["customs"], payload)
    assert response.status_code == 422
    problems = {(e["index"], e["path"]) for e in response.json()["errors"]}
    assert problems == {(2, "proof"), (3, "proof")}
    assert _count(database_url, Record) == 0  # the two sound records were not stored either


def test_invalid_records_and_malformed_bodies_are_4xx_with_the_reason(
    api: TestClient, consortium: Any, database_url: str, records: list[dict[str, Any]]
) -> None:
    batch = Batch(consortium, "customs", records)
    payload = batch.payload()
    payload["records"][0]["record"] = dict(payload["records"][0]["record"], event_time="yesterday")
    payload["records"][1]["salts"] = {}
    response = _post(api, consortium.keys["customs"], payload)
    assert response.status_code == 422
    located = {(e["index"], e["path"]) for e in response.json()["errors"]}
    assert (0, "event_time") in located and (1, "salts") in located

    assert _post(api, consortium.keys["customs"], b"{not json").status_code == 400
    assert _post(api, consortium.keys["customs"], {"root": "0x12", "records": []}).status_code == 400
    assert _post(api, consortium.keys["customs"], [1, 2]).status_code == 400
    assert _count(database_url, Record) == 0


def test_the_same_record_id_with_other_content_is_a_conflict(
    api: TestClient, consortium: Any, database_url: str, records: list[dict[str, Any]]
) -> None:
    first = Batch(consortium, "customs", records[:1])
    assert _post(api, consortium.keys["customs"], first.payload()).status_code == 200
    changed = copy.deepcopy(records[:1])
    changed[0]["product"]["quantity"] = 99
    second = Batch(consortium, "customs", changed)
    response = _post(api, consortium.keys["customs"], second.payload())
    assert response.status_code == 409
    assert response.json()["record_id"] == records[0]["record_id"]
    assert _count(database_url, Record, record_id=records[0]["record_id"]) == 1


@pytest.mark.parametrize("timestamp", ["\u00b2", "9" * 400, "1" * 5000, "-5", "12.5"])
def test_a_garbage_timestamp_header_is_401_not_500(
    api: TestClient, consortium: Any, timestamp: str
) -> None:
    customs = Account.from_key(consortium.keys["customs"])
    headers = {
        "X-TraceChain-Address": customs.address,
        "X-TraceChain-Timestamp": timestamp.encode("latin-1"),  # header bytes, as a raw client may send them
        "X-TraceChain-Signature": "0x" + "00" * 65,
        "Content-Type": "application/json",
    }
    response = api.post("/api/v1/batches", content=b"{}", headers=headers)
    assert response.status_code == 401
    assert "unix time" in response.json()["message"]


def test_a_streamed_body_over_the_limit_is_413(database_url: str, consortium: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "limited"
    write_deployment(data_dir, consortium.deployment, consortium.rpc_url)
    settings = Settings(DATA_DIR=data_dir, DATABASE_URL=database_url, RPC_URL=consortium.rpc_url, MAX_BODY_BYTES=4096)

    def chunks(total: int, boundary: bytes | None = None) -> Iterator[bytes]:
        if boundary:
            yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
        for _ in range(total // 1024):
            yield b"x" * 1024  # no Content-Length: the client streams it chunked

    with TestClient(create_app(settings, run_indexer=False)) as client:
        raw = client.post("/api/v1/batches", content=chunks(64 * 1024), headers={"Content-Type": "application/json"})
        assert raw.status_code == 413 and raw.json()["error"] == "payload_too_large"
        upload = client.post(
            "/api/v1/verify", content=chunks(6 * 1024 * 1024, b"xyz"),
            headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        )
        assert upload.status_code == 413 and upload.json()["error"] == "payload_too_large"


# ------------------------------------------------------------------------------------------- body and answer
# The route reads the body with orjson and writes the answer with orjson where that is exactly what
# json.loads and JSONResponse give; these tests hold it to them.


def _same(a: Any, b: Any) -> bool:
    """Equal with the same types and key order all the way down (1 == 1.0 is not enough here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b or (a != a and b != b)  # NaN


def _reads_like_json_loads(body: bytes) -> None:
    try:
        expected: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        with pytest.raises(BadRequest) as refused:
            parse_json_body(body)
        assert refused.value.message == f"body is not valid JSON: {exc}"
        return
    assert _same(parse_json_body(body), expected)


_json_scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70) | st.floats()
    | st.text(max_size=8) | st.sampled_from(["e+", "1e+20", "+08:00", "x\ud800"])
)
_json_documents = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=1500, deadline=None)
@given(_json_documents, st.booleans(), st.sampled_from([None, 1]))
def test_the_body_is_read_as_json_loads_reads_it(value: Any, ascii_only: bool, indent: int | None) -> None:
    _reads_like_json_loads(json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("body", [
    b"18446744073709551615", b"18446744073709551616", b"-9223372036854775808", b"-9223372036854775809",
    b'{"q": 100000000000000000000, "r": [1e20, 2.5]}', b'{"a": 1, "a": 2, "b": 3}', b"NaN", b"[Infinity]",
    b"1e400", b'"\\ud800"', b'"\xed\xa0\x80"', b"\xef\xbb\xbf{}", b"{not json", b"", b" ", b"[1,]", b'"\x01"',
    b"\xff", "\"€\"".encode("utf-16"), b"[" * 300 + b"]" * 300, b'{"note": "e+1"}', b"-0", b"-0.0",
])
def test_edge_bodies_are_read_as_json_loads_reads_them(body: bytes) -> None:
    _reads_like_json_loads(body)


@settings(max_examples=1000, deadline=None)
@given(st.floats(min_value=2.0**63, allow_infinity=False))
def test_orjson_writes_every_float_from_a_64_bit_overflow_with_an_exponent(number: float) -> None:
    # The premise of parse_json_body: orjson reads integers beyond 64 bits as such floats (json.loads: ints).
    assert b"e+" in orjson.dumps(number) and b"e+" in orjson.dumps(-number)


def test_the_answer_is_written_as_json_response_writes_it() -> None:
    result = IngestResult(
        root="0x" + "ab" * 32, accepted=2, already_present=1,
        certificates=[{"record_id": f"R-{i}:x.y", "record_hash": "0x" + f"{i:02x}" * 32,
                       "certificate_id": "7K2M9QX4HRPW3NV8YJ0C"} for i in range(3)],
    )
    response = _json_response(result)
    reference = JSONResponse(result.as_json())
    assert response.body == reference.body
    assert response.headers["content-type"] == reference.headers["content-type"]
