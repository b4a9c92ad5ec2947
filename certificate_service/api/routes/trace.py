"""Trace a lot (溯源倒查): full records for a request signed by an active member, desensitised for the public."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from certificate_service.api.deps import ContextDep, SessionDep
from certificate_service.api.routes.ingest import read_signed_request
from certificate_service.errors import Unauthorized
from certificate_service.services.agency_auth import recover_signer
from certificate_service.services.tracing import Direction, trace_graph
from trace_sdk.protocol.request_signing import ADDRESS_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/trace", tags=["trace"])

_SIGNING_HEADERS = (ADDRESS_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER)


async def _signer(request: Request) -> str | None:
    """The signing agency's address, or None for an unsigned (public) request; 401 for a bad signature."""
    if not any(name in request.headers for name in _SIGNING_HEADERS):
        return None
    try:
        signer, _body = await read_signed_request(request)
    except Unauthorized:
        # The SDK signs the path as it sent it, percent-encoded (trace codes may hold "/" or ":").
        raw = request.scope.get("raw_path")
        raw_path = raw.decode("latin-1") if isinstance(raw, bytes) else None
        if not raw_path or raw_path == request.url.path:
            raise
        signer = recover_signer(
            method=request.method,
            path_with_query=raw_path + (f"?{request.url.query}" if request.url.query else ""),
            body=await request.body(),
            address=request.headers.get(ADDRESS_HEADER),
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            signature=request.headers.get(SIGNATURE_HEADER),
        )
    return signer


@router.get("/{trace_code:path}")
async def trace_lot(
    trace_code: str,
    request: Request,
    context: ContextDep,
    session: SessionDep,
    direction: Annotated[Direction, Query(description="backward = 溯源 (sources), forward = 追踪 (recipients)")] = (
        "forward"
    ),
) -> JSONResponse:
    """The lot graph from ``trace_code``: nodes (records, enterprises, recalled) and edges (from → to)."""
    signer = await _signer(request)
    graph = await run_in_threadpool(
        trace_graph,
        session=session,
        chain=context.chain,
        trace_code=trace_code,
        direction=direction,
        signer=signer,
    )
    body: dict[str, Any] = graph.to_json()
    headers = {"Cache-Control": "private, no-store"} if graph.full else {"Cache-Control": "no-cache"}
    return JSONResponse(body, headers=headers)
