"""Fixtures of the certificate suites: a fresh consortium on the session Anvil, a real service over HTTP
(uvicorn in a thread) on the parametrized test database, real records submitted through AgencyClient, and
registered enterprises with their API tokens.

Loaded by ``pytest_plugins`` from tests/service/test_certificates.py and test_enterprise_access.py.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_account import Account
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from certificate_service.core.config import DeploymentInfo, Settings
from certificate_service.db.engine import create_db_engine, create_session_factory
from certificate_service.enterprises import register_enterprise
from certificate_service.indexer import ChainIndexer
from certificate_service.main import create_app
from certificate_service.migrations import upgrade_database
from certificate_service.pki import IssuerPKI
from chain_node.anvil import AnvilProcess, free_port
from chain_node.deploy import Deployment, MemberSpec, deploy_contracts
from tests.support.service import write_deployment
from trace_sdk.client.agency import AgencyClient, SubmitReceipt
from trace_sdk.client.governance import GovernanceClient
from trace_sdk.protocol.identifiers import uscc_check_char

__all__ = [
    "ENTERPRISE_A",
    "ENTERPRISE_B",
    "CertWorld",
    "cert_world",
    "cert_world_factory",
    "make_record",
    "uscc",
]

ISSUER_NAME, ISSUER_CODE = "上海市大数据中心", "SHBDC"
AGENCY_NAME, AGENCY_CODE = "上海市农业农村委员会", "SHAGRI"


def uscc(body: str) -> str:
    """A valid USCC: the 17-character ``body`` plus its GB 32100-2015 check character."""
    return body + uscc_check_char(body)


ENTERPRISE_A = (uscc("91310117MA1FL8XQ3"), "上海松江肉类加工有限公司")
ENTERPRISE_B = (uscc("91310000MA7CK2YB4"), "上海浦东冷链物流有限公司")


def make_record(
    record_id: str,
    trace_code: str,
    enterprise: tuple[str, str] = ENTERPRISE_A,
    *,
    event_time: str = "2026-03-01T08:30:00+08:00",
    inputs: list[str] | None = None,
    biz_step: str = "processing",
    lot: str | None = None,
) -> dict[str, Any]:
    """A complete trace-record/v1 with personal data (contact), extensions, documents and a counterparty."""
    record: dict[str, Any] = {
        "schema": "trace-record/v1",
        "record_id": record_id,
        "trace_code": trace_code,
        "event_type": "TransformationEvent" if inputs else "ObjectEvent",
        "biz_step": biz_step,
        "disposition": "conformant",
        "event_time": event_time,
        "product": {
            "name": "冷鲜猪肉",
            "category": "meat",
            "lot": lot or f"LOT-{record_id}",
            "quantity": 120.5,
            "unit": "kg",
            "production_date": event_time[:10],
        },
        "enterprise": {"name": enterprise[1], "uscc": enterprise[0], "role": "processor"},
        "location": {"name": "松江加工车间", "address": "上海市松江区车墩镇 88 号", "region_code": "310117"},
        "counterparty": {"name": "上海某超市有限公司", "uscc": ENTERPRISE_B[0]},
        "documents": [
            {"type": "quarantine_certificate", "number": f"QC-{record_id}", "result": "pass"},
            {"type": "inspection_report", "number": f"IR-{record_id}", "result": "pass"},
        ],
        "contact": {"person": "张三", "phone": "13800000000"},
        "extensions": {"line_no": 3, "shift": "night"},
    }
    if inputs:
        record["inputs"] = inputs
    return record


@dataclass
class CertWorld:
    """A consortium, a running certificate service and the agency's SDK client, on one test database."""

    w3: Web3
    rpc_url: str
    deployment: Deployment
    keys: dict[str, str]
    data_dir: Path
    database_url: str
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    service_url: str
    fingerprint: str
    http: httpx.Client
    outbox_dir: Path
    receipts: dict[str, SubmitReceipt] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    app: Any = None
    """The running FastAPI app (its ``state.context`` is the service's live context)."""
    server: _ThreadedServer | None = None
    _clients: list[AgencyClient] = field(default_factory=list)
    _indexers: list[ChainIndexer] = field(default_factory=list)

    def stop_service(self) -> None:
        """Stop the service as SIGTERM would (its lifespan ends: pending counts are written)."""
        if self.server is not None:
            self.server.stop()

    def address(self, name: str) -> str:
        """The checksummed address of a consortium key."""
        return str(Account.from_key(self.keys[name]).address)

    def agency_client(self, name: str = "agency") -> AgencyClient:
        """The real SDK client of a member, pointed at the running service."""
        client = AgencyClient(
            self.service_url,
            self.rpc_url,
            self.keys[name],
            outbox_path=self.outbox_dir / f"{name}-outbox.sqlite3",
            retries=2,
            backoff_s=0.05,
        )
        self._clients.append(client)
        return client

    def submit(self, records: list[dict[str, Any]], *, batch_size: int = 1000) -> list[SubmitReceipt]:
        """Submit records through AgencyClient (anchor on chain, upload to the service)."""
        receipts = self.agency_client().submit(records, batch_size=batch_size)
        self.receipts.update({r.record_id: r for r in receipts})
        return receipts

    def register_issuer(self) -> None:
        """Register the service's certificate fingerprint for the ISSUER through M-of-N governance."""
        proposer = GovernanceClient(self.rpc_url, self.keys["issuer"], self.deployment.registry)
        proposal_id = proposer.propose_issuer_fingerprint(self.address("issuer"), self.fingerprint)
        if not proposer.proposal_executed(proposal_id):
            GovernanceClient(self.rpc_url, self.keys["agency"], self.deployment.registry).vote(proposal_id)
        assert proposer.issuer_fingerprint(self.address("issuer")) == self.fingerprint

    def index(self) -> int:
        """Let the chain indexer catch up with the chain (the service runs without its own indexer)."""
        if not self._indexers:
            info = DeploymentInfo(
                chain_id=self.deployment.chain_id,
                rpc_url=self.rpc_url,
                contracts={"ConsortiumRegistry": self.deployment.registry, "TraceAnchor": self.deployment.anchor},
                deployment_block=self.deployment.deployment_block,
            )
            self._indexers.append(ChainIndexer(self.sessions, self.w3, info, confirmations=0))
        return self._indexers[0].run_once()

    def enterprise(self, which: tuple[str, str]) -> str:
        """Register an enterprise (once) and return its API token."""
        if which[0] not in self.tokens:
            with self.sessions() as session:
                self.tokens[which[0]] = register_enterprise(session=session, uscc=which[0], name=which[1])
        return self.tokens[which[0]]

    def auth(self, which: tuple[str, str]) -> dict[str, str]:
        """The Authorization header of an enterprise."""
        return {"Authorization": f"Bearer {self.enterprise(which)}"}

    def close(self) -> None:
        for client in self._clients:
            client.close()
        for indexer in self._indexers:
            indexer.close()
        self.http.close()
        self.engine.dispose()


def _fund(w3: Web3, address: str) -> None:
    w3.provider.make_request("anvil_setBalance", [address, hex(10**22)])  # type: ignore[arg-type]


class _ThreadedServer:
    """uvicorn serving one app on 127.0.0.1 from a daemon thread."""

    def __init__(self, app: Any, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{port}", daemon=True)

    def start(self, timeout_s: float = 60.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the certificate service did not start (see the captured log)")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


WorldFactory = Callable[..., CertWorld]


@pytest.fixture
def cert_world_factory(anvil: AnvilProcess, w3: Web3, database_url: str, tmp_path: Path) -> Iterator[WorldFactory]:
    """Build the world: deploy, (optionally) register the issuer fingerprint, start the service."""
    made: list[tuple[CertWorld, _ThreadedServer]] = []

    def build(*, register_issuer: bool = True) -> CertWorld:
        keys = {name: "0x" + secrets.token_hex(32) for name in ("deployer", "agency", "regulator", "issuer")}
        for key in keys.values():
            _fund(w3, Account.from_key(key).address)
        deployment = deploy_contracts(
            w3,
            keys["deployer"],
            [
                MemberSpec(Account.from_key(keys["agency"]).address, AGENCY_NAME, AGENCY_CODE, "MEMBER"),
                MemberSpec(
                    Account.from_key(keys["regulator"]).address,
                    "上海市市场监督管理局",
                    "SHSAMR",
                    ["MEMBER", "REGULATOR"],
                ),
                MemberSpec(Account.from_key(keys["issuer"]).address, ISSUER_NAME, ISSUER_CODE, ["MEMBER", "ISSUER"]),
            ],
            threshold=0,
        )
        data_dir = tmp_path / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        write_deployment(data_dir, deployment, anvil.rpc_url)
        fingerprint = IssuerPKI.load_or_create(data_dir).fingerprint_sha256
        port = free_port()
        settings = Settings(
            DATA_DIR=data_dir,
            DATABASE_URL=database_url,
            RPC_URL=anvil.rpc_url,
            HTTP_PORT=port,
            PUBLIC_URL=f"http://127.0.0.1:{port}",
        )
        engine = create_db_engine(database_url)
        upgrade_database(engine)
        world = CertWorld(
            w3=w3,
            rpc_url=anvil.rpc_url,
            deployment=deployment,
            keys=keys,
            data_dir=data_dir,
            database_url=database_url,
            settings=settings,
            engine=engine,
            sessions=create_session_factory(engine),
            service_url=settings.PUBLIC_URL,
            fingerprint=fingerprint,
            http=httpx.Client(base_url=settings.PUBLIC_URL, timeout=60),
            outbox_dir=tmp_path / "outboxes",
        )
        world.outbox_dir.mkdir(exist_ok=True)
        if register_issuer:
            world.register_issuer()
        world.app = create_app(settings, run_indexer=False)
        server = world.server = _ThreadedServer(world.app, port)
        made.append((world, server))
        server.start()
        return world

    yield build
    for world, server in made:
        server.stop()
        world.close()


@pytest.fixture
def cert_world(cert_world_factory: WorldFactory) -> CertWorld:
    """The default world: issuer registered, service up, nothing submitted yet."""
    return cert_world_factory()
