"""What every request handler of the service shares: settings, database, chain, issuer PKI."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from certificate_service.core.config import DeploymentInfo, Settings
from certificate_service.pki import IssuerPKI
from certificate_service.services.verification_counter import VerificationCounter
from trace_sdk.client.contracts import load_artifact
from trace_sdk.verifier.chain_reader import ChainReader

__all__ = ["ServiceContext"]

log = logging.getLogger(__name__)


@dataclass
class ServiceContext:
    """Long-lived objects of one service process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    deployment: DeploymentInfo
    w3: Web3
    pki: IssuerPKI
    chain: ChainReader
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    verification_counter: VerificationCounter = field(init=False)

    def __post_init__(self) -> None:
        self.verification_counter = VerificationCounter(
            self.sessions, flush_interval_s=self.settings.VERIFY_COUNT_FLUSH_S
        )

    def contract(self, name: str) -> Any:
        """A web3 contract object for ConsortiumRegistry or TraceAnchor."""
        return self.w3.eth.contract(address=self.deployment.contracts[name], abi=load_artifact(name)["abi"])

    def close(self) -> None:
        """Stop the background threads, write the pending verification counts, close the database."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.verification_counter.stop()
        self.engine.dispose()
