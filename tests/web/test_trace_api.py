"""Trace API (溯源倒查): public desensitised graphs and full graphs for agencies (signed requests)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest
from eth_account import Account

from tests.service.certificates_fixtures import make_record
from tests.web.web_fixtures import (
    IMPORT_LOT,
    RETAIL_LOT,
    WHOLESALE_LOT,
    WebWorld,
    assert_private_data_absent,
    text_of,
)
from trace_sdk.client.service_api import ServiceClient, signed_headers
from trace_sdk.exceptions import ServiceError
from trace_sdk.protocol.request_signing import ADDRESS_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

OTHER_WHOLESALE_LOT = "DEMOW343530251200005"
OTHER_RETAIL_LOT = "DEMOS401285314800011"


def _nodes(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Nodes by trace code, in answer order."""
    return {node["trace_code"]: node for node in graph["nodes"]}


def _edges(graph: dict[str, Any]) -> set[tuple[str, str]]:
    """Edges as (from, to) pairs."""
    return {(edge["from"], edge["to"]) for edge in graph["edges"]}


def test_forward_trace_names_every_downstream_lot_and_enterprise(web_world: WebWorld) -> None:
    world = web_world
    response = world.http.get(f"/api/v1/trace/{IMPORT_LOT}", params={"direction": "forward"})
    assert response.status_code == 200, response.text
    graph = response.json()
    assert graph["view"] == "public" and graph["direction"] == "forward" and graph["truncated"] is False
    nodes = _nodes(graph)
    assert set(nodes) == {IMPORT_LOT, WHOLESALE_LOT, OTHER_WHOLESALE_LOT, RETAIL_LOT, OTHER_RETAIL_LOT}
    assert graph["nodes"][0]["trace_code"] == IMPORT_LOT
    assert _edges(graph) == {
        (IMPORT_LOT, WHOLESALE_LOT),
        (IMPORT_LOT, OTHER_WHOLESALE_LOT),
        (WHOLESALE_LOT, RETAIL_LOT),
        (OTHER_WHOLESALE_LOT, OTHER_RETAIL_LOT),
    }
    receivers = {e["name"] for code, node in nodes.items() if code != IMPORT_LOT for e in node["enterprises"]}
    assert {"联华超市股份有限公司", "上海盒马网络科技有限公司", "上海西郊国际农产品交易中心某商户"} <= receivers
    assert not any(node["recalled"] for node in graph["nodes"])

    # Desensitised: no record ids, hashes, contact, extensions or document numbers; every USCC masked.
    records = [entry["record"] for node in graph["nodes"] for entry in node["records"]]
    assert len(records) == 7
    assert all("record_id" not in r and "contact" not in r and "extensions" not in r for r in records)
    assert all("number" not in d for r in records for d in r.get("documents", []) if d)
    for node in graph["nodes"]:
        for enterprise in node["enterprises"]:
            assert "****" in enterprise.get("uscc", "****")
    assert_private_data_absent(world, text_of(response))
    assert "record_hash" not in response.text and "certificate_id" not in response.text


def test_backward_trace_and_transitive_recall_flags(web_world: WebWorld) -> None:
    world = web_world
    graph = world.http.get(f"/api/v1/trace/{RETAIL_LOT}", params={"direction": "backward"}).json()
    assert list(_nodes(graph)) == [RETAIL_LOT, WHOLESALE_LOT, IMPORT_LOT]
    assert _edges(graph) == {(IMPORT_LOT, WHOLESALE_LOT), (WHOLESALE_LOT, RETAIL_LOT)}

    world.world.agency_client("regulator").recall(WHOLESALE_LOT, "批发环节冷链断链")
    world.world.index()

    backward = _nodes(world.http.get(f"/api/v1/trace/{RETAIL_LOT}", params={"direction": "backward"}).json())
    assert {code: node["recalled"] for code, node in backward.items()} == {
        RETAIL_LOT: True,  # downstream of the recalled lot
        WHOLESALE_LOT: True,
        IMPORT_LOT: False,  # upstream lots are not affected
    }
    assert backward[WHOLESALE_LOT]["recall"]["reason"] == "批发环节冷链断链"
    assert backward[RETAIL_LOT]["recall"] is None
    forward = _nodes(world.http.get(f"/api/v1/trace/{IMPORT_LOT}").json())  # forward is the default
    assert {code for code, node in forward.items() if node["recalled"]} == {WHOLESALE_LOT, RETAIL_LOT}


def test_signed_requests_of_members_get_full_records(web_world: WebWorld) -> None:
    world = web_world
    client = world.world.agency_client()
    graph = client.trace(IMPORT_LOT, "forward")
    assert graph["view"] == "full"
    nodes = _nodes(graph)
    retail = nodes[RETAIL_LOT]["records"][0]
    assert retail["record"] == world.records["DEMO-r000009"]  # contact and extensions included
    assert retail["record_hash"] == world.receipts["DEMO-r000009"].record_hash
    assert retail["certificate_id"] == world.receipts["DEMO-r000009"].certificate_id
    assert {e["uscc"] for e in nodes[RETAIL_LOT]["enterprises"]} >= {world.enterprise_of("DEMO-r000009")[0]}
    assert client.trace(RETAIL_LOT, "backward")["nodes"][-1]["trace_code"] == IMPORT_LOT

    # GS1 Digital Link trace codes hold "/" and ":"; the SDK signs the percent-encoded path it sends.
    gs1 = "01/06901234567892/10/LOT:7"
    world.world.submit([make_record("gs1-1", gs1, inputs=[RETAIL_LOT], biz_step="serving")])
    world.world.index()
    signed = client.trace(gs1, "backward")
    assert signed["view"] == "full" and [n["trace_code"] for n in signed["nodes"]][:2] == [gs1, RETAIL_LOT]
    public = world.http.get(f"/api/v1/trace/{quote(gs1, safe='')}", params={"direction": "backward"}).json()
    assert public["view"] == "public" and len(public["nodes"]) == 4
    assert _nodes(client.trace(IMPORT_LOT, "forward"))[gs1]["records"][0]["record"]["record_id"] == "gs1-1"


def test_trace_refusals(web_world: WebWorld) -> None:
    world = web_world
    assert world.http.get("/api/v1/trace/UNKNOWN-LOT-000001").status_code == 404
    assert world.http.get("/api/v1/trace/ab").status_code == 400
    assert world.http.get("/api/v1/trace/has%20space%20here").status_code == 400
    assert world.http.get(f"/api/v1/trace/{IMPORT_LOT}", params={"direction": "sideways"}).status_code == 422

    outsider = ServiceClient(world.url, Account.create())
    with pytest.raises(ServiceError) as refused:
        outsider.trace(IMPORT_LOT, "forward")
    assert refused.value.status_code == 403
    outsider.close()

    path = f"/api/v1/trace/{IMPORT_LOT}?direction=forward"
    headers = signed_headers(Account.create(), "GET", path, b"")
    headers[ADDRESS_HEADER] = world.world.address("agency")  # claims to be the agency
    assert world.http.get(path, headers=headers).status_code == 401
    stale = {ADDRESS_HEADER: world.world.address("agency"), TIMESTAMP_HEADER: str(int(time.time()) - 3600),
             SIGNATURE_HEADER: "0x" + "00" * 65}
    assert world.http.get(path, headers=stale).status_code == 401
