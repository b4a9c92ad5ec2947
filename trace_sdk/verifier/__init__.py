"""Independent verification of 上链凭证 certificates: only the PDF, a chain RPC endpoint and the consortium CA.

Names are imported lazily, so that importing the chain-side modules does not load pyHanko (and the other way
round).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "trace_sdk.verifier.pdf_evidence": ("PdfEvidence", "async_read_certificate_pdf", "read_certificate_pdf"),
    "trace_sdk.verifier.chain_reader": (
        "AnchoredBatch", "ChainReader", "ContractNotFoundError", "FactCache", "LotRecallFact", "MemberEntry",
        "RevocationFact",
    ),
    "trace_sdk.verifier.result": ("CHECK_NAMES", "Check", "LotRecall", "RecordRevocation", "VerificationResult"),
    "trace_sdk.verifier.checks": ("async_verify_payload", "async_verify_pdf", "verify_payload", "verify_pdf"),
    "trace_sdk.verifier.command": ("run_verify",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
