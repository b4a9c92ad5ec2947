"""Request body size limit (ASGI middleware): a 413 JSON answer before a large body is read."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException

__all__ = ["BodySizeLimit", "limit_path"]

_PATH_LIMITS: dict[str, int] = {}


def limit_path(path: str, max_bytes: int) -> None:
    """Give requests to exactly ``path`` (trailing slash ignored) their own body limit in every BodySizeLimit.

    Routers call it when imported (e.g. a 5 MB upload endpoint under the service-wide limit); a ``per_path``
    entry passed to the middleware itself wins.
    """
    _PATH_LIMITS[_key(path)] = max_bytes


def _key(path: str) -> str:
    """The registry key of a path (trailing slash ignored)."""
    return path.rstrip("/") or "/"


class _TooLarge(HTTPException):
    """Raised from ``receive`` while a body without Content-Length streams past the limit.

    An HTTPException, so that FastAPI's body parsing (forms, JSON) lets it through as a 413 instead of
    turning it into a 400 "error parsing the body".
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


class BodySizeLimit:
    """Refuse bodies above ``max_bytes`` (by Content-Length, or while streaming when it is absent)."""

    def __init__(self, app: Any, max_bytes: int, per_path: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = per_path or {}

    def _limit(self, path: str) -> int:
        """The body limit of requests to ``path``."""
        key = _key(path)
        if path in self.per_path or key in self.per_path:
            return self.per_path.get(path, self.per_path.get(key, self.max_bytes))
        return _PATH_LIMITS.get(key, self.max_bytes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._reject(send, limit)
                return
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message  # type: ignore[no-any-return]

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(send, limit)

    @staticmethod
    async def _reject(send: Any, limit: int) -> None:
        body = json.dumps({
            "error": "payload_too_large",
            "message": f"request body exceeds the limit of {limit} bytes",
        }).encode()
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})
