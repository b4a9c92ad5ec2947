"""The issuer PKI: created once, reloaded identically, keys private, certificates fit for PAdES."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certificate_service.pki import IssuerPKI, IssuerPKIError

KEYS = ("ca-key.pem", "issuer-key.pem")
CERTS = ("ca-cert.pem", "issuer-cert.pem")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_created_once_and_reloaded_identically(tmp_path: Path) -> None:
    first = IssuerPKI.load_or_create(tmp_path)
    files = {name: (tmp_path / "pki" / name).read_bytes() for name in (*KEYS, *CERTS)}
    again = IssuerPKI.load_or_create(tmp_path)
    assert again.fingerprint_sha256 == first.fingerprint_sha256
    assert again.ca_pem == first.ca_pem
    assert again.issuer_certificate_pem == first.issuer_certificate_pem
    assert {name: (tmp_path / "pki" / name).read_bytes() for name in files} == files


def test_key_files_are_private(tmp_path: Path) -> None:
    IssuerPKI.load_or_create(tmp_path)
    pki_dir = tmp_path / "pki"
    assert mode(pki_dir) == 0o700
    for name in KEYS:
        assert mode(pki_dir / name) == 0o600
    for name in CERTS:
        assert mode(pki_dir / name) & 0o077 == 0o044  # certificates are public


def test_loose_key_permissions_are_tightened(tmp_path: Path) -> None:
    IssuerPKI.load_or_create(tmp_path)
    key = tmp_path / "pki" / "issuer-key.pem"
    key.chmod(0o644)
    IssuerPKI.load_or_create(tmp_path)
    assert mode(key) == 0o600


def test_fingerprint_is_sha256_of_issuer_der(tmp_path: Path) -> None:
    pki = IssuerPKI.load_or_create(tmp_path)
    der = x509.load_pem_x509_certificate(pki.issuer_certificate_pem).public_bytes(serialization.Encoding.DER)
    assert pki.fingerprint_sha256 == hashlib.sha256(der).hexdigest()
    assert len(pki.fingerprint_sha256) == 64 and pki.fingerprint_sha256 == pki.fingerprint_sha256.lower()


def test_certificates_have_the_required_profile(tmp_path: Path) -> None:
    pki = IssuerPKI.load_or_create(tmp_path, organisation="上海市大数据中心")
    ca = x509.load_pem_x509_certificate(pki.ca_pem)
    issuer = x509.load_pem_x509_certificate(pki.issuer_certificate_pem)

    for cert in (ca, issuer):
        public_key = cert.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        assert public_key.curve.name == "secp256r1"

    assert ca.subject == ca.issuer
    ca_constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert ca_constraints.critical and ca_constraints.value.ca
    ca_usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ca_usage.key_cert_sign

    issuer.verify_directly_issued_by(ca)
    assert not issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.content_commitment and usage.digital_signature  # nonRepudiation + digitalSignature
    assert not usage.key_cert_sign
    organisation = issuer.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value
    assert organisation == "上海市大数据中心"


def test_signer_is_built_once(tmp_path: Path) -> None:
    pki = IssuerPKI.load_or_create(tmp_path)
    assert pki.signer is pki.signer
    assert pki.signer.signing_cert.dump() == x509.load_pem_x509_certificate(pki.issuer_certificate_pem).public_bytes(
        serialization.Encoding.DER
    )


def test_incomplete_directory_is_refused_not_regenerated(tmp_path: Path) -> None:
    first = IssuerPKI.load_or_create(tmp_path)
    (tmp_path / "pki" / "issuer-key.pem").unlink()
    with pytest.raises(IssuerPKIError, match="incomplete"):
        IssuerPKI.load_or_create(tmp_path)
    assert (tmp_path / "pki" / "issuer-cert.pem").read_bytes() == first.issuer_certificate_pem


def test_mismatched_key_is_refused(tmp_path: Path) -> None:
    IssuerPKI.load_or_create(tmp_path / "a")
    IssuerPKI.load_or_create(tmp_path / "b")
    (tmp_path / "a" / "pki" / "issuer-key.pem").write_bytes((tmp_path / "b" / "pki" / "issuer-key.pem").read_bytes())
    with pytest.raises(IssuerPKIError, match="does not match"):
        IssuerPKI.load_or_create(tmp_path / "a")


def test_key_material_is_not_in_repr(tmp_path: Path) -> None:
    pki = IssuerPKI.load_or_create(tmp_path)
    key_pem = (tmp_path / "pki" / "issuer-key.pem").read_text()
    body = "".join(key_pem.splitlines()[1:-1])
    assert body[:20] not in repr(pki)
    assert pki.fingerprint_sha256 in repr(pki)
