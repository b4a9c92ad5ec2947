"""Rendering: embedded fonts, extractable text, a decodable vector QR code, the JSON attachment, the size."""

from __future__ import annotations

import copy
import io
import random
import re
import string
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from reportlab.graphics.barcode import qrencoder

from certificate_service.pdf import CERTIFICATE_TITLE, render_certificate, sign_certificate
from certificate_service.pdf import render as render_module
from certificate_service.pdf.render import _qr_codewords, _qr_rows
from certificate_service.pki import IssuerPKI
from tests.pdf.conftest import VERIFY_URL, build_payload, run_tool
from trace_sdk.protocol.canonical import canonicalize

MAX_BYTES = 60 * 1024


def squeeze(text: str) -> str:
    """pdftotext output without any whitespace: long hashes may wrap, but nothing may be lost."""
    return re.sub(r"\s+", "", text)


def pdf_text(pdf: bytes) -> str:
    return run_tool("pdftotext", "-enc", "UTF-8", "-", "-", input_bytes=pdf).decode("utf-8")


def attachment(pdf: bytes) -> tuple[bytes, Any]:
    reader = PdfFileReader(io.BytesIO(pdf))
    names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
    assert [str(names[i]) for i in range(0, len(names), 2)] == ["certificate.json"]
    filespec = names[1]
    return filespec["/EF"]["/F"].data, filespec


def test_every_font_is_embedded(rendered_pdf: bytes, signed_pdf: bytes, tmp_path: Path) -> None:
    for name, pdf in (("rendered.pdf", rendered_pdf), ("signed.pdf", signed_pdf)):
        (tmp_path / name).write_bytes(pdf)
        listing = run_tool("pdffonts", str(tmp_path / name)).decode()
        rows = listing.splitlines()[2:]
        assert rows, listing
        for row in rows:
            # name type encoding emb sub uni object-id generation (type and encoding are single words here)
            assert row.split()[-5:-2] == ["yes", "yes", "yes"], row  # embedded, subset, ToUnicode
            assert row.split()[1] == "TrueType", row


def test_text_is_extractable_in_full(signed_pdf: bytes, sample_payload: dict[str, Any]) -> None:
    text = squeeze(pdf_text(signed_pdf))
    assert CERTIFICATE_TITLE in text
    for value in (
        sample_payload["certificate_id"],
        sample_payload["certificate_hash"],
        sample_payload["record_hash"],
        sample_payload["merkle"]["root"],
        sample_payload["anchor"]["tx_hash"],
        sample_payload["anchor"]["contracts"]["TraceAnchor"],
        sample_payload["issuer"]["certificate_fingerprint_sha256"],
    ):
        assert value in text, value


def test_record_content_and_labels_are_shown(signed_pdf: bytes, sample_payload: dict[str, Any]) -> None:
    text = squeeze(pdf_text(signed_pdf))
    record = sample_payload["record"]
    for value in (
        record["product"]["name"],
        record["product"]["lot"],
        record["enterprise"]["name"],
        record["enterprise"]["uscc"],
        record["location"]["name"],
        "上海海关",  # anchoring agency
        "上海市大数据中心",  # issuer
        "海关进口查验",  # biz_step import_inspecting
        "报关单",
        "检疫证明",
        "核酸检测证明",
        "消毒证明",
        "阴性",
        "已隐藏字段",
        "联系人（contact.person）",
        sample_payload["hidden_fields"]["contact.person"],
    ):
        assert squeeze(value) in text, value
    # hidden values themselves never appear
    assert "王建国" not in text


def test_qr_code_decodes_to_the_verify_url(signed_pdf: bytes, verify_url: str, tmp_path: Path) -> None:
    (tmp_path / "c.pdf").write_bytes(signed_pdf)
    run_tool("pdftoppm", "-r", "200", "-png", "-f", "1", "-l", "1", str(tmp_path / "c.pdf"), str(tmp_path / "p"))
    [png] = tmp_path.glob("p*.png")
    decoded = run_tool("zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)).decode()
    assert decoded.splitlines() == [verify_url]


def test_qr_code_is_vector_not_an_image(rendered_pdf: bytes, tmp_path: Path) -> None:
    (tmp_path / "c.pdf").write_bytes(rendered_pdf)
    listing = run_tool("pdfimages", "-list", str(tmp_path / "c.pdf")).decode().splitlines()
    assert len(listing) == 2, listing  # the header only: no raster image anywhere


def test_qr_symbols_match_reportlab_encoder() -> None:
    """The table-driven Reed-Solomon and data placement give reportlab's own symbol, bit for bit."""
    rng = random.Random(8785)
    for _ in range(40):
        tail = "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(1, 120)))
        url = "https://trace.example.cn/v/" + tail
        for level in ("L", "M", "Q", "H"):
            code = qrencoder.QRCode(None, getattr(qrencoder.QRErrorCorrectLevel, level))
            code.addData(url)
            code.version = code.calculate_version()
            expected = qrencoder.QRCode.createData(code.version, code.errorCorrectLevel, code.dataList)
            assert _qr_codewords(code) == expected
        reference = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
        reference.addData(url)
        reference.version = reference.calculate_version()
        reference.makeImpl(False, 0)  # the mask pattern render.py pins
        assert [[module == "1" for module in row] for row in _qr_rows(url)] == reference.modules


def test_attachment_is_the_canonical_payload(rendered_pdf: bytes, sample_payload: dict[str, Any]) -> None:
    data, filespec = attachment(rendered_pdf)
    assert data == canonicalize(sample_payload)
    assert str(filespec["/AFRelationship"]) == "/Data"
    assert str(filespec["/EF"]["/F"]["/Subtype"]) == "/application/json"


def test_rendering_is_deterministic(sample_payload: dict[str, Any], verify_url: str, rendered_pdf: bytes) -> None:
    assert render_certificate(sample_payload, verify_url) == rendered_pdf


def test_rendering_in_threads_matches_sequential(records: list[dict[str, Any]]) -> None:
    """The service renders in worker threads; shared font state must not leak between documents."""
    work = []
    for index, record in enumerate(records[:12]):
        payload = build_payload(record, seed=b"threads" + bytes([index]))
        work.append((payload, VERIFY_URL.format(id=payload["certificate_id"])))
    sequential = [render_certificate(payload, url) for payload, url in work]
    font = render_module._font
    assert font is not None
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            for _ in range(3):
                font._subset_cache.clear()  # make every document build its record subset concurrently
                assert list(pool.map(lambda item: render_certificate(*item), work)) == sequential
    finally:
        sys.setswitchinterval(interval)


def test_size_budget(rendered_pdf: bytes, signed_pdf: bytes) -> None:
    assert len(rendered_pdf) <= MAX_BYTES
    assert len(signed_pdf) <= MAX_BYTES


def test_one_page_for_a_typical_record(rendered_pdf: bytes) -> None:
    assert PdfFileReader(io.BytesIO(rendered_pdf)).root["/Pages"]["/Count"] == 1


@pytest.mark.parametrize("index", range(34))
def test_every_sample_record_renders(records: list[dict[str, Any]], index: int, pki: IssuerPKI) -> None:
    record = records[index]
    payload = build_payload(record, seed=str(index).encode())
    pdf = sign_certificate(render_certificate(payload, VERIFY_URL.format(id=payload["certificate_id"])), pki)
    assert len(pdf) <= MAX_BYTES
    assert PdfFileReader(io.BytesIO(pdf)).root["/Pages"]["/Count"] == 1
    text = squeeze(pdf_text(pdf))
    assert squeeze(record["product"]["name"]) in text
    assert payload["certificate_hash"] in text


def test_long_record_flows_onto_more_pages(sample_record: dict[str, Any], pki: IssuerPKI) -> None:
    record = copy.deepcopy(sample_record)
    record["documents"] = record["documents"] * 12
    record["outputs"] = [f"DEMOW{n:015d}" for n in range(300)]
    payload = build_payload(record)
    pdf = render_certificate(payload, VERIFY_URL.format(id=payload["certificate_id"]))
    assert PdfFileReader(io.BytesIO(pdf)).root["/Pages"]["/Count"] >= 2
    text = squeeze(pdf_text(pdf))
    assert "DEMOW000000000000299" in text and payload["certificate_hash"] in text
    assert attachment(pdf)[0] == canonicalize(payload)
    sign_certificate(pdf, pki)  # multi-page output signs too


def test_sparse_payload_renders() -> None:
    payload = {"certificate_id": "TC0000000000000000001", "record": {"product": {"name": "大米"}}}
    text = squeeze(pdf_text(render_certificate(payload, "https://example.cn/v/1")))
    assert "大米" in text and CERTIFICATE_TITLE in text


def test_hostile_strings_render_literally() -> None:
    nasty = "名称) Tj ET (x) \\ <> %% \r\n 🐖 \u0000"
    payload = {"certificate_id": "TC-NASTY", "record": {"product": {"name": nasty, "lot": "A(1)"}}}
    pdf = render_certificate(payload, "https://example.cn/v/(1)")
    text = pdf_text(pdf)
    assert "名称) Tj ET (x)" in text and "A(1)" in text


def test_artifacts_are_kept(artifacts: Path) -> None:
    for name in ("certificate.pdf", "certificate.json", "consortium-ca.pem", "certificate-page-1.png"):
        assert (artifacts / name).is_file(), name
