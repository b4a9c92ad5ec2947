"""The PDF half of independent certificate verification: what a 上链凭证 PDF itself proves.

Given only the PDF and the consortium CA certificate(s), :func:`read_certificate_pdf` extracts the embedded
``certificate.json`` payload and checks the issuer's PAdES signature with pyHanko, offline. The chain half
(record hash, Merkle proof, anchor transaction, the issuer fingerprint registered on chain) is checked
elsewhere against an RPC endpoint.

Validation settings, and why:

* ``ValidationContext(trust_roots=<the consortium CA(s) given>, allow_fetching=False)``: only the explicit
  roots are trusted (never the operating system's TLS store), and nothing is fetched, so the result is
  reproducible offline.
* Revocation: :data:`~pyhanko_certvalidator.policy_decl.NO_REVOCATION`. The consortium PKI publishes no CRL
  or OCSP responder; issuer revocation is on chain instead (the registry's issuer fingerprint, which the
  chain half compares with :attr:`PdfEvidence.signer_fingerprint_sha256`). A network-dependent policy
  ("hard-fail", "require") could never succeed offline, and "soft-fail" would only pretend to check.
* ``skip_diff=True``: a genuine certificate has exactly one revision; anything appended after the signed
  revision already fails :attr:`PdfEvidence.covers_entire_file`, so pyHanko's incremental-update analysis
  would add cost and attack surface without changing the verdict.
* The certificate is validated at the current time (no timestamp token is embedded).

Hostile input never raises: every failure becomes a short English + Chinese line in ``problems``. Inputs
over :data:`MAX_PDF_BYTES` are refused unread, and pyHanko's default decode limits for untrusted documents
bound stream decompression.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, Final

from asn1crypto import x509 as asn1_x509
from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.rw_common import PdfHandler
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import SignatureCoverageLevel, async_validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import NO_REVOCATION, CertRevTrustPolicy

__all__ = [
    "ATTACHMENT_NAME",
    "MAX_ATTACHMENT_BYTES",
    "MAX_PDF_BYTES",
    "PdfEvidence",
    "async_read_certificate_pdf",
    "read_certificate_pdf",
]

ATTACHMENT_NAME: Final = "certificate.json"
MAX_PDF_BYTES: Final = 8 * 1024 * 1024
"""Larger inputs are refused unread (a certificate is ~60 KB)."""
MAX_ATTACHMENT_BYTES: Final = 1024 * 1024
_MAX_NAME_TREE_DEPTH: Final = 8


@dataclass(frozen=True)
class PdfEvidence:
    """What the PDF alone shows: the payload it carries and the state of the issuer's signature."""

    payload: dict[str, Any] | None
    """The parsed ``certificate.json`` attachment, as of the signed revision when there is a signature."""

    signer_fingerprint_sha256: str | None
    """Lowercase hex SHA-256 of the signer certificate's DER (compare with the fingerprint on chain)."""

    signature_intact: bool
    """The signed bytes hash to the signed digest and the signature value verifies under the signer's key."""

    covers_entire_file: bool
    """The signature covers every byte of the file: no incremental update, second signature or trailing data."""

    signature_count: int
    """Filled signature fields in the document (a genuine certificate has exactly one)."""

    chained_to_trust_root: bool
    """The signer certificate chains to one of the given trust roots and is valid for signing now
    (always False when no trust roots were given)."""

    problems: tuple[str, ...] = field(default=())
    """Every failure, one short English + Chinese line each; empty when the PDF half verifies."""

    @property
    def ok(self) -> bool:
        """Bottom line of the PDF half: a payload under one intact, whole-file signature from a trusted CA."""
        return (
            self.payload is not None
            and self.signature_intact
            and self.covers_entire_file
            and self.signature_count == 1
            and self.chained_to_trust_root
            and not self.problems
        )


async def async_read_certificate_pdf(pdf_bytes: bytes, trust_roots_pem: Sequence[bytes]) -> PdfEvidence:
    """Read and check a certificate PDF against explicit trust roots, offline; never raises on bad PDFs.

    With an empty ``trust_roots_pem`` the certificate chain is not checked: ``chained_to_trust_root`` is
    False and no problem is reported for it (integrity, coverage and the payload are still checked).
    Raises :class:`ValueError` only for unreadable ``trust_roots_pem`` (a configuration error, not input).
    """
    roots = _load_trust_roots(trust_roots_pem)
    return await _Inspection(pdf_bytes, roots).run()


def read_certificate_pdf(pdf_bytes: bytes, trust_roots_pem: Sequence[bytes]) -> PdfEvidence:
    """Sync twin of :func:`async_read_certificate_pdf` (not for use inside a running event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run(async_read_certificate_pdf(pdf_bytes, trust_roots_pem))
    raise RuntimeError("read_certificate_pdf() cannot run inside an event loop; await async_read_certificate_pdf()")


_loops = threading.local()


def _run(coroutine: Any) -> Any:
    # One event loop per thread, reused: asyncio.run() would build and tear down a loop per call.
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    return loop.run_until_complete(coroutine)


def _load_trust_roots(trust_roots_pem: Sequence[bytes]) -> list[asn1_x509.Certificate]:
    if isinstance(trust_roots_pem, bytes | bytearray | str):
        raise ValueError("trust_roots_pem must be a list of PEM/DER certificates, not a single value")
    roots: list[asn1_x509.Certificate] = []
    for item in trust_roots_pem:
        try:
            roots.extend(load_certs_from_pemder_data(bytes(item)))
        except Exception as exc:
            raise ValueError(f"unreadable trust root certificate: {exc}") from None
    return roots


class _Inspection:
    """One run over one PDF, accumulating problems instead of raising."""

    def __init__(self, pdf_bytes: Any, roots: list[asn1_x509.Certificate]) -> None:
        self.data = pdf_bytes
        self.roots = roots
        self.problems: list[str] = []

    def _problem(self, english: str, chinese: str) -> None:
        self.problems.append(f"{english} / {chinese}")

    def _evidence(
        self,
        *,
        payload: dict[str, Any] | None = None,
        fingerprint: str | None = None,
        intact: bool = False,
        entire: bool = False,
        count: int = 0,
        trusted: bool = False,
    ) -> PdfEvidence:
        return PdfEvidence(
            payload=payload,
            signer_fingerprint_sha256=fingerprint,
            signature_intact=intact,
            covers_entire_file=entire,
            signature_count=count,
            chained_to_trust_root=trusted,
            problems=tuple(self.problems),
        )

    async def run(self) -> PdfEvidence:
        data = self.data
        if not isinstance(data, bytes | bytearray | memoryview):
            self._problem("input is not bytes", "输入不是字节数据")
            return self._evidence()
        data = bytes(data)
        if not data:
            self._problem("empty file", "文件为空")
            return self._evidence()
        if len(data) > MAX_PDF_BYTES:
            self._problem(f"file larger than {MAX_PDF_BYTES} bytes", "文件过大")
            return self._evidence()
        if b"%PDF-" not in data[:1024]:
            self._problem("not a PDF file (no %PDF header)", "不是 PDF 文件")
            return self._evidence()
        try:
            reader = PdfFileReader(BytesIO(data), strict=False)
            if reader.encrypt_dict:
                self._problem("encrypted PDF", "PDF 已加密，无法验证")
                return self._evidence()
        except Exception as exc:
            self._problem(f"unreadable PDF ({_brief(exc)})", "PDF 文件损坏或无法解析")
            return self._evidence()

        signatures, count = self._signatures(reader)
        if count == 0:
            self._problem("no signature", "文件没有数字签名")
        elif count > 1:
            self._problem(f"{count} signatures where exactly one is expected", f"存在 {count} 个签名（应只有 1 个）")

        first = signatures[0] if signatures else None
        source: PdfHandler = reader
        if first is not None:
            try:
                source = reader.get_historical_resolver(first.signed_revision)
            except Exception as exc:
                self._problem(f"signed revision unreadable ({_brief(exc)})", "无法读取签名所覆盖的版本")
        payload = self._payload(source)

        if first is None:  # no signature, or none readable (each already reported)
            return self._evidence(payload=payload, count=count)
        fingerprint, intact, entire, trusted = await self._check_signature(first)
        return self._evidence(
            payload=payload, fingerprint=fingerprint, intact=intact, entire=entire, count=count, trusted=trusted
        )

    def _signatures(self, reader: PdfFileReader) -> tuple[list[EmbeddedPdfSignature], int]:
        """Every filled signature field, earliest signed revision first; unreadable ones are counted too."""
        try:
            fields = list(enumerate_sig_fields(reader, filled_status=True))
        except Exception as exc:
            self._problem(f"form fields unreadable ({_brief(exc)})", "表单域无法解析")
            return [], 0
        signatures: list[EmbeddedPdfSignature] = []
        for name, _value, field_ref in fields:
            try:
                signatures.append(EmbeddedPdfSignature(reader, field_ref, name))
            except Exception as exc:
                self._problem(f"signature {name!r} unreadable ({_brief(exc)})", "签名数据无法解析")
        signatures.sort(key=lambda sig: sig.signed_revision)
        return signatures, len(fields)

    async def _check_signature(self, sig: EmbeddedPdfSignature) -> tuple[str | None, bool, bool, bool]:
        fingerprint = None
        try:
            fingerprint = hashlib.sha256(sig.signer_cert.dump()).hexdigest()
        except Exception as exc:
            self._problem(f"signer certificate missing ({_brief(exc)})", "签名中缺少签名证书")
        context = ValidationContext(
            trust_roots=self.roots,
            allow_fetching=False,
            revinfo_policy=CertRevTrustPolicy(NO_REVOCATION),
        )
        try:
            status = await async_validate_pdf_signature(sig, signer_validation_context=context, skip_diff=True)
        except Exception as exc:
            self._problem(f"signature could not be validated ({_brief(exc)})", "签名无法验证")
            return fingerprint, False, False, False
        intact = bool(status.intact and status.valid)
        entire = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
        trusted = bool(status.trusted)
        if not status.intact:
            self._problem("signed content was modified", "签名覆盖的内容已被篡改")
        elif not status.valid:
            self._problem("signature value does not verify", "签名值验证失败")
        if not entire:
            self._problem(
                "data was added after the signed revision (update, second signature or appended bytes)",
                "签名之后文件被追加了内容（增量更新、第二个签名或附加数据）",
            )
        if not trusted and self.roots:
            self._problem(
                "signer certificate does not chain to a trusted consortium CA (or is not valid now)",
                "签名证书无法链接到受信任的联盟 CA 或已失效",
            )
        return fingerprint, intact, entire, trusted

    def _payload(self, handler: PdfHandler) -> dict[str, Any] | None:
        try:
            raw = _find_attachment(handler)
        except Exception as exc:
            self._problem(f"attachments unreadable ({_brief(exc)})", "附件无法读取")
            return None
        if raw is None:
            self._problem(f"no {ATTACHMENT_NAME} attachment", f"缺少 {ATTACHMENT_NAME} 附件")
            return None
        try:
            value = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
        except Exception:
            self._problem(f"{ATTACHMENT_NAME} is not valid JSON", f"{ATTACHMENT_NAME} 不是合法的 JSON")
            return None
        if not isinstance(value, dict):
            self._problem(f"{ATTACHMENT_NAME} is not a JSON object", f"{ATTACHMENT_NAME} 不是 JSON 对象")
            return None
        return value


def _find_attachment(handler: PdfHandler) -> bytes | None:
    """The decoded bytes of the embedded file named ``certificate.json``, or None."""
    root = handler.root
    names = root.get("/Names")
    if names is None:
        return None
    tree = names.get_object().get("/EmbeddedFiles")
    if tree is None:
        return None
    filespec = _lookup_name_tree(tree.get_object(), ATTACHMENT_NAME, depth=0, seen=set())
    if filespec is None:
        return None
    embedded = filespec.get_object()["/EF"].get_object()
    stream = (embedded.get("/UF") or embedded["/F"]).get_object()
    if not isinstance(stream, generic.StreamObject):
        raise ValueError("embedded file is not a stream")
    if len(stream.encoded_data) > MAX_ATTACHMENT_BYTES:
        raise ValueError("embedded file too large")
    data = stream.data
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise ValueError("embedded file too large")
    return data


def _lookup_name_tree(node: Any, key: str, *, depth: int, seen: set[int]) -> Any:
    if depth > _MAX_NAME_TREE_DEPTH or id(node) in seen or not isinstance(node, generic.DictionaryObject):
        return None
    seen.add(id(node))
    pairs = node.get("/Names")
    if pairs is not None:
        pairs = pairs.get_object()
        for i in range(0, len(pairs) - 1, 2):
            name = pairs[i].get_object()
            if isinstance(name, generic.TextStringObject | generic.ByteStringObject) and _text(name) == key:
                return pairs[i + 1]
    kids = node.get("/Kids")
    for kid in kids.get_object() if kids is not None else ():
        found = _lookup_name_tree(kid.get_object(), key, depth=depth + 1, seen=seen)
        if found is not None:
            return found
    return None


def _text(value: Any) -> str:
    if isinstance(value, generic.ByteStringObject):
        return bytes(value).decode("latin-1")
    return str(value)


def _no_duplicate_keys(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text[:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
