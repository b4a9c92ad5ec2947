"""The work of a PDF worker process: render and sign one certificate with the issuer PKI from its directory.

The service submits these functions to its pool of worker processes (see
``certificate_service.services.certificates``); they import only the pdf package and the PKI, and
each worker loads the issuer PKI of a data directory once and then reuses it (and its signing setup).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from certificate_service.pdf.render import register_fonts, render_certificate
from certificate_service.pdf.sign import sign_certificate
from certificate_service.pki import IssuerPKI, IssuerPKIError

__all__ = ["make_signed_certificate", "warm_up"]

_pkis: dict[str, IssuerPKI] = {}
_pkis_lock = threading.Lock()


def warm_up() -> int:
    """Load the font (~0.2 s) before the first certificate; returns the worker's pid."""
    register_fonts()
    return os.getpid()


def _issuer_pki(data_dir: str, fingerprint_sha256: str) -> IssuerPKI:
    """The PKI stored under ``data_dir``, loaded once; it must be the one with ``fingerprint_sha256``."""
    with _pkis_lock:
        pki = _pkis.get(data_dir)
        if pki is None or pki.fingerprint_sha256 != fingerprint_sha256:
            pki = _pkis[data_dir] = IssuerPKI.load_or_create(Path(data_dir))
    if pki.fingerprint_sha256 != fingerprint_sha256:
        raise IssuerPKIError(f"the issuer PKI under {data_dir} is not the service's ({fingerprint_sha256})")
    return pki


def make_signed_certificate(
    payload: Mapping[str, Any], verify_url: str, data_dir: str, fingerprint_sha256: str
) -> bytes:
    """``sign_certificate(render_certificate(payload, verify_url), pki)`` with the PKI under ``data_dir``."""
    return sign_certificate(render_certificate(payload, verify_url), _issuer_pki(data_dir, fingerprint_sha256))
