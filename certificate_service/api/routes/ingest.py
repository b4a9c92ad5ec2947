"""Ingestion route used by agencies' SDKs (signed with the agency's chain key)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
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


@router.post("/batches")
async def upload_batch(request: Request, context: ContextDep, session: SessionDep) -> dict[str, Any]:
    """Store the records, salts and proofs of a root the signing agency anchored (all or nothing, idempotent)."""
    signer, body = await read_signed_request(request)
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    return (await run_in_threadpool(_ingest, session, context, signer, payload)).as_json()


def _ingest(session: Session, context: ServiceContext, signer: str, payload: Any) -> IngestResult:
    authenticate_agency(context.chain, signer)
    try:
        return ingest_batch(session=session, chain=context.chain, signer=signer, payload=payload)
    except IntegrityError:
        # A concurrent identical upload won the race; the retry sees its rows and answers idempotently.
        session.rollback()
        return ingest_batch(session=session, chain=context.chain, signer=signer, payload=payload)
