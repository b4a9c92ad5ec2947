"""Service-suite fixtures: a parametrized empty database (SQLite, and PostgreSQL when configured),
migrated engines, freshly deployed contracts with helpers to drive them, and an indexer factory."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract import Contract

from certificate_service.core.config import DeploymentInfo
from certificate_service.db.engine import create_db_engine, create_session_factory
from certificate_service.indexer import ChainIndexer
from certificate_service.migrations import upgrade_database
from chain_node.anvil import AnvilProcess
from chain_node.deploy import MemberSpec, deploy_contracts
from trace_sdk.client.contracts import load_artifact

PG_ENV = "TRACECHAIN_TEST_DATABASE_URL"
ROLE_MEMBER, ROLE_REGULATOR, ROLE_ISSUER = 1, 2, 4
# Accounts 12..19 of the session Anvil are left to this suite (other suites start at 0).
_FIRST_KEY = 12

_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"{PG_ENV} not set"),
        ],
    ),
]


# --- databases ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db_pg_module_url() -> Iterator[str]:
    """A PostgreSQL database created for this test module (random name) and dropped after it."""
    server_url = make_url(os.environ[PG_ENV])
    name = f"tracechain_test_{secrets.token_hex(6)}"
    admin = create_db_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield server_url.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _reset_pg_schema(url: str) -> None:
    """Drop and recreate the public schema: the module database is empty again."""
    engine = create_db_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(params=_BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """The URL of an EMPTY database: a fresh SQLite file, or the module's PostgreSQL database, reset."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'service.db'}"
    url: str = request.getfixturevalue("db_pg_module_url")
    _reset_pg_schema(url)
    return url


@pytest.fixture
def db_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the migrated database."""
    engine = create_db_engine(database_url)
    upgrade_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db_session_factory(db_engine: Engine) -> sessionmaker[Session]:
    """A session factory on the migrated database."""
    return create_session_factory(db_engine)


# --- chain ----------------------------------------------------------------------------------------


def deploy_consortium(
    w3: Web3,
    deployer_key: str,
    members: list[tuple[str, str, str, int]],
    *,
    proposal_lifetime_blocks: int = 1000,
) -> DeploymentInfo:
    """Deploy ConsortiumRegistry + TraceAnchor with ``members`` (address, name, code, roles)."""
    deployment = deploy_contracts(
        w3,
        deployer_key,
        members=[MemberSpec(address, name, code, roles) for address, name, code, roles in members],
        threshold=0,
        proposal_lifetime_blocks=proposal_lifetime_blocks,
        allowed_accounts=(),
    )
    return DeploymentInfo(
        chain_id=deployment.chain_id,
        rpc_url=w3.provider.endpoint_uri,  # type: ignore[attr-defined]
        contracts={"ConsortiumRegistry": deployment.registry, "TraceAnchor": deployment.anchor},
        deployment_block=deployment.deployment_block,
    )


@dataclass
class ConsortiumChain:
    """Freshly deployed contracts plus helpers that send transactions from unlocked Anvil accounts."""

    w3: Web3
    deployment: DeploymentInfo
    registry: Contract
    anchor: Contract
    agency: str
    regulator: str
    issuer: str
    spare: list[str] = field(default_factory=list)

    def send(self, call: Any, sender: str) -> dict[str, Any]:
        """Transact ``call`` from ``sender``; returns the (successful) receipt."""
        receipt = self.w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
        assert receipt["status"] == 1, receipt
        return dict(receipt)

    def anchor_batch(self, *, count: int = 1, sender: str | None = None) -> tuple[str, str]:
        """Anchor a single-leaf batch; returns (root, record_hash) as 0x hex."""
        record_hash = secrets.token_bytes(32)
        root = Web3.keccak(record_hash)
        self.send(self.anchor.functions.anchorBatch(root, count, 1), sender or self.agency)
        return root.to_0x_hex(), "0x" + record_hash.hex()

    def revoke(self, root: str, record_hash: str, reason: str = "wrong lot", sender: str | None = None) -> None:
        """Revoke the single record of a single-leaf batch."""
        call = self.anchor.functions.revokeRecord(root, record_hash, [], reason)
        self.send(call, sender or self.agency)

    def recall(self, trace_code: str, reason: str = "contamination") -> str:
        """Recall a lot as the regulator; returns the trace-code hash."""
        code_hash = Web3.keccak(text=trace_code)
        self.send(self.anchor.functions.recallLot(code_hash, reason), self.regulator)
        return code_hash.to_0x_hex()

    def govern(self, function: str, *args: Any) -> None:
        """Propose as the first active MEMBER we control, then vote YES with the others until executed."""
        registry = self.registry.functions
        voters = [
            a for a in (self.agency, self.regulator, self.issuer, *self.spare) if registry.isActiveMember(a).call()
        ]
        self.send(getattr(registry, function)(*args), voters[0])
        proposal_id = registry.proposalCount().call()
        for voter in voters[1:]:
            if registry.proposalState(proposal_id).call() != 0:  # no longer Active
                break
            self.send(registry.vote(proposal_id, True), voter)
        assert registry.proposalState(proposal_id).call() == 1, f"{function} not executed"

    def mine(self, blocks: int = 1) -> None:
        """Mine empty blocks."""
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]

    def chain_log_count(self) -> int:
        """How many logs both contracts emitted so far (what the indexer must have stored)."""
        logs = self.w3.eth.get_logs(
            {
                "fromBlock": self.deployment.deployment_block,
                "toBlock": "latest",
                "address": [self.deployment.registry_address, self.deployment.anchor_address],
            }
        )
        return len(logs)


def make_consortium(w3: Web3, keys: list[str]) -> ConsortiumChain:
    """Deploy a consortium: agency (MEMBER), regulator (MEMBER|REGULATOR), issuer (ISSUER)."""
    agency, regulator, issuer, *spare = (Account.from_key(k).address for k in keys)
    deployment = deploy_consortium(
        w3,
        keys[0],
        [
            (agency, "上海市某区农业农村委", "AGRI-01", ROLE_MEMBER),
            (regulator, "市场监督管理局", "SAMR-01", ROLE_MEMBER | ROLE_REGULATOR),
            (issuer, "凭证签发中心", "ISSUER-01", ROLE_ISSUER),
        ],
    )
    return ConsortiumChain(
        w3=w3,
        deployment=deployment,
        registry=w3.eth.contract(address=deployment.registry_address, abi=load_artifact("ConsortiumRegistry")["abi"]),
        anchor=w3.eth.contract(address=deployment.anchor_address, abi=load_artifact("TraceAnchor")["abi"]),
        agency=agency,
        regulator=regulator,
        issuer=issuer,
        spare=list(spare),
    )


@pytest.fixture
def indexer_make_consortium() -> Callable[[Web3, list[str]], ConsortiumChain]:
    """The consortium deployer, for tests that bring their own chain."""
    return make_consortium


@pytest.fixture
def indexer_chain(anvil: AnvilProcess, w3: Web3) -> ConsortiumChain:
    """A freshly deployed consortium on the session Anvil."""
    return make_consortium(w3, anvil.private_keys[_FIRST_KEY:])


IndexerFactory = Callable[..., ChainIndexer]


@pytest.fixture
def indexer_factory(db_session_factory: sessionmaker[Session]) -> Iterator[IndexerFactory]:
    """Build indexers on the test database (closed, i.e. lock released, at teardown)."""
    created: list[ChainIndexer] = []

    def build(w3: Web3, deployment: DeploymentInfo, **kwargs: Any) -> ChainIndexer:
        kwargs.setdefault("session_factory", db_session_factory)
        indexer = ChainIndexer(kwargs.pop("session_factory"), w3, deployment, **kwargs)
        created.append(indexer)
        return indexer

    yield build
    for indexer in created:
        indexer.close()
