"""Enterprise access to certificates: registration (library and CLI), Bearer tokens, who may see what."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from certificate_service.db.models import CertificateFile, Enterprise
from certificate_service.enterprises import (
    EnterpriseRegistrationError,
    register_enterprise,
    register_enterprise_from_env,
)
from tests.service import certificates_fixtures
from tests.service.certificates_fixtures import ENTERPRISE_A, ENTERPRISE_B, CertWorld, make_record, uscc
from trace_sdk.cli import app as cli_app

# The suite's fixtures, imported explicitly (tests/service/conftest.py belongs to the database suite).
cert_world = certificates_fixtures.cert_world
cert_world_factory = certificates_fixtures.cert_world_factory

UNKNOWN_ID = "00000-00000-00000-00000"


def _get(world: CertWorld, path: str, headers: dict[str, str] | None = None) -> Any:
    return world.http.get(path, headers=headers or {})


def test_certificate_authorisation_matrix(cert_world: CertWorld) -> None:
    world = cert_world
    [receipt] = world.submit([make_record("auth-1", "A-LOT-1101")])
    world.index()
    other = world.auth(ENTERPRISE_B)
    cid = receipt.certificate_id

    for endpoint in ("pdf", "payload"):
        path = f"/api/v1/certificates/{cid}/{endpoint}"
        missing = _get(world, path)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["error"] == "unauthorized"
        for header in (
            "Bearer tc_" + "x" * 43,
            "Bearer " + world.enterprise(ENTERPRISE_A)[:-1],
            "Basic " + world.enterprise(ENTERPRISE_A),
            "Bearer",
            world.enterprise(ENTERPRISE_A),
        ):
            assert _get(world, path, {"Authorization": header}).status_code == 401, header

        # Another enterprise's certificate looks exactly like one that does not exist.
        foreign = _get(world, path, other)
        unknown = _get(world, f"/api/v1/certificates/{UNKNOWN_ID}/{endpoint}", other)
        assert foreign.status_code == unknown.status_code == 404
        assert foreign.json()["error"] == unknown.json()["error"] == "not_found"
        assert foreign.json()["message"].replace(cid, "ID") == unknown.json()["message"].replace(UNKNOWN_ID, "ID")
        assert _get(world, f"/api/v1/certificates/not-an-id/{endpoint}", world.auth(ENTERPRISE_A)).status_code == 404

    with world.sessions() as session:
        assert list(session.scalars(select(CertificateFile))) == []  # nothing was rendered for strangers

    owner = world.auth(ENTERPRISE_A)
    pdf = _get(world, f"/api/v1/certificates/{cid}/pdf", owner)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    payload = _get(world, f"/api/v1/certificates/{cid}/payload", owner)
    assert payload.status_code == 200 and payload.json()["certificate_id"] == cid
    assert payload.headers["x-certificate-hash"] == pdf.headers["x-certificate-hash"]
    assert _get(world, f"/api/v1/certificates/{cid}/pdf", other).status_code == 404


def test_list_shows_only_the_callers_certificates(cert_world: CertWorld) -> None:
    world = cert_world
    receipts = world.submit([
        make_record("own-a1", "A-LOT-1201"),
        make_record("own-a2", "A-LOT-1202"),
        make_record("own-b1", "B-LOT-1201", ENTERPRISE_B),
    ])
    ids = {r.record_id: r.certificate_id for r in receipts}
    assert _get(world, "/api/v1/certificates").status_code == 401
    assert _get(world, "/api/v1/certificates", {"Authorization": "Bearer tc_nope"}).status_code == 401

    mine = _get(world, "/api/v1/certificates", world.auth(ENTERPRISE_A)).json()
    assert mine["count"] == 2
    assert {c["certificate_id"] for c in mine["data"]} == {ids["own-a1"], ids["own-a2"]}
    theirs = _get(world, "/api/v1/certificates", world.auth(ENTERPRISE_B)).json()
    assert [c["certificate_id"] for c in theirs["data"]] == [ids["own-b1"]]
    unrelated = (uscc("91310104MA1HJ7KP2"), "上海徐汇餐饮管理有限公司")
    assert _get(world, "/api/v1/certificates", world.auth(unrelated)).json() == {"data": [], "count": 0}


def test_cli_enterprise_add_prints_a_working_token_last(cert_world: CertWorld) -> None:
    world = cert_world
    [receipt] = world.submit([make_record("cli-1", "B-LOT-1301", ENTERPRISE_B)])
    world.index()
    env = {"TRACECHAIN_DATA_DIR": str(world.data_dir), "TRACECHAIN_DATABASE_URL": world.database_url}
    runner = CliRunner()

    result = runner.invoke(cli_app, ["enterprise", "add", "--uscc", ENTERPRISE_B[0], "--name", ENTERPRISE_B[1]],
                           env=env)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("tc_") and len(token) == 3 + 43

    with world.sessions() as session:
        stored = session.get(Enterprise, ENTERPRISE_B[0])
    assert stored is not None and stored.name == ENTERPRISE_B[1]
    assert stored.token_sha256 == hashlib.sha256(token.encode()).hexdigest()  # only the hash is kept

    listing = _get(world, "/api/v1/certificates", {"Authorization": f"Bearer {token}"})
    assert listing.status_code == 200 and listing.json()["count"] == 1
    pdf = _get(world, f"/api/v1/certificates/{receipt.certificate_id}/pdf", {"Authorization": f"Bearer {token}"})
    assert pdf.status_code == 200

    duplicate = runner.invoke(cli_app, ["enterprise", "add", "--uscc", ENTERPRISE_B[0], "--name", "x"], env=env)
    assert duplicate.exit_code == 1
    assert "already registered" in duplicate.output

    bad = ENTERPRISE_A[0][:17] + ("0" if ENTERPRISE_A[0][17] != "0" else "1")
    wrong_check = runner.invoke(cli_app, ["enterprise", "add", "--uscc", bad, "--name", "x"], env=env)
    assert wrong_check.exit_code == 1
    assert "check character" in wrong_check.output


def test_register_enterprise_checks_the_uscc_and_stores_only_a_hash(
    db_session_factory: sessionmaker[Session],
) -> None:
    with db_session_factory() as session:
        token = register_enterprise(session=session, uscc=f"  {ENTERPRISE_A[0].lower()} ", name=" 松江肉类 ")
        other = register_enterprise(session=session, uscc=ENTERPRISE_B[0], name=ENTERPRISE_B[1])
        assert token != other and token.startswith("tc_")
        stored = session.get(Enterprise, ENTERPRISE_A[0])
        assert stored is not None and stored.name == "松江肉类"
        assert stored.token_sha256 == hashlib.sha256(token.encode()).hexdigest()

        cases = {
            ENTERPRISE_A[0]: "already registered",
            ENTERPRISE_A[0][:17]: "18 characters",
            "91310117MA1FL8XQ3O": "cannot hold: O",
            ENTERPRISE_A[0][:17] + ("0" if ENTERPRISE_A[0][17] != "0" else "1"): "check character",
        }
        for code, message in cases.items():
            with pytest.raises(EnterpriseRegistrationError, match=message):
                register_enterprise(session=session, uscc=code, name="某企业")
        with pytest.raises(EnterpriseRegistrationError, match="empty"):
            register_enterprise(session=session, uscc=uscc("91310000MA7CK2YB9"), name="  ")
        assert len(list(session.scalars(select(Enterprise)))) == 2


def test_register_enterprise_from_env_migrates_and_registers(
    database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACECHAIN_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.setenv("TRACECHAIN_DATABASE_URL", database_url)
    token = register_enterprise_from_env(uscc=ENTERPRISE_A[0], name=ENTERPRISE_A[1])
    assert token.startswith("tc_")
    with pytest.raises(EnterpriseRegistrationError, match="already registered"):
        register_enterprise_from_env(uscc=ENTERPRISE_A[0], name=ENTERPRISE_A[1])
