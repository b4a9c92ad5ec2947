"""Authenticate a request signed by an agency's chain key (see trace_sdk.protocol.request_signing)."""

from __future__ import annotations

import time

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_address, to_checksum_address

from certificate_service.errors import Forbidden, Unauthorized, Unavailable
from trace_sdk.client.contracts import ROLES
from trace_sdk.exceptions import ChainUnavailableError
from trace_sdk.protocol.request_signing import MAX_CLOCK_SKEW_S, request_message
from trace_sdk.verifier.chain_reader import ChainReader

__all__ = ["authenticate_agency", "recover_signer"]



def recover_signer(
    *, method: str, path_with_query: str, body: bytes, address: str | None, timestamp: str | None,
    signature: str | None, now: float | None = None,
) -> str:
    """The checksummed address that signed this request; 401 when anything does not add up."""
    if not address or not timestamp or not signature:
        raise Unauthorized("request is not signed: X-TraceChain-Address, -Timestamp and -Signature are required")
    if not is_address(address):
        raise Unauthorized("X-TraceChain-Address is not an address")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Unauthorized("X-TraceChain-Timestamp must be a unix time in seconds")
    skew = abs((now or time.time()) - int(timestamp))
    if skew > MAX_CLOCK_SKEW_S:
        raise Unauthorized(f"request timestamp is {skew:.0f}s away from the service clock (max {MAX_CLOCK_SKEW_S}s)")
    message = request_message(method, path_with_query, int(timestamp), body)
    try:
        signer = Account.recover_message(encode_defunct(text=message), signature=signature)
    except Exception:
        raise Unauthorized("X-TraceChain-Signature is not a valid signature") from None
    if signer.lower() != address.lower():
        raise Unauthorized("signature does not match X-TraceChain-Address")
    return to_checksum_address(signer)


def authenticate_agency(chain: ChainReader, signer: str) -> str:
    """Require the signer to be an active MEMBER right now, read from the chain (fail closed)."""
    try:
        is_member = chain.has_role(signer, ROLES["MEMBER"])
    except ChainUnavailableError as exc:
        raise Unavailable(f"cannot check membership: {exc}") from None
    if not is_member:
        raise Forbidden(f"{signer} is not an active member of the consortium")
    return signer
