"""Public verification API end to end: real Anvil, real service over HTTP, records submitted by AgencyClient."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import timedelta, timezone
from typing import Any

import httpx
from fastapi.testclient import TestClient

from certificate_service.core.config import Settings
from certificate_service.main import create_app
from certificate_service.pki import IssuerPKI
from certificate_service.repositories import certificates as certificate_repo
from certificate_service.services import verification
from certificate_service.services.verification import cached_verification
from chain_node.anvil import free_port
from tests.web.web_fixtures import (
    IMPORT_LOT,
    RETAIL_LOT,
    RETAIL_RECORD,
    UNRELATED_RECORD,
    WHOLESALE_LOT,
    WebWorld,
    appended,
    assert_private_data_absent,
    countersigned,
    flipped,
    incremental_update,
    payload_of,
    resigned,
    text_of,
    with_certificate_hash,
)
from trace_sdk.client.contracts import contract_at
from trace_sdk.client.transactions import TransactionSender
from trace_sdk.protocol.certificate_ids import certificate_id_for
from trace_sdk.protocol.hashing import from_hex, leaf_hash
from trace_sdk.protocol.merkle import MerkleTree
from trace_sdk.verifier.result import CHECK_NAMES

CHECKS = [*CHECK_NAMES, "registry_match"]
PDF = "pdf_signature"


def _check(body: dict[str, Any], name: str) -> dict[str, str]:
    """The check called ``name`` in an answer."""
    return next(c for c in body["checks"] if c["name"] == name)


def _assert_valid(response: httpx.Response, certificate_id: str) -> dict[str, Any]:
    """The answer is 200 valid for ``certificate_id`` with every check; its body."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "valid", body["checks"]
    assert body["valid"] is True
    assert [c["name"] for c in body["checks"]] == CHECKS
    assert body["certificate"]["certificate_id"] == certificate_id
    return body


def _typed(certificate_id: str) -> str:
    """How a person might type an id: lower case, dashes every five, O for 0 and l for 1."""
    grouped = "-".join(certificate_id[i : i + 5] for i in range(0, 20, 5)).lower()
    return grouped.replace("0", "o").replace("1", "l")


def test_lookup_by_id_hashes_and_pdf_sha256(web_world: WebWorld) -> None:
    world = web_world
    record_id = RETAIL_RECORD
    certificate_id = world.certificate_id(record_id)
    receipt = world.receipts[record_id]

    # Before any PDF exists the default variant is built in memory, the way the service would sign it.
    before = _assert_valid(world.verify(certificate_id), certificate_id)
    assert _check(before, "pdf_signature")["status"] == "skipped"

    pdf = world.pdf(record_id)
    payload = payload_of(pdf)
    pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    assert before["certificate"]["certificate_hash"] == payload["certificate_hash"]

    for query in (
        certificate_id,
        certificate_id.lower(),
        _typed(certificate_id),
        payload["certificate_hash"],
        payload["certificate_hash"].upper().replace("0X", "0x"),
        receipt.record_hash,
        pdf_sha256,
        "0x" + pdf_sha256,
    ):
        body = _assert_valid(world.verify(query), certificate_id)
        assert body["certificate"]["certificate_hash"] == payload["certificate_hash"], query
        assert body["certificate"]["record_hash"] == receipt.record_hash
        assert body["certificate"]["trace_code"] == RETAIL_LOT

    anchor = body["anchor"]
    assert anchor["tx_hash"] == receipt.tx_hash
    assert anchor["block_number"] == receipt.block_number
    assert anchor["agency"]["address"] == world.world.address("agency")
    assert set(anchor) >= {"tx_hash", "block_number", "block_time", "agency"}
    record = body["certificate"]["record"]
    assert record["product"]["name"] == world.records[record_id]["product"]["name"]
    assert record["enterprise"]["name"] == "联华超市股份有限公司"
    assert body["certificate"]["hidden_fields"] == ["contact", "extensions"]
    # Upstream lots of the current lot-link graph are checked for recalls.
    assert "2 个上游批次" in _check(body, "not_recalled")["message"]

    # A stored variant hiding more is found by its own certificate hash and shows only what it discloses.
    hidden_pdf = world.pdf(record_id, hide="counterparty")
    hidden = _assert_valid(world.verify(payload_of(hidden_pdf)["certificate_hash"]), certificate_id)
    assert "counterparty" not in hidden["certificate"]["record"]
    assert hidden["certificate"]["hidden_fields"] == ["contact", "counterparty", "extensions"]
    assert world.verify(certificate_id).json()["certificate"]["certificate_hash"] == payload["certificate_hash"]


def test_unknown_is_404_and_malformed_is_400(web_world: WebWorld) -> None:
    world = web_world
    unknown_id = certificate_id_for(secrets.token_bytes(32))
    for query in (unknown_id, "0x" + secrets.token_hex(32), secrets.token_hex(32)):
        response = world.verify(query)
        assert response.status_code == 404, response.text
        body = response.json()
        assert body["status"] == "not_found" and body["valid"] is False
        assert set(body) >= {"valid", "status", "checks", "certificate", "anchor", "verification"}
        assert body["verification"] is None
    assert world.verify(unknown_id).json()["certificate"]["certificate_id"] == unknown_id
    # Crockford ids may begin with "0X": still an id, never a malformed hash.
    hex_like = next(i for i in (certificate_id_for(secrets.token_bytes(32)) for _ in range(100_000)) if i[:2] == "0X")
    assert world.verify(hex_like).status_code == 404
    assert world.verify(hex_like.lower()).json()["certificate"]["certificate_id"] == hex_like

    for query in ("hello", "0x1234", "0x" + "zz" * 32, "A" * 19, "A" * 21, "U" * 20, "x" * 300):
        response = world.verify(query)
        assert response.status_code in (400, 422), (query, response.text)
        assert response.headers["content-type"].startswith("application/json")
    assert world.http.get("/api/v1/verify/%20").status_code in (400, 404, 422)


def test_genuine_upload_is_valid_and_every_tampered_file_invalid(web_world: WebWorld, tmp_path: Any) -> None:
    world = web_world
    record_id = RETAIL_RECORD
    certificate_id = world.certificate_id(record_id)
    pdf = world.pdf(record_id)
    payload = payload_of(pdf)
    genuine_key = world.issuer_pki()
    stranger = IssuerPKI.load_or_create(tmp_path / "stranger", organisation="某某伪造中心")

    body = _assert_valid(world.upload(pdf), certificate_id)
    assert _check(body, "pdf_signature")["status"] == "valid"
    assert _check(body, "registry_match")["status"] == "valid"

    other = payload_of(world.pdf(UNRELATED_RECORD))
    edited = _renamed(payload)
    recomputed = _recomputed_forgery(payload)
    foreign_proof = other["merkle"]["proof"] or [other["record_hash"]]
    wrong_proof = {**payload, "merkle": {**payload["merkle"], "proof": foreign_proof}}
    salt_path = sorted(payload["salts"])[0]
    wrong_salt = {**payload, "salts": {**payload["salts"], salt_path: "0x" + secrets.token_hex(32)}}
    revealed = _revealed_wrong_value(payload)
    backdated = {**payload, "issued_at": "2020-01-01T00:00:00+08:00"}
    no_lineage = {**payload, "lineage": {"upstream_trace_codes": []}}

    def sealed(forged: dict[str, Any]) -> bytes:
        """The payload with its certificate hash recomputed, signed with the service's genuine key."""
        return resigned(with_certificate_hash(forged), genuine_key)

    corpus: list[tuple[str, bytes, list[str]]] = [
        *[(f"flip@{at}", data, []) for at, data in flipped(pdf)],
        ("appended bytes", appended(pdf), ["pdf_signature"]),
        ("incremental update", incremental_update(pdf), ["pdf_signature"]),
        ("second signature", countersigned(pdf, stranger), ["pdf_signature"]),
        ("field edited, hashes kept, genuine key", resigned(edited, genuine_key), ["payload_integrity"]),
        ("field edited, hashes recomputed, unknown key", resigned(recomputed, stranger), ["merkle_proof", PDF]),
        ("proof of another certificate", sealed(wrong_proof), ["merkle_proof"]),
        ("salt changed", sealed(wrong_salt), ["payload_integrity"]),
        ("hidden field revealed wrongly", sealed(revealed), ["payload_integrity"]),
        ("issue date changed, genuine key", sealed(backdated), []),
        ("lineage dropped, genuine key", sealed(no_lineage), []),
        ("not a PDF", b"%PDF-1.7\n" + secrets.token_bytes(2048), ["payload_integrity"]),
    ]
    for name, data, failing in corpus:
        response = world.upload(data)
        assert response.status_code == 200, (name, response.text)
        body = response.json()
        assert body["status"] == "invalid" and body["valid"] is False, (name, body["checks"])
        statuses = {c["name"]: c["status"] for c in body["checks"]}
        assert statuses["registry_match"] == "invalid", name
        for check in failing:
            assert statuses[check] == "invalid", (name, check, body["checks"])
        assert_private_data_absent(world, text_of(response), allowed_usccs=[world.enterprise_of(record_id)[0]])

    # Files the registry knows nothing about say so; payloads that disagree name what differs.
    forged = world.upload(sealed(backdated)).json()
    assert "签发时间与登记不符" in _check(forged, "registry_match")["message"]
    assert _check(forged, "payload_integrity")["status"] == "valid"
    assert _check(forged, "pdf_signature")["status"] == "valid"
    unknown = world.upload(resigned(recomputed, stranger)).json()
    assert "登记库中没有" in _check(unknown, "registry_match")["message"]
    # The genuine file still verifies afterwards.
    _assert_valid(world.upload(pdf), certificate_id)


def _renamed(payload: dict[str, Any], name: str = "有机猪肉") -> dict[str, Any]:
    """``payload`` with another product name (nothing recomputed)."""
    product = {**payload["record"]["product"], "name": name}
    return {**payload, "record": {**payload["record"], "product": product}}


def _recomputed_forgery(payload: dict[str, Any]) -> dict[str, Any]:
    """The product renamed with every hash recomputed (record hash, id, leaf, certificate hash)."""
    from trace_sdk.protocol.hashing import leaf_hash, record_hash_from_disclosure, to_hex

    forged = _renamed(payload)
    hidden = {p: bytes.fromhex(h[2:]) for p, h in payload["hidden_fields"].items()}
    record_hash = record_hash_from_disclosure(forged["record"], forged["salts"], hidden)
    forged["record_hash"] = to_hex(record_hash)
    forged["certificate_id"] = certificate_id_for(record_hash)
    forged["merkle"] = {**payload["merkle"], "leaf": to_hex(leaf_hash(record_hash))}
    assert forged["record_hash"] != payload["record_hash"]
    return with_certificate_hash(forged)


def _revealed_wrong_value(payload: dict[str, Any]) -> dict[str, Any]:
    """A hidden field (the contact's phone) disclosed with a made-up value and salt."""
    path = "contact.phone"
    assert path in payload["hidden_fields"]
    record = {**payload["record"], "contact": {"phone": "13700000000"}}
    hidden = {p: h for p, h in payload["hidden_fields"].items() if p != path}
    salts = {**payload["salts"], path: "0x" + secrets.token_hex(32)}
    return {**payload, "record": record, "hidden_fields": hidden, "salts": salts}


def test_revoked_record_shows_revoked_while_its_siblings_stay_valid(web_world_factory: Any) -> None:
    world = web_world_factory()
    batch = ["DEMO-r000014", "DEMO-r000016", "DEMO-r000018"]
    world.submit(batch)
    for record_id in batch:
        _assert_valid(world.verify(world.certificate_id(record_id)), world.certificate_id(record_id))

    revoked = world.world.agency_client().revoke("DEMO-r000016", "屠宰检疫证明录入错误")
    assert revoked["record_hash"] == world.receipts["DEMO-r000016"].record_hash
    world.world.index()

    body = world.verify(world.certificate_id("DEMO-r000016")).json()
    assert body["status"] == "revoked" and body["valid"] is False
    assert body["certificate"]["revocation"]["reason"] == "屠宰检疫证明录入错误"
    assert _check(body, "not_revoked")["status"] == "invalid"
    assert _check(body, "payload_integrity")["status"] == "valid"
    for record_id in ("DEMO-r000014", "DEMO-r000018"):
        _assert_valid(world.verify(world.certificate_id(record_id)), world.certificate_id(record_id))
    # Its PDF says the same.
    assert world.upload(world.pdf("DEMO-r000016")).json()["status"] == "revoked"


def test_another_members_revocation_under_its_own_root_does_not_revoke_the_record(web_world_factory: Any) -> None:
    """Regression: the issuer (a MEMBER) anchors a root holding the agency's public leaf and revokes it there."""
    world = web_world_factory()
    world.submit(["DEMO-r000014", "DEMO-r000016"])
    certificate_id = world.certificate_id("DEMO-r000016")
    receipt = world.receipts["DEMO-r000016"]
    record_hash = from_hex(receipt.record_hash)
    cert = world.world
    anchor = contract_at(cert.w3, "TraceAnchor", cert.deployment.anchor)
    foreign = MerkleTree([leaf_hash(record_hash), leaf_hash(secrets.token_bytes(32))])
    attacker = TransactionSender(cert.w3, cert.keys["issuer"])
    attacker.transact(anchor.functions.anchorBatch(foreign.root, 2, 1))
    attacker.transact(anchor.functions.revokeRecord(foreign.root, record_hash, foreign.proof(0), "冒名撤销"))
    cert.index()

    _assert_valid(world.verify(certificate_id), certificate_id)
    trace_code = world.records["DEMO-r000016"]["trace_code"]

    def entry() -> dict[str, Any]:
        graph = cert.agency_client().trace(trace_code, "forward")
        entries = [e for node in graph["nodes"] for e in node["records"]]
        return next(e for e in entries if e["record_hash"] == receipt.record_hash)

    assert entry()["revoked"] is False and entry()["revocation"] is None
    # The anchoring agency can still revoke it under its own root.
    cert.agency_client().revoke("DEMO-r000016", "屠宰检疫证明录入错误")
    cert.index()
    body = world.verify(certificate_id).json()
    assert body["status"] == "revoked"
    assert body["certificate"]["revocation"]["reason"] == "屠宰检疫证明录入错误"
    assert entry()["revoked"] is True and entry()["revocation"]["reason"] == "屠宰检疫证明录入错误"


def test_recall_of_an_upstream_lot_reaches_downstream_certificates(web_world_factory: Any) -> None:
    world = web_world_factory()
    # The retail sale and its wholesale lot first: its certificate PDF knows only the wholesale lot upstream.
    world.submit([RETAIL_RECORD])
    retail_pdf = world.pdf(RETAIL_RECORD)
    assert payload_of(retail_pdf)["lineage"]["upstream_trace_codes"] == [WHOLESALE_LOT]
    # Later the wholesale receipt links it to the imported lot (two hops upstream of the retail sale).
    world.submit(["DEMO-r000002", "DEMO-r000003", "DEMO-r000006", "DEMO-r000007", UNRELATED_RECORD])
    retail_id = world.certificate_id(RETAIL_RECORD)
    _assert_valid(world.verify(retail_id), retail_id)

    regulator = world.world.agency_client("regulator")
    regulator.recall(IMPORT_LOT, "进口冷冻猪肉核酸检测阳性")
    world.world.index()

    body = world.verify(retail_id).json()
    assert body["status"] == "recalled" and body["valid"] is False
    recalls = body["certificate"]["recalls"]
    assert [(r["trace_code"], r["reason"]) for r in recalls] == [(IMPORT_LOT, "进口冷冻猪肉核酸检测阳性")]
    assert recalls[0]["relation"] in ("upstream", "extra")
    assert _check(body, "not_recalled")["status"] == "invalid"
    # The stored PDF predates the link: the service's current graph still finds the recall.
    assert world.upload(retail_pdf).json()["status"] == "recalled"
    for record_id in ("DEMO-r000002", "DEMO-r000007"):
        assert world.verify(world.certificate_id(record_id)).json()["status"] == "recalled"
    _assert_valid(world.verify(world.certificate_id(UNRELATED_RECORD)), world.certificate_id(UNRELATED_RECORD))


def test_counter_counts_every_public_verification_and_warns_above_the_threshold(web_world_factory: Any) -> None:
    world = web_world_factory(warn_count=3)
    world.submit([UNRELATED_RECORD, "DEMO-r000014"])
    certificate_id = world.certificate_id(UNRELATED_RECORD)
    pdf = world.pdf(UNRELATED_RECORD)

    bodies = [
        world.verify(certificate_id).json(),
        world.verify(certificate_id.lower()).json(),
        world.verify(payload_of(pdf)["certificate_hash"]).json(),
        world.upload(pdf).json(),
        world.verify(world.receipts[UNRELATED_RECORD].record_hash).json(),
        world.http.get(f"/verify/{certificate_id}").text,
    ]
    counts = [b["verification"]["count"] for b in bodies[:5]]
    assert counts == [1, 2, 3, 4, 5]
    first = bodies[0]["verification"]["first_verified_at"]
    assert first and all(b["verification"]["first_verified_at"] == first for b in bodies[:5])
    assert ["warning" in b for b in bodies[:5]] == [False, False, False, True, True]
    assert "5 次" in bodies[4]["warning"]
    assert "防伪提示" in bodies[5] and "6 次" in bodies[5]
    assert world.verify(certificate_id).json()["verification"]["count"] == 7
    # Another certificate has its own counter; unknown ids count nothing.
    other = world.verify(world.certificate_id("DEMO-r000014")).json()
    assert other["verification"]["count"] == 1 and "warning" not in other
    assert world.verify(certificate_id_for(secrets.token_bytes(32))).json()["verification"] is None


def test_warm_lookups_are_answered_from_memory_and_counted_once_each_in_the_database(
    web_world_factory: Any, monkeypatch: Any
) -> None:
    # The defaults of a real deployment for the answer cache; counts kept in memory until the service stops.
    monkeypatch.setenv("TRACECHAIN_VERIFY_COUNT_FLUSH_S", "3600")
    world = web_world_factory(freshness_s=0.5)
    world.submit([UNRELATED_RECORD, "DEMO-r000014"])
    certificate_id = world.certificate_id(UNRELATED_RECORD)
    context = world.world.app.state.context

    assert world.verify(certificate_id).json()["verification"]["count"] == 1  # cold: database and chain
    hot = cached_verification(context=context, query=_typed(certificate_id))
    assert hot is not None and hot.status == "valid" and hot.http_status == 200
    assert hot.body["verification"]["count"] == 2
    assert cached_verification(context=context, query=certificate_id_for(secrets.token_bytes(32))) is None
    counts = [world.verify(certificate_id).json()["verification"]["count"] for _ in range(8)]
    assert counts == list(range(3, 11))
    first = world.verify(certificate_id).json()["verification"]["first_verified_at"]

    def stored() -> tuple[int, Any]:
        with world.world.sessions() as session:
            found = certificate_repo.verification_counts(session=session, certificate_ids=[certificate_id])
        return found[certificate_id]

    assert stored() == (0, None)  # nothing written yet: the flush interval is an hour
    world.world.stop_service()  # the lifespan's end writes what was counted
    count, first_at = stored()
    assert count == 11
    assert first_at is not None
    assert first_at.astimezone(timezone(timedelta(hours=8))).isoformat(timespec="seconds") == first


def test_the_fast_lane_answers_warm_lookups_exactly_as_the_route_does(web_world_factory: Any) -> None:
    world = web_world_factory(freshness_s=30)
    world.submit([UNRELATED_RECORD])
    certificate_id = world.certificate_id(UNRELATED_RECORD)
    cold = world.verify(certificate_id)  # the FastAPI route: database and chain
    assert cached_verification(context=world.world.app.state.context, query=certificate_id) is not None
    warm = world.verify(certificate_id)  # answered by VerifyFastLane from memory (count 3: one counted above)
    typed = world.verify(_typed(certificate_id))
    for response in (warm, typed):
        assert response.status_code == cold.status_code == 200
        for header in ("content-type", "cache-control"):
            assert response.headers[header] == cold.headers[header]
        assert response.headers["content-length"] == str(len(response.content))
        body, reference = response.json(), cold.json()
        assert {k: v for k, v in body.items() if k != "verification"} == {
            k: v for k, v in reference.items() if k != "verification"
        }
    assert [r.json()["verification"]["count"] for r in (cold, warm, typed)] == [1, 3, 4]
    # Anything the lane does not answer goes on to the app unchanged.
    assert world.verify("not-an-id!").status_code == 400
    assert world.verify(certificate_id_for(secrets.token_bytes(32))).status_code == 404
    assert world.http.get(f"/verify/{certificate_id}").status_code == 200


def test_an_expired_answer_is_served_from_memory_while_it_is_recomputed(
    web_world_factory: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(verification, "RESULT_TTL_S", 2.0)  # also read when the service's caches are made
    world = web_world_factory(freshness_s=30)
    world.submit([UNRELATED_RECORD])
    certificate_id = world.certificate_id(UNRELATED_RECORD)
    context = world.world.app.state.context
    assert world.verify(certificate_id).json()["status"] == "valid"
    key = next(iter(verification._caches(context).results._items))

    def made_at() -> float:
        return float(verification._caches(context).results.get(key).made_at)

    first = made_at()
    time.sleep(2.1)  # older than RESULT_TTL_S, younger than twice that (when the cache drops it)
    stale = cached_verification(context=context, query=certificate_id)
    assert stale is not None and stale.status == "valid"  # served at once; recomputed in the background
    deadline = time.monotonic() + 30
    while made_at() == first and time.monotonic() < deadline:
        time.sleep(0.02)
    assert made_at() > first
    assert cached_verification(context=context, query=certificate_id) is not None


def test_cached_answers_need_fresh_table_versions(web_world_factory: Any) -> None:
    world = web_world_factory(freshness_s=0)
    world.submit([UNRELATED_RECORD])
    certificate_id = world.certificate_id(UNRELATED_RECORD)
    assert world.verify(certificate_id).json()["status"] == "valid"
    # With VERIFY_FRESHNESS_S=0 every lookup reads the revocation/recall versions: nothing from memory alone.
    assert cached_verification(context=world.world.app.state.context, query=certificate_id) is None
    assert world.verify(certificate_id).json()["verification"]["count"] == 2


def test_a_revocation_shows_within_the_freshness_window(web_world_factory: Any) -> None:
    world = web_world_factory(freshness_s=0.5)
    world.submit([UNRELATED_RECORD, "DEMO-r000014"])
    certificate_id = world.certificate_id(UNRELATED_RECORD)
    _assert_valid(world.verify(certificate_id), certificate_id)
    world.world.agency_client().revoke(UNRELATED_RECORD, "检疫证明编号录入错误")
    world.world.index()
    statuses = []
    deadline = time.monotonic() + 30  # a liveness bound, not a speed target: the window is 0.5 s
    while time.monotonic() < deadline and (not statuses or statuses[-1] != "revoked"):
        statuses.append(world.verify(certificate_id).json()["status"])
        time.sleep(0.05)
    assert statuses[-1] == "revoked"
    assert set(statuses) <= {"valid", "revoked"}
    assert world.verify(world.certificate_id("DEMO-r000014")).json()["status"] == "valid"


def test_public_answers_never_hold_personal_data_extensions_or_full_counterparty_uscc(web_world: WebWorld) -> None:
    world = web_world
    assert {"13912345678", "赵秘密", "EXT-SECRET-7781", "13966585402"} <= world.private_values()
    for record_id in world.records:
        own = [world.enterprise_of(record_id)[0]]
        certificate_id = world.certificate_id(record_id)
        response = world.verify(certificate_id)
        assert response.status_code == 200, response.text
        assert_private_data_absent(world, text_of(response), allowed_usccs=own)
        counterparty = response.json()["certificate"]["record"].get("counterparty")
        if counterparty and "uscc" in counterparty:
            original = world.records[record_id]["counterparty"]["uscc"]
            assert counterparty["uscc"] == original[:4] + "****" + original[-4:]
        page = world.http.get(f"/verify/{certificate_id}")
        assert page.status_code == 200
        assert_private_data_absent(world, page.text, allowed_usccs=own)
    for record_id in (RETAIL_RECORD, "DEMO-r000002", "DEMO-r000003"):
        own = [world.enterprise_of(record_id)[0]]
        pdf = world.pdf(record_id)
        assert_private_data_absent(world, text_of(world.upload(pdf)), allowed_usccs=own)
        assert_private_data_absent(world, world.upload(pdf, path="/verify").text, allowed_usccs=own)
    for lot in (IMPORT_LOT, RETAIL_LOT):
        for direction in ("forward", "backward"):
            response = world.http.get(f"/api/v1/trace/{lot}", params={"direction": direction})
            assert response.status_code == 200
            assert_private_data_absent(world, text_of(response))


def test_uploads_over_5_mb_are_refused_with_413(web_world_factory: Any) -> None:
    world = web_world_factory()
    big = b"%PDF-1.7\n" + b"0" * (5 * 1024 * 1024 + 10)
    for path in ("/api/v1/verify", "/verify"):
        response = world.upload(big, path=path)
        assert response.status_code == 413, (path, response.text[:200])
    just_over = b"%PDF-1.7\n" + b"0" * (5 * 1024 * 1024 - 8)
    assert world.upload(just_over).status_code == 413
    assert world.upload(just_over, path="/verify").status_code == 413
    assert "超过" in world.upload(just_over, path="/verify").text
    # Without Content-Length, too: the body is cut off while streaming.
    stream = httpx.post(
        world.url + "/api/v1/verify",
        content=iter([b"x" * 1024 * 1024] * 7),
        headers={"content-type": "multipart/form-data; boundary=abc"},
    )
    assert stream.status_code in (400, 413)
    assert world.upload(b"").status_code in (400, 422)


def test_an_unreachable_chain_answers_503_with_the_verification_shape(web_world_factory: Any) -> None:
    world = web_world_factory()
    world.submit([UNRELATED_RECORD])
    certificate_id = world.certificate_id(UNRELATED_RECORD)
    world.pdf(UNRELATED_RECORD)  # the payload is stored; only the chain checks need the node
    settings = Settings(
        DATA_DIR=world.world.data_dir,
        DATABASE_URL=world.world.database_url,
        RPC_URL=f"http://127.0.0.1:{free_port()}",
    )
    with TestClient(create_app(settings, run_indexer=False)) as client:
        response = client.get(f"/api/v1/verify/{certificate_id}")
        page = client.get(f"/verify/{certificate_id}")
    assert page.status_code == 503 and "暂时无法验证" in page.text
    assert response.status_code == 503, response.text
    body = response.json()
    # Fail closed: invalid, but only undecided checks (no forgery found), hence 503 and not 200.
    assert body["status"] == "invalid" and body["valid"] is False
    assert any(c["status"] == "error" for c in body["checks"])
    assert not any(c["status"] == "invalid" for c in body["checks"])
    assert body["certificate"]["certificate_id"] == certificate_id
    # Nothing was cached from the outage: the real service still says valid.
    _assert_valid(world.verify(certificate_id), certificate_id)
