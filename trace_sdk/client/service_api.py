"""HTTP calls from an agency to the certificate service, signed with the agency's chain key."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from trace_sdk.exceptions import ServiceError, ServiceUnavailableError
from trace_sdk.protocol.request_signing import (
    ADDRESS_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_message,
)

__all__ = ["ServiceClient", "signed_headers"]


def signed_headers(account: LocalAccount, method: str, path_with_query: str, body: bytes) -> dict[str, str]:
    """Headers that authenticate a request as coming from ``account`` (EIP-191 over the request digest)."""
    timestamp = int(time.time())
    message = request_message(method, path_with_query, timestamp, body)
    signature = Account.sign_message(encode_defunct(text=message), account.key).signature
    return {
        ADDRESS_HEADER: account.address,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature.to_0x_hex(),
    }


class ServiceClient:
    """The certificate service's agency-facing API."""

    def __init__(self, base_url: str, account: LocalAccount, *, timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._account = account
        self._http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, *, body: bytes | None = None, params: dict[str, str] | None = None,
                 signed: bool = False, parse: Callable[[bytes], Any] = json.loads) -> Any:
        """Send ``body`` (JSON bytes) and return the response parsed by ``parse``."""
        path_with_query = path + ("?" + urlencode(params) if params else "")
        content = b"" if body is None else body
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if signed:
            headers.update(signed_headers(self._account, method, path_with_query, content))
        try:
            response = self._http.request(method, self.base_url + path_with_query, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"certificate service unreachable at {self.base_url}: {exc}") from exc
        if response.status_code >= 500:
            raise ServiceUnavailableError(
                f"certificate service error {response.status_code} at {path}: {response.text[:300]}"
            )
        if response.status_code >= 400:
            try:
                detail = response.json()
            except ValueError:
                detail = {"message": response.text[:500]}
            reason = detail.get("message") or detail.get("detail") or response.reason_phrase
            raise ServiceError(response.status_code, str(reason), details=detail)
        return parse(response.content)

    def chain_info(self) -> dict[str, Any]:
        """`GET /api/v1/chain`: chain id and contract addresses."""
        return self._request("GET", "/api/v1/chain")

    def upload_batch(self, body: bytes) -> dict[str, Any]:
        """`POST /api/v1/batches`: the records, salts and proofs of a root this agency anchored (a JSON body).

        The answer holds only strings and small integers, which orjson reads exactly as `json.loads`.
        """
        return self._request("POST", "/api/v1/batches", body=body, signed=True, parse=orjson.loads)

    def trace(self, trace_code: str, direction: str) -> dict[str, Any]:
        """`GET /api/v1/trace/{trace_code}` as a member agency (full data)."""
        from urllib.parse import quote

        return self._request(
            "GET", f"/api/v1/trace/{quote(trace_code, safe='')}", params={"direction": direction}, signed=True
        )
