"""Certificates for enterprises (Bearer API token): list them, download a signed PDF, read its payload."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from certificate_service.api.deps import ContextDep, SessionDep
from certificate_service.db.models import Enterprise
from certificate_service.services.certificates import (
    MAX_LIST_LIMIT,
    CertificateDocument,
    async_certificate_document,
    embedded_payload,
    list_certificates,
)
from certificate_service.services.enterprise_auth import authenticate_enterprise

__all__ = ["CertificateSummaryPublic", "CertificatesPublic", "router"]

router = APIRouter(prefix="/api/v1/certificates", tags=["certificates"])

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="EnterpriseToken",
    description="The enterprise API token printed by `tracechain enterprise add` (tc_…).",
)

HideQuery = Annotated[
    list[str] | None,
    Query(
        description="Fields to hide besides contact and extensions: top-level names or dotted paths, "
        "comma-separated (e.g. counterparty,location).",
    ),
]


def current_enterprise(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Enterprise:
    """The enterprise whose Bearer token the request carries (401 otherwise)."""
    return authenticate_enterprise(session=session, token=credentials.credentials if credentials else None)


CurrentEnterprise = Annotated[Enterprise, Depends(current_enterprise)]


class CertificateSummaryPublic(BaseModel):
    """One certificate in an enterprise's list."""

    model_config = ConfigDict(from_attributes=True)

    certificate_id: str
    record_id: str
    trace_code: str
    product_name: str | None
    lot: str | None
    event_time: str
    biz_step: str | None
    issued_at: datetime


class CertificatesPublic(BaseModel):
    """A page of certificates and the number matching the filters."""

    model_config = ConfigDict(from_attributes=True)

    data: list[CertificateSummaryPublic]
    count: int = Field(description="Total number of matching certificates (all pages).")


def _document_headers(document: CertificateDocument) -> dict[str, str]:
    return {
        "X-Certificate-Id": document.certificate_id,
        "X-Certificate-Hash": document.certificate_hash,
        "X-PDF-SHA256": document.pdf_sha256,
        "X-Certificate-Hidden-Fields": document.variant,
        "Cache-Control": "private, no-store",
    }


@router.get("", response_model=CertificatesPublic)
def list_own_certificates(
    session: SessionDep,
    enterprise: CurrentEnterprise,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    trace_code: Annotated[str | None, Query(max_length=128)] = None,
    date_from: Annotated[date | None, Query(alias="from", description="First event date, inclusive.")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Last event date (inclusive).")] = None,
) -> CertificatesPublic:
    """The caller's certificates, newest event first, filtered by trace code and event date."""
    page = list_certificates(
        session=session,
        enterprise_uscc=enterprise.uscc,
        limit=limit,
        offset=offset,
        trace_code=trace_code,
        date_from=date_from,
        date_to=date_to,
    )
    return CertificatesPublic.model_validate(page)


@router.get(
    "/{certificate_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The signed certificate PDF."}},
)
async def download_certificate_pdf(
    certificate_id: str,
    context: ContextDep,
    session: SessionDep,
    enterprise: CurrentEnterprise,
    hide: HideQuery = None,
) -> Response:
    """The signed PDF of one of the caller's certificates (one stored file per set of hidden fields)."""
    document = await async_certificate_document(
        session=session, context=context, enterprise_uscc=enterprise.uscc, certificate_id=certificate_id, hide=hide
    )
    headers = _document_headers(document)
    headers["Content-Disposition"] = f'attachment; filename="{document.certificate_id}.pdf"'
    return Response(document.pdf, media_type="application/pdf", headers=headers)


@router.get(
    "/{certificate_id}/payload",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}, "description": "The RFC 8785 payload."}},
)
async def certificate_payload(
    certificate_id: str,
    context: ContextDep,
    session: SessionDep,
    enterprise: CurrentEnterprise,
    hide: HideQuery = None,
) -> Response:
    """The machine-readable payload (RFC 8785 JSON) exactly as signed into the PDF of that variant."""
    document = await async_certificate_document(
        session=session, context=context, enterprise_uscc=enterprise.uscc, certificate_id=certificate_id, hide=hide
    )
    headers = _document_headers(document)
    return Response(embedded_payload(document.pdf), media_type="application/json", headers=headers)
