"""The text an agency signs (EIP-191 personal message) to authenticate a request to the certificate service.

Pure: it only builds the message; signing and recovery live with the clients and the service.
"""

from __future__ import annotations

import hashlib

__all__ = [
    "ADDRESS_HEADER",
    "MAX_CLOCK_SKEW_S",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "request_message",
]

ADDRESS_HEADER = "X-TraceChain-Address"
TIMESTAMP_HEADER = "X-TraceChain-Timestamp"
SIGNATURE_HEADER = "X-TraceChain-Signature"
MAX_CLOCK_SKEW_S = 300


def request_message(method: str, path_with_query: str, timestamp: int, body: bytes) -> str:
    """`tracechain-request/v1`, method, path (with query), unix timestamp and SHA-256 of the body, one per line."""
    return "\n".join(
        [
            "tracechain-request/v1",
            method.upper(),
            path_with_query,
            str(int(timestamp)),
            hashlib.sha256(body).hexdigest(),
        ]
    )
