"""A database belongs to one chain deployment: stamp it at first start, refuse another deployment later."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certificate_service.core.config import DeploymentError, DeploymentInfo
from certificate_service.db import begin_write
from certificate_service.db.models import DeploymentStamp

__all__ = ["ensure_deployment_stamp"]


def ensure_deployment_stamp(*, session: Session, deployment: DeploymentInfo) -> None:
    """Stamp an unstamped database; raise DeploymentError if it was stamped for other contracts (fail closed)."""
    begin_write(session)
    stamp = session.get(DeploymentStamp, 1)
    if stamp is None:
        session.add(DeploymentStamp(
            id=1,
            chain_id=deployment.chain_id,
            registry_address=deployment.registry_address,
            anchor_address=deployment.anchor_address,
        ))
        try:
            session.commit()
            return
        except IntegrityError:  # another worker stamped it first: compare with its stamp
            session.rollback()
            stamp = session.get(DeploymentStamp, 1)
            assert stamp is not None
    ours = (deployment.chain_id, deployment.registry_address, deployment.anchor_address)
    if (stamp.chain_id, stamp.registry_address, stamp.anchor_address) != ours:
        raise DeploymentError(
            f"the database belongs to another deployment (chain {stamp.chain_id}, ConsortiumRegistry "
            f"{stamp.registry_address}); this service is configured for chain {deployment.chain_id}, "
            f"ConsortiumRegistry {deployment.registry_address}. Point TRACECHAIN_DATABASE_URL at a fresh database."
        )
    session.rollback()
