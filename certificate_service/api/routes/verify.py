"""Public certificate verification (no login): look up by id or hash, or upload the PDF."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from certificate_service.api.deps import ContextDep, SessionDep
from certificate_service.errors import PayloadTooLarge
from certificate_service.limits import limit_path
from certificate_service.services.verification import (
    MAX_UPLOAD_BYTES,
    verify_query,
    verify_upload,
)

__all__ = [
    "MULTIPART_SLACK",
    "CheckPublic",
    "VerificationCountPublic",
    "VerificationPublic",
    "read_upload",
    "router",
]

router = APIRouter(prefix="/api/v1/verify", tags=["verification"])

MULTIPART_SLACK = 64 * 1024
"""Room for the multipart envelope around a file of the largest accepted size."""
limit_path("/api/v1/verify", MAX_UPLOAD_BYTES + MULTIPART_SLACK)

_NO_STORE = {"Cache-Control": "no-store"}


class CheckPublic(BaseModel):
    """The outcome of one named check (names shared with `tracechain verify`, plus `registry_match`)."""

    name: str
    status: str = Field(description="valid, invalid, error (undecided) or skipped")
    message: str


class VerificationCountPublic(BaseModel):
    """The anti-counterfeit counter of a certificate."""

    count: int = Field(description="Public verifications so far, this one included.")
    first_verified_at: str | None = Field(description="When the first public verification happened (UTC+8).")


class VerificationPublic(BaseModel):
    """A verification answer (also the body of 404 not_found and 503 error answers)."""

    valid: bool
    status: str = Field(description="valid, revoked, recalled, invalid or not_found")
    checks: list[CheckPublic]
    certificate: dict[str, Any] = Field(description="Public certificate fields: no contact, extensions, doc numbers.")
    anchor: dict[str, Any] | None = Field(description="tx_hash, block_number, block_time, agency, chain_id, contracts")
    verification: VerificationCountPublic | None
    warning: str | None = Field(default=None, description="Present when the count exceeds VERIFY_WARN_COUNT.")


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": VerificationPublic, "description": "A decided verdict (valid, revoked, recalled, invalid)."},
    404: {"model": VerificationPublic, "description": "No such certificate (status not_found)."},
    503: {
        "model": VerificationPublic,
        "description": "Invalid only because checks could not be decided (chain unreachable): retry later.",
    },
}


def read_upload(file: UploadFile) -> bytes:
    """The uploaded bytes, refusing more than the upload limit without reading them all (413)."""
    if file.size is not None and file.size > MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"the PDF exceeds {MAX_UPLOAD_BYTES} bytes", limit=MAX_UPLOAD_BYTES)
    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"the PDF exceeds {MAX_UPLOAD_BYTES} bytes", limit=MAX_UPLOAD_BYTES)
    return data


@router.get("/{query}", response_class=JSONResponse, responses=_RESPONSES)
async def verify_lookup(query: str, context: ContextDep) -> Response:
    """Verify by certificate id (typed forms accepted), 0x certificate/record hash, or PDF SHA-256; counts it."""
    # Warm lookups never get here (VerifyFastLane answers them); one worker-thread hop for the rest.
    view = await run_in_threadpool(verify_query, context=context, query=query)
    return Response(view.json_bytes(), status_code=view.http_status, media_type="application/json", headers=_NO_STORE)


@router.post("", response_class=JSONResponse, responses={**_RESPONSES, 413: {"description": "File over 5 MB."}})
def verify_uploaded_pdf(
    context: ContextDep,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="The certificate PDF (at most 5 MB).")],
) -> JSONResponse:
    """Verify an uploaded certificate PDF: signature, chain facts and the registry (strict on the file's bytes)."""
    view = verify_upload(session=session, context=context, pdf=read_upload(file))
    return Response(view.json_bytes(), status_code=view.http_status, media_type="application/json", headers=_NO_STORE)
