"""PAdES signing: validated by pyHanko against the consortium CA, covering the entire file."""

from __future__ import annotations

import asyncio
import io

import pytest
from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import SignatureCoverageLevel, validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import NO_REVOCATION, CertRevTrustPolicy

from certificate_service.pdf import async_sign_certificate, sign_certificate
from certificate_service.pdf.sign import SIGNATURE_FIELD_NAME, _setup_for
from certificate_service.pki import IssuerPKI


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
    assert first.pdf_signer.signer is pki.signer


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
