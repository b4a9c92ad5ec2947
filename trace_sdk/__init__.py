"""TraceChain agency SDK: the pure protocol core, the agency and governance clients, the independent verifier.

The clients are imported lazily so that ``trace_sdk.protocol`` stays free of web3 and HTTP imports.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from trace_sdk.exceptions import (
    ChainError,
    ChainUnavailableError,
    ConflictError,
    ContractRevertError,
    DeliveryPendingError,
    FieldError,
    NotMemberError,
    ServiceError,
    ServiceUnavailableError,
    TraceError,
    ValidationError,
)

__all__ = [
    "AgencyClient",
    "ChainError",
    "ChainUnavailableError",
    "ConflictError",
    "ContractRevertError",
    "DeliveryPendingError",
    "FieldError",
    "GovernanceClient",
    "NotMemberError",
    "ServiceError",
    "ServiceUnavailableError",
    "SubmitReceipt",
    "TraceError",
    "ValidationError",
    "verify_pdf",
]

_LAZY = {
    "AgencyClient": "trace_sdk.client.agency",
    "SubmitReceipt": "trace_sdk.client.agency",
    "GovernanceClient": "trace_sdk.client.governance",
    "verify_pdf": "trace_sdk.verifier.checks",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trace_sdk' has no attribute {name!r}")
