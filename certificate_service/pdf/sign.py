"""PAdES-sign rendered certificate PDFs with the issuer's key (pyHanko, async core plus a sync twin).

The signature is a single approval signature in one incremental update appended to the rendered file, so
its byte range covers the entire output: nothing may follow it. Per PDF the work is one parse of the
rendered file, one SHA-256 over it and one ECDSA signature; everything else (the pyHanko signer, the
parsed key, the size of the CMS container) is prepared once per :class:`IssuerPKI` and reused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import threading
import weakref
from dataclasses import dataclass
from io import BytesIO
from typing import Final

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

from certificate_service.pki import IssuerPKI

__all__ = ["SIGNATURE_FIELD_NAME", "async_sign_certificate", "sign_certificate"]

SIGNATURE_FIELD_NAME: Final = "TraceChainIssuerSignature"
_MD_ALGORITHM: Final = "sha256"
# Hex digits of slack over the measured CMS size: ECDSA DER signatures vary by a few bytes.
_RESERVE_SLACK: Final = 256


@dataclass(frozen=True, slots=True)
class _SigningSetup:
    pdf_signer: PdfSigner
    bytes_reserved: int


_SETUPS: weakref.WeakKeyDictionary[IssuerPKI, _SigningSetup] = weakref.WeakKeyDictionary()
_SETUP_LOCK = threading.Lock()


async def _setup_for(pki: IssuerPKI) -> _SigningSetup:
    setup = _SETUPS.get(pki)
    if setup is not None:
        return setup
    metadata = PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD_NAME,
        md_algorithm=_MD_ALGORITHM,
        subfilter=SigSeedSubFilter.PADES,
        reason="食品安全追溯信息区块链证书（上链凭证）签发",
        location="上海",
    )
    pdf_signer = PdfSigner(metadata, signer=pki.signer)
    # Measure the CMS container once (what pyHanko would otherwise re-estimate with a dummy signature on
    # every PDF); the result only depends on the certificates and the signed attributes' shapes.
    probe = await pki.signer.async_sign(
        hashlib.sha256(b"").digest(),
        _MD_ALGORITHM,
        use_pades=True,
        dry_run=True,
        signed_attr_settings=PdfCMSSignedAttributes(signing_time=dt.datetime.now(dt.UTC)),
    )
    reserved = len(probe.dump()) * 2 + _RESERVE_SLACK
    setup = _SigningSetup(pdf_signer=pdf_signer, bytes_reserved=reserved)
    with _SETUP_LOCK:
        return _SETUPS.setdefault(pki, setup)


async def async_sign_certificate(pdf_bytes: bytes, pki: IssuerPKI) -> bytes:
    """Return ``pdf_bytes`` with the issuer's PAdES signature appended as the file's last revision."""
    setup = await _setup_for(pki)
    writer = IncrementalPdfFileWriter(BytesIO(pdf_bytes))
    output = BytesIO()
    await setup.pdf_signer.async_sign_pdf(writer, bytes_reserved=setup.bytes_reserved, output=output)
    return output.getvalue()


def sign_certificate(pdf_bytes: bytes, pki: IssuerPKI) -> bytes:
    """Sync twin of :func:`async_sign_certificate` (not for use inside a running event loop)."""
    _refuse_running_loop("sign_certificate", "async_sign_certificate")
    # One event loop per thread, reused: asyncio.run() would build and tear one down per PDF (~0.4 ms).
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    return loop.run_until_complete(async_sign_certificate(pdf_bytes, pki))


_loops = threading.local()


def _refuse_running_loop(name: str, async_name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{name}() cannot run inside an event loop; await {async_name}() instead")
