"""Service database: settings, migrations on SQLite and PostgreSQL, engine pragmas, repositories."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from certificate_service.core.config import DeploymentError, Settings, read_deployment
from certificate_service.db.engine import create_db_engine, sqlite_path
from certificate_service.db.models import Base
from certificate_service.migrations import current_revision, head_revision, upgrade_database
from certificate_service.repositories import anchors, certificates, enterprises, records

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ANCHOR = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
AGENCY = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _h(n: int) -> str:
    """A deterministic 32-byte hex value."""
    return "0x" + f"{n:064x}"


# --- settings -------------------------------------------------------------------------------------


def test_settings_defaults_derive_from_port_and_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("PUBLIC_URL", "DATABASE_URL", "HTTP_PORT", "CONFIRMATIONS"):
        monkeypatch.delenv(f"TRACECHAIN_{name}", raising=False)
    monkeypatch.setenv("TRACECHAIN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TRACECHAIN_HTTP_PORT", "8123")
    settings = Settings()
    assert settings.PUBLIC_URL == "http://127.0.0.1:8123"
    assert f"sqlite:///{(tmp_path / 'service.db').resolve().as_posix()}" == settings.DATABASE_URL
    assert sqlite_path(settings.DATABASE_URL) == (tmp_path / "service.db").resolve()
    assert (settings.CONFIRMATIONS, settings.VERIFY_WARN_COUNT) == (0, 50)
    assert settings.INDEXER_POLL_INTERVAL_S == 0.5
    assert settings.MAX_BODY_BYTES == 32 * 1024 * 1024
    assert settings.deployment_path == tmp_path / "deployment.json"


def test_settings_read_every_documented_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "TRACECHAIN_RPC_URL": "http://besu:8545",
        "TRACECHAIN_ANVIL_PORT": "9545",
        "TRACECHAIN_DEPLOYER_KEY": "0x" + "11" * 32,
        "TRACECHAIN_HTTP_HOST": "0.0.0.0",
        "TRACECHAIN_PUBLIC_URL": "https://trace.example.cn/",
        "TRACECHAIN_DATABASE_URL": "postgresql+psycopg://svc@db/trace",
        "TRACECHAIN_CONFIRMATIONS": "2",
        "TRACECHAIN_VERIFY_WARN_COUNT": "7",
        "TRACECHAIN_INDEXER_POLL_INTERVAL_S": "1.5",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.RPC_URL == "http://besu:8545"
    assert settings.ANVIL_PORT == 9545
    assert settings.HTTP_HOST == "0.0.0.0"
    assert settings.PUBLIC_URL == "https://trace.example.cn"
    assert settings.DATABASE_URL == "postgresql+psycopg://svc@db/trace"
    assert (settings.CONFIRMATIONS, settings.VERIFY_WARN_COUNT) == (2, 7)
    assert settings.INDEXER_POLL_INTERVAL_S == 1.5


def test_read_deployment(tmp_path: Path) -> None:
    document = {
        "chain_id": 31337,
        "rpc_url": "http://127.0.0.1:8545",
        "contracts": {"ConsortiumRegistry": REGISTRY.lower(), "TraceAnchor": ANCHOR},
        "deployment_block": 1,
        "deployed_at": "2026-03-01T08:30:00+08:00",
    }
    (tmp_path / "deployment.json").write_text(json.dumps(document), encoding="utf-8")
    info = read_deployment(tmp_path)
    assert info.registry_address == REGISTRY  # checksummed
    assert info.anchor_address == ANCHOR
    assert info.deployment_block == 1
    assert info.deployed_at == datetime(2026, 3, 1, 0, 30, tzinfo=UTC)

    with pytest.raises(DeploymentError, match="not found"):
        read_deployment(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({**document, "contracts": {"TraceAnchor": ANCHOR}}))
    with pytest.raises(DeploymentError, match="ConsortiumRegistry"):
        read_deployment(tmp_path / "bad.json")


# --- migrations -----------------------------------------------------------------------------------

EXPECTED_TABLES = {
    "alembic_version",
    "chain_checkpoints",
    "deployment_stamp",
    "chain_blocks",
    "chain_events",
    "members",
    "member_periods",
    "batches",
    "revocations",
    "recalls",
    "records",
    "lot_links",
    "certificates",
    "certificate_files",
    "enterprises",
}


def test_migrations_apply_from_empty_and_are_idempotent(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        assert inspect(engine).get_table_names() == []
        upgrade_database(database_url)
        upgrade_database(database_url)  # second start: no-op
        upgrade_database(engine)
        assert set(inspect(engine).get_table_names()) == EXPECTED_TABLES
        with engine.connect() as conn:
            assert current_revision(conn) == head_revision()
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == [], "migrations and models.py disagree"
    finally:
        engine.dispose()


def test_concurrent_upgrades_serialise(database_url: str) -> None:
    errors: list[BaseException] = []

    def upgrade() -> None:
        try:
            upgrade_database(database_url)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as conn:
            assert current_revision(conn) == head_revision()
    finally:
        engine.dispose()


def test_indexes_cover_the_lookups(db_engine: Engine) -> None:
    inspector = inspect(db_engine)

    def indexed(table: str) -> set[str]:
        columns = {ix["column_names"][0] for ix in inspector.get_indexes(table)}
        columns |= {uc["column_names"][0] for uc in inspector.get_unique_constraints(table)}
        columns |= set(inspector.get_pk_constraint(table)["constrained_columns"][:1])
        return columns

    assert {"record_hash", "trace_code", "enterprise_uscc", "root"} <= indexed("records")
    assert {"certificate_id", "record_hash"} <= indexed("certificates")
    assert {"certificate_hash", "pdf_sha256", "certificate_id"} <= indexed("certificate_files")
    assert {"uscc", "token_sha256"} <= indexed("enterprises")
    assert {"from_trace_code", "to_trace_code"} <= indexed("lot_links")
    assert {"tx_hash"} <= indexed("chain_events")


def test_sqlite_engine_pragmas(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'nested' / 'service.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    finally:
        engine.dispose()


# --- repositories ---------------------------------------------------------------------------------


def _add_record(session: Session, n: int, *, trace_code: str = "LOT-2026-0001", record_id: str | None = None) -> str:
    """Insert a minimal record; returns its hash."""
    record_hash = _h(n)
    records.add_record(
        session=session,
        record_hash=record_hash,
        agency_address=AGENCY.lower(),
        record_id=record_id or f"rec-{n}",
        record={"schema": "trace-record/v1", "trace_code": trace_code, "product": {"name": "冷冻牛肉"}},
        salts={"trace_code": _h(1000 + n)},
        content_sha256="ab" * 32,
        trace_code=trace_code,
        trace_code_hash=_h(2000 + n),
        enterprise_uscc="91310000MA1K000001",
        event_time=datetime(2026, 3, 1, 8, 30, n, tzinfo=timezone(timedelta(hours=8))),
        root=_h(3000),
        leaf_index=n,
        proof=[_h(4000 + n)],
    )
    return record_hash


def test_records_roundtrip_and_uniqueness(db_session_factory: sessionmaker[Session]) -> None:
    with db_session_factory() as session, session.begin():
        first = _add_record(session, 1)
        _add_record(session, 2, trace_code="LOT-2026-0002")
        records.add_lot_links(
            session=session,
            record_hash=first,
            links=[("RAW-0000001", "LOT-2026-0001"), ("LOT-2026-0001", "BOX-0000001")] * 2,
        )
    with db_session_factory() as session:
        row = records.get_record(session=session, record_hash=first.upper().replace("0X", "0x"))
        assert row is not None and row.agency_address == AGENCY  # checksummed on the way in
        assert row.record["product"]["name"] == "冷冻牛肉"
        assert row.proof == [_h(4001)]
        assert row.event_time == datetime(2026, 3, 1, 0, 30, 1, tzinfo=UTC)  # aware UTC on every backend
        assert records.get_record_by_agency_id(session=session, agency_address=AGENCY, record_id="rec-1") is not None
        assert [r.record_hash for r in records.list_records_by_root(session=session, root=_h(3000))] == [
            _h(1),
            _h(2),
        ]
        assert len(records.list_records_by_trace_code(session=session, trace_code="LOT-2026-0002")) == 1
        assert records.count_records(session=session, enterprise_uscc="91310000MA1K000001") == 2
        assert len(records.list_records_by_enterprise(session=session, enterprise_uscc="91310000MA1K000001")) == 2
        assert [x.from_trace_code for x in records.list_input_links(session=session, trace_code="LOT-2026-0001")] == [
            "RAW-0000001"
        ]
        assert [x.to_trace_code for x in records.list_output_links(session=session, trace_code="LOT-2026-0001")] == [
            "BOX-0000001"
        ]
        assert len(records.list_links_of_record(session=session, record_hash=first)) == 2

    with db_session_factory() as session, pytest.raises(IntegrityError), session.begin():
        _add_record(session, 3, record_id="rec-1")  # same agency + record_id


def test_certificates_files_and_verification_counter(db_session_factory: sessionmaker[Session]) -> None:
    with db_session_factory() as session, session.begin():
        record_hash = _add_record(session, 1)
        session.flush()
        certificates.add_certificate(session=session, certificate_id="C-1", record_hash=record_hash)
        session.flush()
        certificates.add_certificate_file(
            session=session,
            certificate_id="C-1",
            variant="[]",
            certificate_hash=_h(77),
            pdf_sha256="CD" * 32,
            pdf=b"%PDF-1.7 full",
        )
        certificates.add_certificate_file(
            session=session,
            certificate_id="C-1",
            variant='["contact.person"]',
            certificate_hash=_h(78),
            pdf_sha256="ce" * 32,
            pdf=b"%PDF-1.7 masked",
        )
    with db_session_factory() as session:
        assert certificates.get_certificate_by_record(session=session, record_hash=record_hash) is not None
        by_hash = certificates.get_file_by_certificate_hash(session=session, certificate_hash=_h(78), with_pdf=True)
        assert by_hash is not None and by_hash.pdf == b"%PDF-1.7 masked"
        by_sha = certificates.get_file_by_pdf_sha256(session=session, pdf_sha256="cd" * 32, with_pdf=True)
        assert by_sha is not None and by_sha.variant == "[]"
        assert [f.variant for f in certificates.list_certificate_files(session=session, certificate_id="C-1")] == [
            "[]",
            '["contact.person"]',
        ]
    first_time = datetime(2026, 3, 2, tzinfo=UTC)
    later = first_time + timedelta(days=1)
    with db_session_factory() as session, session.begin():
        certificates.add_verifications(session=session, counts=[("C-1", 1, first_time)])
    with db_session_factory() as session, session.begin():
        certificates.add_verifications(session=session, counts=[("C-1", 2, later), ("nope", 5, later)])
    with db_session_factory() as session:
        certificate = certificates.get_certificate(session=session, certificate_id="C-1")
        assert certificate is not None
        assert (certificate.verification_count, certificate.first_verified_at) == (3, first_time)
        counts = certificates.verification_counts(session=session, certificate_ids=["C-1", "nope"])
        assert counts == {"C-1": (3, first_time)}

    with db_session_factory() as session, pytest.raises(IntegrityError), session.begin():
        certificates.add_certificate_file(
            session=session,
            certificate_id="C-1",
            variant="[]",
            certificate_hash=_h(79),
            pdf_sha256="ef" * 32,
            pdf=b"dup variant",
        )


def test_enterprises_and_anchor_tables(db_session_factory: sessionmaker[Session]) -> None:
    when = datetime(2026, 3, 1, tzinfo=UTC)
    with db_session_factory() as session, session.begin():
        enterprises.add_enterprise(
            session=session, uscc="91310000MA1K000001", name="某冷链公司", token_sha256="AA" * 32
        )
        anchors.add_batch(
            session=session,
            root=_h(5),
            agency_address=AGENCY,
            block_number=10,
            block_time=when,
            tx_hash=_h(6),
            count=3,
            schema_version=1,
        )
    with db_session_factory() as session:
        found = enterprises.get_enterprise_by_token_sha256(session=session, token_sha256="aa" * 32)
        assert found is not None and found.uscc == "91310000MA1K000001"
        batch = anchors.get_batch(session=session, root=_h(5))
        assert batch is not None and batch.block_time == when
        assert anchors.list_batches(session=session, agency_address=AGENCY.lower())[0].count == 3
