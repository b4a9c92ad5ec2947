"""The issuer's PKI: a consortium CA and the ECDSA P-256 certificate that signs every 上链凭证 PDF.

At first start :meth:`IssuerPKI.load_or_create` creates both with ``cryptography`` under ``data_dir/pki/``
(private keys 0600, directory 0700); later starts load the same files, so the issuer certificate's
fingerprint, which the consortium registers on chain, stays stable. Key material is never logged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from asn1crypto import cms, core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.sign.signers import SimpleSigner
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko_certvalidator.registry import SimpleCertificateStore

__all__ = ["IssuerPKI", "IssuerPKIError"]

logger = logging.getLogger(__name__)

_CA_KEY = "ca-key.pem"
_CA_CERT = "ca-cert.pem"
_ISSUER_KEY = "issuer-key.pem"
_ISSUER_CERT = "issuer-cert.pem"
_ALL_FILES = (_CA_KEY, _CA_CERT, _ISSUER_KEY, _ISSUER_CERT)

_CA_VALIDITY = dt.timedelta(days=20 * 365)
_ISSUER_VALIDITY = dt.timedelta(days=10 * 365)
_CLOCK_SKEW = dt.timedelta(minutes=5)


class IssuerPKIError(RuntimeError):
    """The PKI directory is incomplete or inconsistent; it is never silently replaced."""


_STATIC_SIGNED_ATTRS = frozenset({"content_type", "signing_certificate_v2", "cms_algorithm_protection"})


class _IssuerSigner(SimpleSigner):
    """A :class:`SimpleSigner` tuned for signing many PDFs with one key.

    Two per-signature costs of the parent are removed (measured: the CMS step went from ~25 ms to ~2 ms):
    the private key is parsed once instead of on every signature, and the signed attributes that never
    change (content type, ESS signing-certificate-v2) are built once and re-loaded from their DER, because
    asn1crypto re-serialises freshly constructed attribute trees on every ``dump()``.
    """

    def __init__(self, *, private_key: ec.EllipticCurvePrivateKey, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._private_key = private_key
        self._static_attrs: dict[tuple[str, bool, str], tuple[bytes, ...] | None] = {}

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        """ECDSA over ``data`` with the cached key."""
        if digest_algorithm.lower() != "sha256":
            return super().sign_raw(data, digest_algorithm)
        return self._private_key.sign(data, ec.ECDSA(hashes.SHA256()))

    async def signed_attrs(
        self,
        data_digest: bytes,
        digest_algorithm: str,
        attr_settings: PdfCMSSignedAttributes | None = None,
        content_type: str = "data",
        use_pades: bool = False,
        timestamper: Any = None,
        dry_run: bool = False,
        is_pdf_sig: bool = True,
    ) -> cms.CMSAttributes:
        """The parent's signed attributes, with the constant ones cached as DER after the first call."""
        plain_settings = attr_settings is None or (
            attr_settings.adobe_revinfo_attr is None and attr_settings.cades_signed_attrs is None
        )
        cacheable = timestamper is None and is_pdf_sig and plain_settings
        key = (digest_algorithm.lower(), bool(use_pades), content_type)
        static = self._static_attrs.get(key) if cacheable else None
        if static is None:
            attrs = await super().signed_attrs(
                data_digest,
                digest_algorithm,
                attr_settings=attr_settings,
                content_type=content_type,
                use_pades=use_pades,
                timestamper=timestamper,
                dry_run=dry_run,
                is_pdf_sig=is_pdf_sig,
            )
            if cacheable and not dry_run and key not in self._static_attrs:
                types = [attr["type"].native for attr in attrs]
                if set(types) - {"message_digest"} <= _STATIC_SIGNED_ATTRS:
                    self._static_attrs[key] = tuple(
                        b"" if t == "message_digest" else attr.dump() for t, attr in zip(types, attrs, strict=True)
                    )
                else:
                    self._static_attrs[key] = None  # something time- or context-dependent: never cache
            return attrs
        return cms.CMSAttributes(
            [
                cms.CMSAttribute.load(der)
                if der
                else cms.CMSAttribute({"type": "message_digest", "values": [core.OctetString(data_digest)]})
                for der in static
            ]
        )


class IssuerPKI:
    """The consortium CA certificate plus the issuer's certificate, key and reusable pyHanko signer."""

    def __init__(
        self,
        *,
        ca_certificate: x509.Certificate,
        issuer_certificate: x509.Certificate,
        issuer_key: ec.EllipticCurvePrivateKey,
    ) -> None:
        _check_consistent(ca_certificate, issuer_certificate, issuer_key)
        self._ca_certificate = ca_certificate
        self._issuer_certificate = issuer_certificate
        self._ca_pem = ca_certificate.public_bytes(serialization.Encoding.PEM)
        self._issuer_pem = issuer_certificate.public_bytes(serialization.Encoding.PEM)
        issuer_der = issuer_certificate.public_bytes(serialization.Encoding.DER)
        self._fingerprint = hashlib.sha256(issuer_der).hexdigest()
        ca_der = ca_certificate.public_bytes(serialization.Encoding.DER)
        key_der = issuer_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self._signer = _IssuerSigner(
            private_key=issuer_key,
            signing_cert=asn1_x509.Certificate.load(issuer_der),
            signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
            cert_registry=SimpleCertificateStore.from_certs([asn1_x509.Certificate.load(ca_der)]),
            # The root is what verifiers must already hold as a trust anchor; embedding it only adds bytes.
            embed_roots=False,
        )

    def __repr__(self) -> str:
        subject = self._issuer_certificate.subject.rfc4514_string()
        return f"IssuerPKI(subject={subject!r}, fingerprint={self._fingerprint})"

    @classmethod
    def load_or_create(cls, data_dir: Path, *, organisation: str = "上海市大数据中心") -> IssuerPKI:
        """Load ``data_dir/pki/`` or, at first start, create the CA and issuer certificate there."""
        pki_dir = Path(data_dir) / "pki"
        pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _exclusive_lock(pki_dir / ".lock"):
            present = [name for name in _ALL_FILES if (pki_dir / name).exists()]
            if not present:
                _create(pki_dir, organisation)
                logger.info("created issuer PKI in %s", pki_dir)
            elif len(present) != len(_ALL_FILES):
                missing = sorted(set(_ALL_FILES) - set(present))
                raise IssuerPKIError(f"PKI directory {pki_dir} is incomplete (missing {', '.join(missing)})")
            pki = cls._load(pki_dir)
        logger.info("issuer certificate fingerprint (sha256) %s", pki.fingerprint_sha256)
        return pki

    @classmethod
    def _load(cls, pki_dir: Path) -> IssuerPKI:
        for name in (_CA_KEY, _ISSUER_KEY):
            _ensure_private_mode(pki_dir / name)
        issuer_key = serialization.load_pem_private_key((pki_dir / _ISSUER_KEY).read_bytes(), password=None)
        if not isinstance(issuer_key, ec.EllipticCurvePrivateKey):
            raise IssuerPKIError("the issuer key is not an EC private key")
        return cls(
            ca_certificate=x509.load_pem_x509_certificate((pki_dir / _CA_CERT).read_bytes()),
            issuer_certificate=x509.load_pem_x509_certificate((pki_dir / _ISSUER_CERT).read_bytes()),
            issuer_key=issuer_key,
        )

    @property
    def ca_pem(self) -> bytes:
        """The consortium CA certificate (the trust root verifiers need), PEM."""
        return self._ca_pem

    @property
    def issuer_certificate_pem(self) -> bytes:
        """The issuer's signing certificate, PEM."""
        return self._issuer_pem

    @property
    def ca_certificate(self) -> x509.Certificate:
        return self._ca_certificate

    @property
    def issuer_certificate(self) -> x509.Certificate:
        return self._issuer_certificate

    @property
    def fingerprint_sha256(self) -> str:
        """Lowercase hex SHA-256 over the issuer certificate's DER (the value registered on chain)."""
        return self._fingerprint

    @property
    def signer(self) -> SimpleSigner:
        """The pyHanko signer, built once and reused for every PDF."""
        return self._signer


def _check_consistent(
    ca_certificate: x509.Certificate, issuer_certificate: x509.Certificate, issuer_key: ec.EllipticCurvePrivateKey
) -> None:
    if issuer_certificate.public_key() != issuer_key.public_key():
        raise IssuerPKIError("the issuer key does not match the issuer certificate")
    try:
        issuer_certificate.verify_directly_issued_by(ca_certificate)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise IssuerPKIError("the issuer certificate was not issued by the consortium CA") from exc


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Serialise first-start creation between worker processes sharing one data directory."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _ensure_private_mode(path: Path) -> None:
    if path.stat().st_mode & 0o077:
        logger.warning("tightening permissions of %s to 0600", path)
        os.chmod(path, 0o600)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)  # the umask may have narrowed it; never widen beyond `mode`
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _create(pki_dir: Path, organisation: str) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "上海市"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TraceChain 食品安全追溯联盟链"),
            x509.NameAttribute(NameOID.COMMON_NAME, "TraceChain Consortium Root CA"),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + _CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    issuer_key = ec.generate_private_key(ec.SECP256R1())
    issuer_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "上海市"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} 上链凭证签发"),
        ]
    )
    issuer_cert = (
        x509.CertificateBuilder()
        .subject_name(issuer_name)
        .issuer_name(ca_name)
        .public_key(issuer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + _ISSUER_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # a.k.a. nonRepudiation
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(issuer_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    # Certificates first, keys last: a crash in between leaves an "incomplete" directory that is
    # reported, never a set of keys without certificates that would be silently regenerated.
    _write_atomic(pki_dir / _CA_CERT, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write_atomic(pki_dir / _ISSUER_CERT, issuer_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write_atomic(pki_dir / _CA_KEY, _key_pem(ca_key), 0o600)
    _write_atomic(pki_dir / _ISSUER_KEY, _key_pem(issuer_key), 0o600)
