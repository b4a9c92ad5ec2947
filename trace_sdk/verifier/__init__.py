"""Independent verification of 上链凭证 certificates (the PDF half lives in :mod:`.pdf_evidence`).

The PDF names are imported lazily, so that importing the chain-side modules of this package does not load
pyHanko.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trace_sdk.verifier.pdf_evidence import PdfEvidence, async_read_certificate_pdf, read_certificate_pdf

__all__ = ["PdfEvidence", "async_read_certificate_pdf", "read_certificate_pdf"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("trace_sdk.verifier.pdf_evidence"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
