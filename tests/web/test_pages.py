"""Server-rendered verification pages over HTTP (the browser suite drives the same pages in chromium)."""

from __future__ import annotations

import secrets
from typing import Any

from tests.service.certificates_fixtures import make_record
from tests.web.web_fixtures import (
    IMPORT_LOT,
    RETAIL_RECORD,
    WebWorld,
    appended,
    strip_tags,
)
from trace_sdk.protocol.certificate_ids import certificate_id_for


def test_search_page_is_self_contained(web_world_factory: Any) -> None:
    world = web_world_factory()
    page = world.http.get("/verify")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in page.text and 'name="viewport"' in page.text
    assert 'enctype="multipart/form-data"' in page.text and 'name="file"' in page.text and 'name="q"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for asset in ("/static/verify.css", "/static/verify.js"):
        assert asset in page.text
        assert world.http.get(asset).status_code == 200
    assert "http://" not in page.text.replace(world.url, "") and "https://" not in page.text  # no CDN


def test_qr_target_shows_verdict_product_enterprise_trace_and_anchor(web_world: WebWorld) -> None:
    world = web_world
    certificate_id = world.certificate_id(RETAIL_RECORD)
    page = world.http.get(f"/verify/{certificate_id}")
    assert page.status_code == 200
    text = strip_tags(page.text)
    assert "验证通过" in text
    record = world.records[RETAIL_RECORD]
    for shown in (record["product"]["name"], record["product"]["lot"], record["enterprise"]["name"], "零售",
                  "上海东方冷链进出口有限公司", "海关进口查验", "溯源", "追踪", "上链存证", "查验次数",
                  world.receipts[RETAIL_RECORD].tx_hash, "上海市农业农村委员会"):
        assert shown in text, shown
    assert "9131****5623" in text  # the counterparty's USCC, masked
    import_page = strip_tags(world.http.get(f"/verify/{world.certificate_id('DEMO-r000002')}").text)
    assert "核酸检测证明" in import_page and "阴性" in import_page  # document types and results...
    assert "NAT398747365" not in import_page  # ...but not their numbers

    lowered = world.http.get("/verify", params={"q": certificate_id.lower()}, follow_redirects=False)
    assert lowered.status_code == 303
    assert "验证通过" in world.http.get(lowered.headers["location"]).text

    missing = world.http.get(f"/verify/{certificate_id_for(secrets.token_bytes(32))}")
    assert missing.status_code == 404 and "未找到" in missing.text
    malformed = world.http.get("/verify/not-an-id")
    assert malformed.status_code == 400 and "请输入正确的证书编号" in malformed.text


def test_uploaded_pdfs_get_a_verdict_page(web_world: WebWorld) -> None:
    world = web_world
    pdf = world.pdf(RETAIL_RECORD)
    good = world.upload(pdf, path="/verify")
    assert good.status_code == 200 and "验证通过" in good.text
    bad = world.upload(appended(pdf), path="/verify")
    assert bad.status_code == 200 and "验证失败" in bad.text and "未通过" in bad.text
    empty = world.http.post("/verify", files={"file": ("empty.pdf", b"", "application/pdf")})
    assert empty.status_code == 400 and "请选择" in empty.text


def test_recalled_and_revoked_pages(web_world: WebWorld) -> None:
    world = web_world
    world.world.agency_client("regulator").recall(IMPORT_LOT, "核酸检测阳性")
    world.world.agency_client().revoke("DEMO-r000016", "数据录入错误")
    world.world.index()
    recalled = strip_tags(world.http.get(f"/verify/{world.certificate_id(RETAIL_RECORD)}").text)
    assert "已召回" in recalled and "核酸检测阳性" in recalled and IMPORT_LOT in recalled
    revoked = strip_tags(world.http.get(f"/verify/{world.certificate_id('DEMO-r000016')}").text)
    assert "已撤销" in revoked and "数据录入错误" in revoked


def test_everything_is_escaped(web_world_factory: Any) -> None:
    world = web_world_factory()
    record = make_record("xss-1", "XSS-LOT-0001")
    record["product"]["name"] = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    record["enterprise"]["name"] = "<b>恶意企业</b>"
    [receipt] = world.world.submit([record])
    world.world.index()
    page = world.http.get(f"/verify/{receipt.certificate_id}")
    assert page.status_code == 200 and "验证通过" in page.text
    assert "<script>alert" not in page.text and "<img src=x" not in page.text and "<b>恶意企业" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert "&lt;b&gt;恶意企业&lt;/b&gt;" in page.text
