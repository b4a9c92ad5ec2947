"""Certificates end to end: real Anvil, real service over HTTP, records submitted through AgencyClient."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from io import BytesIO
from typing import Any

import pytest
from sqlalchemy import select

from certificate_service.db.models import Certificate, CertificateFile
from certificate_service.services import certificates as certificate_service
from certificate_service.services.certificates import certificate_hash, embedded_payload
from tests.service import certificates_fixtures
from tests.service.certificates_fixtures import (
    AGENCY_CODE,
    AGENCY_NAME,
    ENTERPRISE_A,
    ENTERPRISE_B,
    ISSUER_CODE,
    ISSUER_NAME,
    CertWorld,
    make_record,
)
from trace_sdk.protocol.canonical import canonicalize
from trace_sdk.protocol.certificate_ids import certificate_id_for
from trace_sdk.protocol.hashing import keccak256, leaf_hash, record_hash_from_disclosure, to_hex
from trace_sdk.protocol.merkle import verify_proof
from trace_sdk.verifier import read_certificate_pdf

# The suite's fixtures, imported explicitly (tests/service/conftest.py belongs to the database suite).
cert_world = certificates_fixtures.cert_world
cert_world_factory = certificates_fixtures.cert_world_factory

DEFAULT_VARIANT = "contact.person,contact.phone,extensions.line_no,extensions.shift"


def _pdf(world: CertWorld, certificate_id: str, hide: str | None = None, who: Any = ENTERPRISE_A) -> Any:
    params = {"hide": hide} if hide is not None else None
    return world.http.get(f"/api/v1/certificates/{certificate_id}/pdf", params=params, headers=world.auth(who))


def _payload(world: CertWorld, certificate_id: str, hide: str | None = None) -> dict[str, Any]:
    params = {"hide": hide} if hide is not None else None
    response = world.http.get(
        f"/api/v1/certificates/{certificate_id}/payload", params=params, headers=world.auth(ENTERPRISE_A)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-certificate-hash"] == response.json()["certificate_hash"]
    return dict(response.json())


def _files(world: CertWorld, certificate_id: str) -> list[CertificateFile]:
    with world.sessions() as session:
        query = select(CertificateFile).where(CertificateFile.certificate_id == certificate_id)
        return list(session.scalars(query.order_by(CertificateFile.id)))


def _assert_verifies(payload: dict[str, Any]) -> None:
    """The disclosed record, its salts and the hidden fields' hashes rebuild the anchored record hash."""
    hidden = {path: bytes.fromhex(h[2:]) for path, h in payload["hidden_fields"].items()}
    record_hash = record_hash_from_disclosure(payload["record"], payload["salts"], hidden)
    assert to_hex(record_hash) == payload["record_hash"]
    assert certificate_id_for(record_hash) == payload["certificate_id"]
    assert payload["merkle"]["leaf"] == to_hex(leaf_hash(record_hash))
    proof = [bytes.fromhex(p[2:]) for p in payload["merkle"]["proof"]]
    assert verify_proof(leaf_hash(record_hash), proof, bytes.fromhex(payload["merkle"]["root"][2:]))
    body = {k: v for k, v in payload.items() if k != "certificate_hash"}
    assert payload["certificate_hash"] == to_hex(keccak256(canonicalize(body))) == certificate_hash(payload)


def test_pdf_is_made_once_stored_and_served_from_the_database(cert_world: CertWorld) -> None:
    world = cert_world
    [receipt] = world.submit([make_record("pdf-1", "A-LOT-1001")])
    world.index()

    first = _pdf(world, receipt.certificate_id)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/pdf"
    assert first.headers["content-disposition"] == f'attachment; filename="{receipt.certificate_id}.pdf"'
    assert first.content.startswith(b"%PDF-")
    second = _pdf(world, receipt.certificate_id.lower())  # ids are read case-insensitively
    assert second.status_code == 200
    assert second.content == first.content

    sha = hashlib.sha256(first.content).hexdigest()
    assert first.headers["x-pdf-sha256"] == second.headers["x-pdf-sha256"] == sha
    [row] = _files(world, receipt.certificate_id)
    assert row.variant == DEFAULT_VARIANT
    assert row.pdf_sha256 == sha
    assert row.certificate_hash == first.headers["x-certificate-hash"]

    # The signed PDF carries its payload, whose hash is the stored certificate hash.
    attached = json.loads(embedded_payload(first.content))
    assert attached["certificate_hash"] == row.certificate_hash
    _assert_verifies(attached)
    from pyhanko.pdf_utils.reader import PdfFileReader

    [signature] = PdfFileReader(BytesIO(first.content)).embedded_signatures
    assert signature.field_name == "TraceChainIssuerSignature"


def test_payload_discloses_a_verifiable_record_with_chain_facts(cert_world: CertWorld) -> None:
    world = cert_world
    records = [
        make_record("pay-1", "A-LOT-2001", event_time="2026-03-01T08:30:00+08:00"),
        make_record("pay-2", "A-LOT-2002", event_time="2026-03-02T08:30:00+08:00",
                    inputs=["A-LOT-2001", "IMPORT-LOT-9"]),
        make_record("pay-3", "A-LOT-2003", event_time="2026-03-03T08:30:00+08:00", inputs=["A-LOT-2002"]),
    ]
    receipts = world.submit(records)
    world.index()
    receipt = receipts[2]

    payload = _payload(world, receipt.certificate_id)
    assert payload["type"] == "tracechain-certificate/v1"
    assert payload["certificate_id"] == receipt.certificate_id
    assert payload["record_hash"] == receipt.record_hash
    assert payload["merkle"]["root"] == receipt.merkle_root
    _assert_verifies(payload)

    # Personal data and extensions are never disclosed, only their field hashes.
    assert "contact" not in payload["record"] and "extensions" not in payload["record"]
    assert set(payload["hidden_fields"]) == set(DEFAULT_VARIANT.split(","))
    assert not [p for p in payload["salts"] if p.startswith(("contact", "extensions"))]
    assert payload["record"]["counterparty"] == records[2]["counterparty"]

    with world.sessions() as session:
        issued_at = session.get(Certificate, receipt.certificate_id).issued_at  # type: ignore[union-attr]
    assert datetime.fromisoformat(payload["issued_at"]) == issued_at.replace(microsecond=0)

    anchor = payload["anchor"]
    block = world.w3.eth.get_block(receipt.block_number)  # type: ignore[arg-type]
    assert anchor["tx_hash"] == receipt.tx_hash
    assert anchor["block_number"] == receipt.block_number
    assert datetime.fromisoformat(anchor["block_time"]).timestamp() == block["timestamp"]
    assert anchor["chain_id"] == world.w3.eth.chain_id
    assert anchor["contracts"] == {
        "ConsortiumRegistry": world.deployment.registry,
        "TraceAnchor": world.deployment.anchor,
    }
    assert anchor["agency"] == {"name": AGENCY_NAME, "code": AGENCY_CODE, "address": world.address("agency")}
    assert payload["issuer"] == {
        "name": ISSUER_NAME,
        "code": ISSUER_CODE,
        "address": world.address("issuer"),
        "certificate_fingerprint_sha256": world.fingerprint,
    }
    assert payload["lineage"] == {"upstream_trace_codes": ["A-LOT-2001", "A-LOT-2002", "IMPORT-LOT-9"]}
    assert _payload(world, receipts[0].certificate_id)["lineage"] == {"upstream_trace_codes": []}

    # The payload endpoint answers with exactly the bytes signed into the PDF of the same variant.
    pdf = _pdf(world, receipt.certificate_id)
    assert json.loads(embedded_payload(pdf.content)) == payload
    assert len(_files(world, receipt.certificate_id)) == 1


def test_hide_variants_are_separate_verifiable_files(cert_world: CertWorld) -> None:
    world = cert_world
    [receipt] = world.submit([make_record("hide-1", "A-LOT-3001")])
    world.index()
    cid = receipt.certificate_id

    base = _payload(world, cid)
    hidden = _payload(world, cid, "counterparty,location")
    assert "counterparty" not in hidden["record"] and "location" not in hidden["record"]
    assert "contact" not in hidden["record"]
    assert set(hidden["hidden_fields"]) == set(base["hidden_fields"]) | {
        "counterparty.name", "counterparty.uscc", "location.name", "location.address", "location.region_code",
    }
    assert not [p for p in hidden["salts"] if p.startswith(("counterparty", "location"))]
    assert hidden["record_hash"] == base["record_hash"]
    assert hidden["certificate_hash"] != base["certificate_hash"]
    _assert_verifies(hidden)

    # Order, repetition, spacing and repeated parameters name the same variant (no new file).
    again = world.http.get(
        f"/api/v1/certificates/{cid}/pdf",
        params=[("hide", " location , counterparty"), ("hide", "location")],
        headers=world.auth(ENTERPRISE_A),
    )
    assert again.status_code == 200
    assert again.headers["x-certificate-hash"] == hidden["certificate_hash"]
    assert _payload(world, cid, "contact")["certificate_hash"] == base["certificate_hash"]
    # A schema field the record does not hold hides nothing.
    assert _payload(world, cid, "cold_chain")["certificate_hash"] == base["certificate_hash"]

    dotted = _payload(world, cid, "documents.1.number,product.quantity")
    assert "number" not in dotted["record"]["documents"][1]
    assert dotted["record"]["documents"][0]["number"] == "QC-hide-1"
    assert "quantity" not in dotted["record"]["product"]
    _assert_verifies(dotted)

    item = _payload(world, cid, "documents.0")
    assert item["record"]["documents"][0] is None  # placeholder keeps the other item's index
    assert item["record"]["documents"][1]["number"] == "IR-hide-1"
    _assert_verifies(item)

    variants = {row.variant for row in _files(world, cid)}
    assert variants == {
        DEFAULT_VARIANT,
        ",".join(sorted([*DEFAULT_VARIANT.split(","), "counterparty.name", "counterparty.uscc",
                         "location.address", "location.name", "location.region_code"])),
        ",".join(sorted([*DEFAULT_VARIANT.split(","), "documents.1.number", "product.quantity"])),
        ",".join(sorted([*DEFAULT_VARIANT.split(","), "documents.0.number", "documents.0.result",
                         "documents.0.type"])),
    }
    assert len(_files(world, cid)) == 4


BAD_HIDES = [
    ("colour", ["colour"]),
    ("counterparty,product.colour,weight", ["product.colour", "weight"]),
    ("documents.first", ["documents.first"]),
    ("trace_code.x", ["trace_code.x"]),
    ("record_id", ["record_id"]),
    ("trace_code", ["trace_code"]),
    ("schema", ["schema"]),
    ("enterprise.uscc", ["enterprise.uscc"]),
    ("location,enterprise", ["enterprise"]),
    ("product..name", ["product..name"]),
]


def test_bad_hide_names_are_refused_naming_them(cert_world: CertWorld) -> None:
    world = cert_world
    [receipt] = world.submit([make_record("bad-hide-1", "A-LOT-4001")])
    for hide, named in BAD_HIDES:
        for endpoint in ("pdf", "payload"):
            response = world.http.get(
                f"/api/v1/certificates/{receipt.certificate_id}/{endpoint}",
                params={"hide": hide},
                headers=world.auth(ENTERPRISE_A),
            )
            assert response.status_code == 400, (hide, response.text)
            body = response.json()
            assert body["error"] == "bad_request"
            assert body["fields"] == named, hide
            for name in named:
                assert name in body["message"]
    assert _files(world, receipt.certificate_id) == []


def test_list_is_paginated_and_filtered_by_trace_code_and_event_date(cert_world: CertWorld) -> None:
    world = cert_world
    a_records = [
        make_record(f"list-{day}", f"A-LOT-50{day:02d}", event_time=f"2026-03-{day:02d}T08:30:00+08:00")
        for day in range(1, 6)
    ]
    # 00:30 in Shanghai on 3 March is still 2 March in UTC: the filters use the record's own date.
    a_records.append(make_record("list-early", "A-LOT-5099", event_time="2026-03-03T00:30:00+08:00"))
    b_records = [
        make_record(f"list-b{day}", f"B-LOT-50{day:02d}", ENTERPRISE_B, event_time=f"2026-03-0{day}T09:00:00+08:00")
        for day in (1, 2)
    ]
    receipts = world.submit(a_records + b_records)
    by_id = {r.record_id: r for r in receipts}

    def listing(who: Any = ENTERPRISE_A, **params: Any) -> Any:
        return world.http.get("/api/v1/certificates", params=params, headers=world.auth(who))

    everything = listing()
    assert everything.status_code == 200, everything.text
    body = everything.json()
    assert body["count"] == 6
    assert [c["record_id"] for c in body["data"]] == [
        "list-5", "list-4", "list-3", "list-early", "list-2", "list-1"
    ]
    first = body["data"][-1]
    assert first == {
        "certificate_id": by_id["list-1"].certificate_id,
        "record_id": "list-1",
        "trace_code": "A-LOT-5001",
        "product_name": "冷鲜猪肉",
        "lot": "LOT-list-1",
        "event_time": "2026-03-01T08:30:00+08:00",
        "biz_step": "processing",
        "issued_at": first["issued_at"],
    }
    assert datetime.fromisoformat(first["issued_at"].replace("Z", "+00:00")).tzinfo is not None

    pages = [listing(limit=4, offset=offset).json() for offset in (0, 4, 8)]
    assert [len(p["data"]) for p in pages] == [4, 2, 0]
    assert all(p["count"] == 6 for p in pages)
    assert [c["record_id"] for p in pages for c in p["data"]] == [c["record_id"] for c in body["data"]]

    only = listing(trace_code="A-LOT-5002").json()
    assert only["count"] == 1 and only["data"][0]["record_id"] == "list-2"
    assert listing(trace_code="B-LOT-5001").json() == {"data": [], "count": 0}

    day = listing(**{"from": "2026-03-03", "to": "2026-03-03"}).json()
    assert {c["record_id"] for c in day["data"]} == {"list-3", "list-early"} and day["count"] == 2
    assert listing(**{"from": "2026-03-04"}).json()["count"] == 2
    assert listing(to="2026-03-02").json()["count"] == 2
    assert listing(to="2026-03-02", limit=1, offset=1).json()["data"][0]["record_id"] == "list-1"

    assert listing(who=ENTERPRISE_B).json()["count"] == 2
    for params in ({"limit": 201}, {"limit": 0}, {"offset": -1}, {"from": "03/01/2026"}):
        assert listing(**params).status_code == 422, params
    reversed_range = listing(**{"from": "2026-03-05", "to": "2026-03-01"})
    assert reversed_range.status_code == 400 and "after" in reversed_range.json()["message"]


def test_chain_facts_come_from_the_chain_until_the_indexer_caught_up(cert_world: CertWorld) -> None:
    world = cert_world
    [receipt] = world.submit([make_record("lag-1", "A-LOT-6001")])
    # Nothing indexed: the batch, the agency and the issuer are read from the chain itself.
    from_chain = _payload(world, receipt.certificate_id, "location")
    assert from_chain["anchor"]["tx_hash"] == receipt.tx_hash
    assert from_chain["anchor"]["block_number"] == receipt.block_number
    assert from_chain["anchor"]["agency"]["name"] == AGENCY_NAME
    assert from_chain["issuer"]["address"] == world.address("issuer")
    _assert_verifies(from_chain)

    assert world.index() > 0
    from_tables = _payload(world, receipt.certificate_id, "counterparty")
    assert from_tables["anchor"] == from_chain["anchor"]
    assert from_tables["issuer"] == from_chain["issuer"]
    assert _payload(world, receipt.certificate_id, "location") == from_chain  # stored, unchanged


def test_an_unregistered_issuer_fingerprint_fails_closed(cert_world_factory: Any) -> None:
    world = cert_world_factory(register_issuer=False)
    [receipt] = world.submit([make_record("noissuer-1", "A-LOT-7001")])
    world.index()
    response = _pdf(world, receipt.certificate_id)
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "unavailable"
    assert world.fingerprint in body["message"] and "not registered" in body["message"]
    assert _files(world, receipt.certificate_id) == []

    world.register_issuer()
    assert _pdf(world, receipt.certificate_id).status_code == 200


def test_concurrent_first_downloads_store_one_file(cert_world: CertWorld, monkeypatch: Any) -> None:
    world = cert_world
    [receipt] = world.submit([make_record("race-1", "A-LOT-8001")])
    world.index()
    both_rendering = threading.Barrier(2)
    render = certificate_service.render_certificate

    def render_in_step(payload: dict[str, Any], verify_url: str) -> bytes:
        both_rendering.wait(timeout=60)  # both requests found no stored file before either stores one
        return render(payload, verify_url)

    monkeypatch.setattr(certificate_service, "render_certificate", render_in_step)
    monkeypatch.setattr(certificate_service._pdf_workers, "ready", lambda: None)  # both render in-process
    world.enterprise(ENTERPRISE_A)  # registered before the two requests race
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: _pdf(world, receipt.certificate_id, "location"), range(2)))
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert responses[0].content == responses[1].content
    [row] = _files(world, receipt.certificate_id)
    assert row.pdf_sha256 == hashlib.sha256(responses[0].content).hexdigest()


def test_a_revoked_record_still_gets_its_certificate(cert_world: CertWorld) -> None:
    world = cert_world
    receipts = world.submit([make_record("rev-1", "A-LOT-9001"), make_record("rev-2", "A-LOT-9002")])
    world.agency_client().revoke("rev-1", "标签错误 wrong label")
    world.index()
    response = _pdf(world, receipts[0].certificate_id)
    assert response.status_code == 200
    payload = json.loads(embedded_payload(response.content))
    assert payload["record_hash"] == receipts[0].record_hash
    _assert_verifies(payload)


def _warm_pdf_workers() -> ProcessPoolExecutor:
    """The service's PDF worker pool, started if need be and waited for until every worker answered."""
    deadline = time.monotonic() + 120
    while (pool := certificate_service._pdf_workers.ready()) is None:
        assert time.monotonic() < deadline, "the PDF workers did not start"
        time.sleep(0.05)
    return pool


def _assert_valid_certificate_pdf(world: CertWorld, pdf: bytes, certificate_id: str) -> None:
    """Signed by the service's issuer key, trusted, covering the whole file, carrying the served payload."""
    evidence = read_certificate_pdf(pdf, [world.app.state.context.pki.ca_pem])
    assert evidence.ok, evidence.problems
    assert evidence.signer_fingerprint_sha256 == world.fingerprint
    assert evidence.payload == _payload(world, certificate_id)


def test_pdfs_are_made_by_worker_processes(cert_world: CertWorld, monkeypatch: Any) -> None:
    world = cert_world
    receipts = world.submit([make_record(f"workers-{n}", f"A-LOT-95{n:02d}") for n in range(3)])
    world.index()
    _warm_pdf_workers()

    def in_process(payload: dict[str, Any], verify_url: str) -> bytes:
        raise AssertionError("rendered in the service process, not by a PDF worker")

    monkeypatch.setattr(certificate_service, "render_certificate", in_process)
    world.enterprise(ENTERPRISE_A)  # registered before the concurrent downloads
    with ThreadPoolExecutor(3) as clients:
        responses = list(clients.map(lambda r: _pdf(world, r.certificate_id), receipts))
    for receipt, response in zip(receipts, responses, strict=True):
        assert response.status_code == 200, response.text
        _assert_valid_certificate_pdf(world, response.content, receipt.certificate_id)


def test_pdfs_are_made_in_process_when_the_workers_died(cert_world: CertWorld) -> None:
    world = cert_world
    receipts = world.submit([make_record(f"died-{n}", f"A-LOT-96{n:02d}") for n in range(2)])
    world.index()
    broken = _warm_pdf_workers()
    with pytest.raises(BrokenProcessPool):
        broken.submit(os._exit, 1).result(timeout=60)  # a worker dies: the pool is broken

    first = _pdf(world, receipts[0].certificate_id)  # made in-process; a new pool starts
    assert first.status_code == 200, first.text
    _assert_valid_certificate_pdf(world, first.content, receipts[0].certificate_id)
    assert _warm_pdf_workers() is not broken
    second = _pdf(world, receipts[1].certificate_id)  # made by the new pool
    assert second.status_code == 200, second.text
    _assert_valid_certificate_pdf(world, second.content, receipts[1].certificate_id)
