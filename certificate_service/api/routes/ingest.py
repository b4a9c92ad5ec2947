"""Ingestion route used by agencies' SDKs (signed with the agency's chain key)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certificate_service.api.deps import ContextDep, SessionDep
from certificate_service.context import ServiceContext
from certificate_service.errors import BadRequest
from certificate_service.services.agency_auth import authenticate_agency, recover_signer
from certificate_service.services.ingestion import IngestResult, ingest_batch
from trace_sdk.protocol.request_signing import ADDRESS_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

router = APIRouter(prefix="/api/v1", tags=["ingestion"])


async def read_signed_request(request: Request) -> tuple[str, bytes]:
    """The address that signed this request (not yet checked for membership) and the raw body it signed."""
    body = await request.body()
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    signer = recover_signer(
        method=request.method,
        path_with_query=path,
        body=body,
        address=request.headers.get(ADDRESS_HEADER),
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        signature=request.headers.get(SIGNATURE_HEADER),
    )
    return signer, body


def parse_json_body(body: bytes) -> Any:
    """The body's JSON exactly as `json.loads` reads it (400 if it is not JSON), read by orjson when that is
    the same.

    orjson reads every text it accepts as json.loads does, but for integers beyond 64 bits, which it reads
    as floats (json.loads: as ints). Such a float exceeds 2**63 in magnitude, and orjson writes every float
    of 1e16 or more with an exponent (``e+``): a value whose orjson form holds no ``e+`` has none. Whatever
    orjson refuses (a BOM, unpaired surrogates, NaN, very deep nesting) or writes with ``e+`` (possibly
    inside a string) is read by json.loads.
    """
    try:
        payload = orjson.loads(body)
        if not _has_exponent(orjson.dumps(payload)):
            return payload
    except (ValueError, TypeError):  # orjson.JSONDecodeError, orjson.JSONEncodeError
        pass
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None


def _has_exponent(data: bytes) -> bool:
    """Whether ``data`` holds ``e+`` (found by its rare ``+``: ``e`` is common in hex, and a two-byte search
    for ``e+`` takes several times longer)."""
    plus = data.find(b"+")
    while plus != -1:
        if data[plus - 1 : plus] == b"e":
            return True
        plus = data.find(b"+", plus + 1)
    return False


@router.post("/batches", response_model=dict[str, Any])
async def upload_batch(request: Request, context: ContextDep, session: SessionDep) -> Response:
    """Store the records, salts and proofs of a root the signing agency anchored (all or nothing, idempotent)."""
    signer, body = await read_signed_request(request)
    return await run_in_threadpool(_ingest, session, context, signer, body)


def _ingest(session: Session, context: ServiceContext, signer: str, body: bytes) -> Response:
    payload = parse_json_body(body)
    authenticate_agency(context.chain, signer)
    try:
        result = ingest_batch(session=session, chain=context.chain, signer=signer, payload=payload)
    except IntegrityError:
        # A concurrent identical upload won the race; the retry sees its rows and answers idempotently.
        session.rollback()
        result = ingest_batch(session=session, chain=context.chain, signer=signer, payload=payload)
    return _json_response(result)


def _json_response(result: IngestResult) -> Response:
    """The answer as JSONResponse would write it: its strings and integers are written alike by orjson."""
    return Response(orjson.dumps(result.as_json()), media_type="application/json")
