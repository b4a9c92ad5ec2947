"""ASGI fast lane for warm public lookups (`GET /api/v1/verify/{query}`), in front of the FastAPI app.

A consumer's scan is by far the most frequent request, and a warm one is answered from memory
(:func:`~certificate_service.services.verification.cached_verification`). Routing it through FastAPI's
middleware, routing and dependency machinery cost more CPU than the answer itself, so this outermost layer
answers it directly with the same bytes and headers the route sends. Everything else, and every lookup that
is not warm or is malformed, goes on to the app unchanged (the route is the only place with the full
behaviour: database, chain, error answers, OpenAPI).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from certificate_service.errors import ServiceError
from certificate_service.services.verification import cached_verification

__all__ = ["VERIFY_PREFIX", "VerifyFastLane"]

VERIFY_PREFIX = "/api/v1/verify/"
_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


class VerifyFastLane:
    """Answer warm verification lookups before the app; pass everything else through."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] != "GET" or not path.startswith(VERIFY_PREFIX):
            await self.app(scope, receive, send)
            return
        query = unquote(path[len(VERIFY_PREFIX) :])
        context = getattr(scope["app"].state, "context", None) if "app" in scope else None
        view = None
        if context is not None and query and "/" not in query:
            try:
                view = cached_verification(context=context, query=query)
            except ServiceError:
                view = None  # malformed: the route answers with the error
        if view is None:
            await self.app(scope, receive, send)
            return
        body = view.json_bytes()
        headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": view.http_status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
