"""PAdES signing: validated by pyHanko and by poppler, covering the entire file, structured as pyHanko signs."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner
from pyhanko.sign.validation import SignatureCoverageLevel, validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import NO_REVOCATION, CertRevTrustPolicy

from certificate_service.pdf import async_sign_certificate, sign_certificate
from certificate_service.pdf.sign import _LOCATION, _REASON, SIGNATURE_FIELD_NAME, _setup_for
from certificate_service.pki import IssuerPKI
from tests.pdf.conftest import run_tool


def validation_context(pki: IssuerPKI) -> ValidationContext:
    return ValidationContext(
        trust_roots=load_certs_from_pemder_data(pki.ca_pem),
        allow_fetching=False,
        revinfo_policy=CertRevTrustPolicy(NO_REVOCATION),
    )


def test_signature_is_intact_trusted_and_covers_the_entire_file(signed_pdf: bytes, pki: IssuerPKI) -> None:
    reader = PdfFileReader(io.BytesIO(signed_pdf))
    [signature] = reader.embedded_signatures
    status = validate_pdf_signature(signature, validation_context(pki))
    assert status.intact and status.valid and status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert status.modification_level == ModificationLevel.NONE
    assert status.bottom_line
    assert signature.field_name == SIGNATURE_FIELD_NAME
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES
    assert signature.signer_cert.dump() == pki.signer.signing_cert.dump()


def test_signed_file_starts_with_the_rendered_file(rendered_pdf: bytes, signed_pdf: bytes) -> None:
    assert signed_pdf.startswith(rendered_pdf)  # one incremental update, appended
    assert signed_pdf.rstrip().endswith(b"%%EOF")


def test_async_twin_inside_a_running_loop(rendered_pdf: bytes, pki: IssuerPKI) -> None:
    async def sign_concurrently() -> list[bytes]:
        return await asyncio.gather(*(async_sign_certificate(rendered_pdf, pki) for _ in range(3)))

    for pdf in asyncio.run(sign_concurrently()):
        [signature] = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
        status = validate_pdf_signature(signature, validation_context(pki))
        assert status.bottom_line and status.coverage == SignatureCoverageLevel.ENTIRE_FILE


def test_sync_twin_refuses_a_running_loop(rendered_pdf: bytes, pki: IssuerPKI) -> None:
    async def misuse() -> None:
        sign_certificate(rendered_pdf, pki)

    with pytest.raises(RuntimeError):
        asyncio.run(misuse())


def test_signer_and_reservation_are_prepared_once(rendered_pdf: bytes, pki: IssuerPKI) -> None:
    first = asyncio.run(_setup_for(pki))
    sign_certificate(rendered_pdf, pki)
    assert asyncio.run(_setup_for(pki)) is first
    assert first.signer is pki.signer


def test_each_signature_is_fresh(rendered_pdf: bytes, pki: IssuerPKI) -> None:
    a, b = sign_certificate(rendered_pdf, pki), sign_certificate(rendered_pdf, pki)
    assert a != b  # ECDSA nonces (and signing times) differ
    for pdf in (a, b):
        [signature] = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
        assert validate_pdf_signature(signature, validation_context(pki)).bottom_line


def test_a_pki_it_does_not_trust(signed_pdf: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    stranger = IssuerPKI.load_or_create(tmp_path_factory.mktemp("stranger"))
    [signature] = PdfFileReader(io.BytesIO(signed_pdf)).embedded_signatures
    status = validate_pdf_signature(signature, validation_context(stranger))
    assert status.intact and status.valid and not status.trusted


def test_poppler_validates_the_signature(signed_pdf: bytes, tmp_path: Path) -> None:
    """An independent implementation (poppler's pdfsig) accepts the hand-written revision and the CMS."""
    (tmp_path / "signed.pdf").write_bytes(signed_pdf)
    report = run_tool("pdfsig", "-nocert", str(tmp_path / "signed.pdf")).decode()
    assert f"Signature Field Name: {SIGNATURE_FIELD_NAME}" in report
    assert "Signature Type: ETSI.CAdES.detached" in report
    assert "Total document signed" in report
    assert "Signature Validation: Signature is Valid." in report


def test_revision_holds_what_pyhanko_would_write(rendered_pdf: bytes, signed_pdf: bytes, pki: IssuerPKI) -> None:
    metadata = PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD_NAME,
        md_algorithm="sha256",
        subfilter=SigSeedSubFilter.PADES,
        reason=_REASON,
        location=_LOCATION,
    )
    reference = PdfSigner(metadata, signer=pki.signer).sign_pdf(IncrementalPdfFileWriter(io.BytesIO(rendered_pdf)))
    ours = PdfFileReader(io.BytesIO(signed_pdf))
    theirs = PdfFileReader(reference)
    for key in ("/Version", "/Extensions"):
        assert ours.root[key] == theirs.root[key], key
    assert ours.root["/AcroForm"]["/SigFlags"] == theirs.root["/AcroForm"]["/SigFlags"]
    [mine], [pyhanko] = ours.embedded_signatures, theirs.embedded_signatures
    widget_keys = ("/FT", "/T", "/Type", "/Subtype", "/F", "/Rect")
    assert {k: mine.sig_field[k] for k in widget_keys} == {k: pyhanko.sig_field[k] for k in widget_keys}
    assert mine.sig_field["/P"] == ours.root["/Pages"]["/Kids"][0]
    assert ours.root["/Pages"]["/Kids"][0]["/Annots"][0].get_object() == mine.sig_field
    sig_keys = ("/Type", "/Filter", "/SubFilter", "/Reason", "/Location")
    assert {k: mine.sig_object[k] for k in sig_keys} == {k: pyhanko.sig_object[k] for k in sig_keys}
    assert set(mine.sig_object) == set(pyhanko.sig_object)
    # The CMS: same certificates, signer, algorithms and signed attribute types; only digest and value differ.
    for part in ("version", "digest_algorithms", "encap_content_info", "certificates"):
        assert mine.signed_data[part].dump() == pyhanko.signed_data[part].dump(), part
    for part in ("version", "sid", "digest_algorithm", "signature_algorithm"):
        assert mine.signer_info[part].dump() == pyhanko.signer_info[part].dump(), part
    attribute_types = [[a["type"].native for a in s.signer_info["signed_attrs"]] for s in (mine, pyhanko)]
    assert attribute_types[0] == attribute_types[1]


def test_a_signed_pdf_is_not_signed_again(signed_pdf: bytes, pki: IssuerPKI) -> None:
    with pytest.raises(ValueError, match="without a form"):
        sign_certificate(signed_pdf, pki)
