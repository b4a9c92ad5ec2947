"""`verify_pdf` and `run_verify` on real signed certificate PDFs (render + PAdES sign) against Anvil."""

from __future__ import annotations

import asyncio
import json
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from certificate_service.pdf.render import render_certificate
from certificate_service.pdf.sign import sign_certificate
from certificate_service.pki import IssuerPKI
from chain_node.anvil import free_port
from tests.verifier.builders import seal
from tests.verifier.conftest import VerifierNet
from tests.verifier.test_verifier_payload import revoke
from trace_sdk.verifier.checks import async_verify_pdf, verify_pdf
from trace_sdk.verifier.command import run_verify
from trace_sdk.verifier.result import CHECK_NAMES, VerificationResult


def make_pdf(payload: dict[str, Any], pki: IssuerPKI) -> bytes:
    """Render and sign a certificate PDF the way the service does."""
    return sign_certificate(render_certificate(payload, f"https://trace.example/v/{payload['certificate_id']}"), pki)


def statuses(result: VerificationResult) -> dict[str, str]:
    """Check name -> status."""
    return {c.name: c.status for c in result.checks}


@pytest.fixture(scope="module")
def good_pdf(vnet: VerifierNet) -> bytes:
    """A genuine certificate PDF (first record of the meat batch, with hidden fields)."""
    return make_pdf(vnet.payload("meat", 0), vnet.pki)


# ---------------------------------------------------------------------------------------------------- verify_pdf


def test_good_pdf_is_valid(vnet: VerifierNet, good_pdf: bytes) -> None:
    result = verify_pdf(good_pdf, rpc_url=vnet.rpc_url, ca_pem=None)
    assert result.status == "valid", result.to_json()["checks"]
    assert statuses(result) == dict.fromkeys(CHECK_NAMES, "valid")
    assert result.certificate["certificate_id"] == vnet.payload("meat", 0)["certificate_id"]


def test_good_pdf_with_the_consortium_ca(vnet: VerifierNet, good_pdf: bytes) -> None:
    result = verify_pdf(good_pdf, rpc_url=vnet.rpc_url, ca_pem=vnet.pki.ca_pem)
    assert result.status == "valid", result.to_json()["checks"]
    assert "联盟 CA" in result.check("pdf_signature").message  # type: ignore[union-attr]


def test_good_pdf_with_a_pinned_registry(vnet: VerifierNet, good_pdf: bytes) -> None:
    pinned = verify_pdf(good_pdf, rpc_url=vnet.rpc_url, ca_pem=None, registry_address=vnet.deployment.registry)
    assert pinned.status == "valid"


def test_pinning_another_registry_is_invalid(vnet: VerifierNet, good_pdf: bytes) -> None:
    result = verify_pdf(good_pdf, rpc_url=vnet.rpc_url, ca_pem=None, registry_address=vnet.address["agri"])
    assert result.status == "invalid"
    assert statuses(result)["anchored_on_chain"] == "invalid"


def test_async_twin(vnet: VerifierNet, good_pdf: bytes) -> None:
    result = asyncio.run(async_verify_pdf(good_pdf, rpc_url=vnet.rpc_url, ca_pem=vnet.pki.ca_pem))
    assert result == verify_pdf(good_pdf, rpc_url=vnet.rpc_url, ca_pem=vnet.pki.ca_pem)


def test_signed_by_a_key_the_chain_does_not_know(vnet: VerifierNet) -> None:
    # A forger with their own CA and key, claiming their own fingerprint in the payload.
    payload = vnet.payload("meat", 1)
    payload["issuer"]["certificate_fingerprint_sha256"] = vnet.stranger_pki.fingerprint_sha256
    seal(payload)
    pdf = make_pdf(payload, vnet.stranger_pki)
    result = verify_pdf(pdf, rpc_url=vnet.rpc_url, ca_pem=None)
    assert result.status == "invalid"
    assert {c.name for c in result.checks if c.status == "invalid"} == {"pdf_signature"}
    assert "未在链上登记" in result.check("pdf_signature").message  # type: ignore[union-attr]
    # Their own CA vouches for them, but the chain still does not.
    assert verify_pdf(pdf, rpc_url=vnet.rpc_url, ca_pem=vnet.stranger_pki.ca_pem).status == "invalid"


def test_signer_fingerprint_must_match_the_payload(vnet: VerifierNet) -> None:
    pdf = make_pdf(vnet.payload("meat", 1), vnet.stranger_pki)  # payload names the registered issuer
    result = verify_pdf(pdf, rpc_url=vnet.rpc_url, ca_pem=None)
    assert statuses(result)["pdf_signature"] == "invalid"
    assert "指纹" in result.check("pdf_signature").message  # type: ignore[union-attr]


def test_wrong_consortium_ca(vnet: VerifierNet, good_pdf: bytes) -> None:
    result = verify_pdf(good_pdf, rpc_url=vnet.rpc_url, ca_pem=vnet.stranger_pki.ca_pem)
    assert result.status == "invalid"
    assert statuses(result)["pdf_signature"] == "invalid"


def incremental_update(pdf: bytes) -> bytes:
    """Append an incremental update (a changed document title) after the signature."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    info = writer.trailer["/Info"].get_object() if "/Info" in writer.trailer else None
    if info is not None:
        info["/Title"] = generic.TextStringObject("篡改后的证书")
        writer.mark_update(writer.trailer.raw_get("/Info"))
    writer.root["/PageLabels"] = generic.DictionaryObject()
    writer.update_root()
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def test_incremental_update_after_signing(vnet: VerifierNet, good_pdf: bytes) -> None:
    updated = incremental_update(good_pdf)
    assert updated.startswith(good_pdf) and len(updated) > len(good_pdf)
    result = verify_pdf(updated, rpc_url=vnet.rpc_url, ca_pem=vnet.pki.ca_pem)
    assert result.status == "invalid"
    assert statuses(result)["pdf_signature"] == "invalid"
    assert statuses(result)["payload_integrity"] == "valid"


def test_trailing_bytes_after_signing(vnet: VerifierNet, good_pdf: bytes) -> None:
    result = verify_pdf(good_pdf + b"\n% appended\n", rpc_url=vnet.rpc_url, ca_pem=None)
    assert result.status == "invalid" and statuses(result)["pdf_signature"] == "invalid"


def test_signed_content_modified(vnet: VerifierNet, good_pdf: bytes) -> None:
    index = good_pdf.index(b"/Producer")
    tampered = good_pdf[:index] + b"/Producex" + good_pdf[index + 9 :]
    result = verify_pdf(tampered, rpc_url=vnet.rpc_url, ca_pem=None)
    assert result.status == "invalid" and statuses(result)["pdf_signature"] == "invalid"


def test_issuer_signed_a_forged_payload(vnet: VerifierNet) -> None:
    # Even a genuine signature cannot make an edited record valid.
    payload = vnet.payload("meat", 2)
    payload["record"]["product"]["origin"] = "中国"
    seal(payload)
    result = verify_pdf(make_pdf(payload, vnet.pki), rpc_url=vnet.rpc_url, ca_pem=vnet.pki.ca_pem)
    assert result.status == "invalid"
    assert statuses(result)["payload_integrity"] == "invalid"
    assert statuses(result)["pdf_signature"] == "valid"


def test_unsigned_pdf(vnet: VerifierNet) -> None:
    payload = vnet.payload("meat", 2)
    unsigned = render_certificate(payload, "https://trace.example/v/x")
    result = verify_pdf(unsigned, rpc_url=vnet.rpc_url, ca_pem=None)
    assert result.status == "invalid"
    assert statuses(result)["pdf_signature"] == "invalid"
    assert statuses(result)["payload_integrity"] == "valid"


@pytest.mark.parametrize("data", [b"", b"not a pdf at all", b"%PDF-1.7\n%broken"])
def test_not_a_certificate_pdf(vnet: VerifierNet, data: bytes) -> None:
    result = verify_pdf(data, rpc_url=vnet.rpc_url, ca_pem=None)
    assert result.status == "invalid" and not result.valid
    assert statuses(result)["payload_integrity"] == "invalid"
    assert "certificate.json" in result.check("payload_integrity").message  # type: ignore[union-attr]


def test_revoked_pdf(mutable_chain: VerifierNet) -> None:
    net = mutable_chain
    pdf = make_pdf(net.payload("meat", 6), net.pki)
    revoke(net, "meat", 6, "证书信息有误", who="samr")
    result = verify_pdf(pdf, rpc_url=net.rpc_url, ca_pem=net.pki.ca_pem)
    assert result.status == "revoked"
    assert "证书信息有误" in result.check("not_revoked").message  # type: ignore[union-attr]


def test_issuer_fingerprint_withdrawn(mutable_chain: VerifierNet, good_pdf: bytes) -> None:
    net = mutable_chain
    proposal = net.gov("bdc").propose_issuer_fingerprint(net.address["bdc"], "00" * 32)
    net.pass_proposal("bdc", proposal)
    result = verify_pdf(good_pdf, rpc_url=net.rpc_url, ca_pem=None)
    assert result.status == "invalid" and statuses(result)["pdf_signature"] == "invalid"


def test_unreachable_chain(vnet: VerifierNet, good_pdf: bytes) -> None:
    result = verify_pdf(good_pdf, rpc_url=f"http://127.0.0.1:{free_port()}", ca_pem=vnet.pki.ca_pem)
    assert result.status == "invalid" and result.undecided and not result.valid
    assert statuses(result)["pdf_signature"] == "error"
    assert statuses(result)["anchored_on_chain"] == "error"


# ---------------------------------------------------------------------------------------------------- run_verify


@pytest.fixture
def pdf_file(tmp_path: Path, good_pdf: bytes) -> Path:
    """The good PDF on disk."""
    path = tmp_path / "证书.pdf"
    path.write_bytes(good_pdf)
    return path


def test_cli_valid(vnet: VerifierNet, pdf_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(vnet.pki.ca_pem)
    assert run_verify(str(pdf_file), vnet.rpc_url, str(ca), False, None) == 0
    out = capsys.readouterr().out
    assert "有效 / VALID" in out
    for name in CHECK_NAMES:
        assert name in out
    assert vnet.deployment.anchor in out


def test_cli_without_trust_anchor_prints_the_warning(
    vnet: VerifierNet, pdf_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_verify(str(pdf_file), vnet.rpc_url, None, False, None) == 0
    out = capsys.readouterr().out
    assert "trust rests on the contract addresses" in out
    assert vnet.deployment.registry in out


def test_cli_json(vnet: VerifierNet, pdf_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_verify(str(pdf_file), vnet.rpc_url, None, True, vnet.deployment.registry) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"valid", "status", "checks", "certificate", "anchor"}
    assert data["valid"] is True and data["status"] == "valid"
    assert [c["name"] for c in data["checks"]] == list(CHECK_NAMES)
    assert all(set(c) == {"name", "status", "message"} for c in data["checks"])


def test_cli_invalid(vnet: VerifierNet, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "forged.pdf"
    path.write_bytes(make_pdf(vnet.payload("meat", 1), vnet.stranger_pki))
    assert run_verify(str(path), vnet.rpc_url, None, False, None) == 1
    assert "无效 / INVALID" in capsys.readouterr().out
    assert run_verify(str(path), vnet.rpc_url, None, True, None) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "invalid"


def test_cli_revoked_and_recalled(
    mutable_chain: VerifierNet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = mutable_chain
    revoked, recalled = tmp_path / "revoked.pdf", tmp_path / "recalled.pdf"
    revoked.write_bytes(make_pdf(net.payload("meat", 5), net.pki))
    recalled.write_bytes(make_pdf(net.payload("meat", 4), net.pki))
    revoke(net, "meat", 5, "重复签发")
    net.recall(net.payload("meat", 4)["record"]["inputs"][0], "冷链温度超标")
    assert run_verify(str(revoked), net.rpc_url, None, False, None) == 1
    assert "已撤销 / REVOKED" in capsys.readouterr().out
    assert run_verify(str(recalled), net.rpc_url, None, True, None) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "recalled" and data["certificate"]["recalls"][0]["reason"] == "冷链温度超标"


def test_cli_usage_and_io_errors(
    vnet: VerifierNet, pdf_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    dead = f"http://127.0.0.1:{free_port()}"
    cases = [
        (str(tmp_path / "missing.pdf"), vnet.rpc_url, None, None),
        (str(tmp_path), vnet.rpc_url, None, None),  # a directory
        (str(pdf_file), vnet.rpc_url, str(tmp_path / "missing-ca.pem"), None),
        (str(pdf_file), vnet.rpc_url, str(garbage), None),
        (str(pdf_file), "not-a-url", None, None),
        (str(pdf_file), vnet.rpc_url, None, "0x1234"),
        (str(pdf_file), dead, None, None),
    ]
    for path, rpc_url, ca, registry in cases:
        assert run_verify(path, rpc_url, ca, False, registry) == 2, (path, rpc_url, ca, registry)
    capsys.readouterr()
    assert run_verify(str(pdf_file), dead, None, True, None) == 2
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["valid"] is False and data["status"] == "invalid"
    assert "无法" in captured.err


def test_typer_command_wires_run_verify(vnet: VerifierNet, pdf_file: Path) -> None:
    from typer.testing import CliRunner

    from trace_sdk.cli import app

    result = CliRunner().invoke(app, ["verify", str(pdf_file), "--rpc-url", vnet.rpc_url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "valid"
    missing = CliRunner().invoke(app, ["verify", str(pdf_file) + ".missing", "--rpc-url", vnet.rpc_url])
    assert missing.exit_code == 2
