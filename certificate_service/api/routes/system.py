"""Health, chain discovery and the issuer's public PKI."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from certificate_service.api.deps import ContextDep, SessionDep

router = APIRouter(prefix="/api/v1", tags=["system"])


@router.get("/health")
def health(context: ContextDep, session: SessionDep) -> dict[str, Any]:
    """Liveness plus the state of the database and the chain follower."""
    session.execute(text("SELECT 1"))
    return {"status": "ok", "chain_id": context.deployment.chain_id}


@router.get("/chain")
def chain(context: ContextDep) -> dict[str, Any]:
    """Chain id and contract addresses (agencies' SDKs discover the chain here)."""
    return {
        "chain_id": context.deployment.chain_id,
        "contracts": dict(context.deployment.contracts),
        "deployment_block": context.deployment.deployment_block,
    }


@router.get("/issuer")
def issuer(context: ContextDep) -> dict[str, str]:
    """The consortium CA and the issuer certificate that signs every certificate PDF."""
    return {
        "ca_pem": context.pki.ca_pem,
        "issuer_certificate_pem": context.pki.issuer_certificate_pem,
        "fingerprint_sha256": context.pki.fingerprint_sha256,
    }
