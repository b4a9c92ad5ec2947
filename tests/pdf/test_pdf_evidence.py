"""The PDF half of independent verification: good certificates pass, every tampering is flagged."""

from __future__ import annotations

import asyncio
import io
import os
import re
from typing import Any

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner

from certificate_service.pdf import render_certificate, sign_certificate
from certificate_service.pki import IssuerPKI
from trace_sdk.verifier import PdfEvidence, async_read_certificate_pdf, read_certificate_pdf


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> IssuerPKI:
    """A self-made CA and issuer that the consortium trust roots do not contain."""
    return IssuerPKI.load_or_create(tmp_path_factory.mktemp("stranger"), organisation="某某伪造中心")


def read(pdf: Any, pki: IssuerPKI) -> PdfEvidence:
    return read_certificate_pdf(pdf, [pki.ca_pem])


def assert_rejected(evidence: PdfEvidence) -> None:
    assert not evidence.ok
    assert evidence.problems
    for problem in evidence.problems:
        english, _, chinese = problem.partition(" / ")
        assert english and re.search(r"[\u4e00-\u9fff]", chinese), problem


def test_good_certificate(signed_pdf: bytes, pki: IssuerPKI, sample_payload: dict[str, Any]) -> None:
    evidence = read(signed_pdf, pki)
    assert evidence.ok, evidence.problems
    assert evidence.problems == ()
    assert evidence.payload == sample_payload
    assert evidence.signer_fingerprint_sha256 == pki.fingerprint_sha256
    assert evidence.signature_intact and evidence.covers_entire_file and evidence.chained_to_trust_root
    assert evidence.signature_count == 1


def test_async_twin(signed_pdf: bytes, pki: IssuerPKI) -> None:
    assert asyncio.run(async_read_certificate_pdf(signed_pdf, [pki.ca_pem])).ok


def test_sync_twin_refuses_a_running_loop(signed_pdf: bytes, pki: IssuerPKI) -> None:
    async def misuse() -> None:
        read_certificate_pdf(signed_pdf, [pki.ca_pem])

    with pytest.raises(RuntimeError):
        asyncio.run(misuse())


def test_flipped_byte_inside_the_signed_range(signed_pdf: bytes, pki: IssuerPKI) -> None:
    contents_at = signed_pdf.index(b"/Contents <")
    at = signed_pdf.index(b"(TraceChain)")  # the Info dictionary's /Creator in the first revision
    assert at < contents_at
    tampered = bytearray(signed_pdf)
    tampered[at + 1] ^= 0x20  # T -> t
    evidence = read(bytes(tampered), pki)
    assert_rejected(evidence)
    assert not evidence.signature_intact
    assert evidence.signature_count == 1


def test_flipped_byte_in_a_content_stream(signed_pdf: bytes, pki: IssuerPKI) -> None:
    tampered = bytearray(signed_pdf)
    start = signed_pdf.index(b"stream\n", len(signed_pdf) // 3) + 200
    tampered[start] ^= 0x01
    evidence = read(bytes(tampered), pki)
    assert_rejected(evidence)
    assert not evidence.signature_intact


def test_appended_garbage(signed_pdf: bytes, pki: IssuerPKI) -> None:
    evidence = read(signed_pdf + b"\n% appended\n" + os.urandom(64), pki)
    assert_rejected(evidence)
    assert evidence.signature_intact and not evidence.covers_entire_file


def test_incremental_update_adding_an_object(signed_pdf: bytes, pki: IssuerPKI) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed_pdf))
    writer.add_object(generic.DictionaryObject({generic.NameObject("/Note"): generic.TextStringObject("改")}))
    out = io.BytesIO()
    writer.write(out)
    evidence = read(out.getvalue(), pki)
    assert_rejected(evidence)
    assert evidence.signature_intact and not evidence.covers_entire_file
    assert evidence.signature_count == 1


def test_attachment_swapped_in_an_update_is_not_believed(
    signed_pdf: bytes, pki: IssuerPKI, sample_payload: dict[str, Any]
) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed_pdf))
    filespec = writer.root["/Names"]["/EmbeddedFiles"]["/Names"][1]
    stream_ref = filespec["/EF"].raw_get("/F")
    forged = generic.StreamObject(stream_data=b'{"record":{"product":{"name":"forged"}}}')
    writer.update_container(filespec)
    writer.objects[(stream_ref.generation, stream_ref.idnum)] = forged
    out = io.BytesIO()
    writer.write(out)
    latest = PdfFileReader(io.BytesIO(out.getvalue())).root["/Names"]["/EmbeddedFiles"]["/Names"][1]
    assert latest["/EF"]["/F"].data.startswith(b'{"record"')  # the forgery is what a naive reader sees
    evidence = read(out.getvalue(), pki)
    assert_rejected(evidence)
    assert not evidence.covers_entire_file
    assert evidence.payload == sample_payload  # read as of the signed revision


def test_second_signature_by_another_key(signed_pdf: bytes, pki: IssuerPKI, stranger: IssuerPKI) -> None:
    signer = PdfSigner(PdfSignatureMetadata(field_name="Countersignature"), signer=stranger.signer)
    out = signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(signed_pdf)))
    evidence = read(out.getvalue(), pki)
    assert_rejected(evidence)
    assert evidence.signature_count == 2
    assert not evidence.covers_entire_file
    assert evidence.signer_fingerprint_sha256 == pki.fingerprint_sha256  # the first (issuer's) signature


def test_resigned_by_a_self_made_ca(
    sample_payload: dict[str, Any], verify_url: str, pki: IssuerPKI, stranger: IssuerPKI
) -> None:
    forged = sign_certificate(render_certificate(sample_payload, verify_url), stranger)
    evidence = read(forged, pki)
    assert_rejected(evidence)
    assert evidence.signature_intact and evidence.covers_entire_file
    assert not evidence.chained_to_trust_root
    assert evidence.signer_fingerprint_sha256 == stranger.fingerprint_sha256 != pki.fingerprint_sha256


def test_no_signature(rendered_pdf: bytes, pki: IssuerPKI, sample_payload: dict[str, Any]) -> None:
    evidence = read(rendered_pdf, pki)
    assert_rejected(evidence)
    assert evidence.signature_count == 0 and not evidence.signature_intact
    assert evidence.signer_fingerprint_sha256 is None
    assert evidence.payload == sample_payload


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(os.urandom(4096), id="random"),
        pytest.param(b"%PDF-1.7\n" + os.urandom(4096), id="random-after-header"),
        pytest.param(
            b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n", id="bare"
        ),
    ],
)
def test_garbage(data: bytes, pki: IssuerPKI) -> None:
    evidence = read(data, pki)
    assert_rejected(evidence)
    assert evidence.payload is None and evidence.signature_count == 0


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated(signed_pdf: bytes, pki: IssuerPKI, fraction: float) -> None:
    assert_rejected(read(signed_pdf[: int(len(signed_pdf) * fraction)], pki))


@pytest.mark.parametrize("value", [None, "a string", 42, [b"%PDF"]])
def test_not_bytes(value: Any, pki: IssuerPKI) -> None:
    assert_rejected(read(value, pki))


def test_attachment_that_is_not_json(rendered_pdf: bytes, pki: IssuerPKI) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(rendered_pdf))
    filespec = writer.root["/Names"]["/EmbeddedFiles"]["/Names"][1]
    stream_ref = filespec["/EF"].raw_get("/F")
    writer.objects[(stream_ref.generation, stream_ref.idnum)] = generic.StreamObject(stream_data=b'{"a": NaN}')
    out = io.BytesIO()
    writer.write(out)
    evidence = read(out.getvalue(), pki)
    assert_rejected(evidence)
    assert evidence.payload is None
    assert any("certificate.json" in problem for problem in evidence.problems)


def test_without_trust_roots_only_the_chain_is_unchecked(signed_pdf: bytes) -> None:
    evidence = read_certificate_pdf(signed_pdf, [])
    assert not evidence.chained_to_trust_root
    assert evidence.signature_intact and evidence.covers_entire_file and evidence.payload is not None
    assert evidence.problems == ()  # the caller decides whether a CA was required
    assert not evidence.ok


def test_unreadable_trust_roots_are_a_configuration_error(signed_pdf: bytes) -> None:
    with pytest.raises(ValueError):
        read_certificate_pdf(signed_pdf, [b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"])


def test_evidence_is_frozen(signed_pdf: bytes, pki: IssuerPKI) -> None:
    evidence = read(signed_pdf, pki)
    with pytest.raises(AttributeError):
        evidence.signature_intact = False  # type: ignore[misc]
    assert PdfFileReader(io.BytesIO(signed_pdf)).embedded_signatures  # sanity: pyHanko agrees it is signed
