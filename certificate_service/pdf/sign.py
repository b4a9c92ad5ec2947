"""PAdES-sign rendered certificate PDFs with the issuer's key (async core plus a sync twin).

The signature is a single approval signature in one incremental update appended to the rendered file, so
its byte range covers the entire output: nothing may follow it. The update holds what pyHanko's
``PdfSigner`` writes for this signature: the first page with the signature widget in its ``/Annots``, the
catalog with the ``/AcroForm`` and the version and extensions a PAdES ECDSA signature declares, the form,
the field and the signature dictionary. It leaves out pyHanko's document-metadata refresh (``/Info``
``/ModDate`` and ``/Producer``, an XMP stream): the signing time is the signature's ``/M``.

pyHanko's reader parses the rendered file's trailer, catalog and first page; the update itself is written
here, because what is the same for every PDF is prepared once per :class:`IssuerPKI` from pyHanko: its CMS
``SignedData``, split into a template around the two parts that vary (the document digest and the signature
value) and checked to rebuild pyHanko's bytes exactly, and the catalog declarations of
``PdfSigner.register_extensions``. Per PDF the work is reading three small objects, writing five, one
SHA-256 over the file and one ECDSA signature (about a third of ``PdfSigner.sign_pdf``'s CPU time).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import threading
import weakref
from dataclasses import dataclass
from io import BytesIO
from typing import Final

from asn1crypto import cms, core
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, Signer
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

from certificate_service.pki import IssuerPKI

__all__ = ["SIGNATURE_FIELD_NAME", "async_sign_certificate", "sign_certificate"]

SIGNATURE_FIELD_NAME: Final = "TraceChainIssuerSignature"
_MD_ALGORITHM: Final = "sha256"
_REASON: Final = "食品安全追溯信息区块链证书（上链凭证）签发"
_LOCATION: Final = "上海"
# Hex digits of slack over the CMS size: ECDSA DER signatures vary by a few bytes.
_RESERVE_SLACK: Final = 256
_BYTE_RANGE_WIDTH: Final = 40
"""Room for ``[0 a b c]``, padded with spaces once the offsets are known."""
_STATIC_SIGNED_ATTRS: Final = frozenset({"content_type", "signing_certificate_v2", "cms_algorithm_protection"})
"""Signed attributes that never change between signatures (the message digest is the one that does)."""
_WIDGET_FLAGS: Final = 132
"""Annotation flags of the invisible widget, as pyHanko sets them: Print (4) | Locked (128)."""


def _tlv(tag: int, content: bytes) -> bytes:
    """One DER element: tag, definite length, content."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + content


@dataclass(frozen=True, slots=True)
class _CmsTemplate:
    """pyHanko's PAdES ``ContentInfo``/``SignedData`` DER split around the document digest and signature value."""

    content_type: bytes
    """The ContentInfo's contentType element (id-signedData)."""
    signed_data_head: bytes
    """SignedData elements before signerInfos: version, digest algorithms, encapsulated content, certificates."""
    signer_info_head: bytes
    """SignerInfo elements before signedAttrs: version, signer identifier, digest algorithm."""
    attributes_before_digest: bytes
    attributes_after_digest: bytes
    signature_algorithm: bytes

    @classmethod
    def split(cls, der: bytes, digest: bytes) -> _CmsTemplate:
        """Split pyHanko's DER for ``digest``; raises if it is not a plain one-signer PAdES structure."""
        content_info = cms.ContentInfo.load(der)
        signed_data = content_info["content"]
        [signer_info] = signed_data["signer_infos"]
        if not isinstance(signer_info["unsigned_attrs"], core.Void):
            raise RuntimeError("the issuer's CMS carries unsigned attributes; the template cannot hold them")
        attributes = signer_info["signed_attrs"]
        variable = {attr["type"].native for attr in attributes} - {"message_digest"} - _STATIC_SIGNED_ATTRS
        if variable:
            raise RuntimeError(f"the issuer's CMS signs attributes that change per signature: {sorted(variable)}")
        before, found, after = attributes.contents.partition(digest)
        if not found:
            raise RuntimeError("the issuer's CMS does not hold the document digest in its signed attributes")
        fields = ("version", "digest_algorithms", "encap_content_info", "certificates", "crls")
        return cls(
            content_type=content_info["content_type"].dump(),
            signed_data_head=b"".join(signed_data[name].dump() for name in fields),
            signer_info_head=b"".join(signer_info[name].dump() for name in ("version", "sid", "digest_algorithm")),
            attributes_before_digest=before,
            attributes_after_digest=after,
            signature_algorithm=signer_info["signature_algorithm"].dump(),
        )

    def signed_attributes(self, digest: bytes) -> bytes:
        """The DER ``SET OF Attribute`` that the signature value signs (RFC 5652 §5.4)."""
        return _tlv(0x31, self.attributes_before_digest + digest + self.attributes_after_digest)

    def content_info(self, digest: bytes, signature: bytes) -> bytes:
        """The complete DER ``ContentInfo`` for ``digest`` and the signature value over its signed attributes."""
        attributes = _tlv(0xA0, self.attributes_before_digest + digest + self.attributes_after_digest)
        signer_info = _tlv(
            0x30, self.signer_info_head + attributes + self.signature_algorithm + _tlv(0x04, signature)
        )
        signed_data = _tlv(0x30, self.signed_data_head + _tlv(0x31, signer_info))
        return _tlv(0x30, self.content_type + _tlv(0xA0, signed_data))


def _write(obj: generic.PdfObject) -> bytes:
    stream = BytesIO()
    obj.write_to_stream(stream)
    return stream.getvalue()


_FIELD_NAME: Final = _write(generic.pdf_string(SIGNATURE_FIELD_NAME))


@dataclass(frozen=True, slots=True)
class _SigningSetup:
    signer: Signer
    cms: _CmsTemplate
    contents_reserved: int
    """Hex digits reserved for the CMS in ``/Contents`` (its size, twice, plus slack)."""
    output_version: tuple[int, int]
    """Lowest PDF version the signed file declares (pyHanko raises it for PAdES with ECDSA)."""
    extensions: generic.DictionaryObject
    """The catalog's ``/Extensions`` (ESIC for PAdES, ISO/TS 32002 for ECDSA)."""
    signature_entries: bytes
    """The signature dictionary's fixed entries (type, filter, subfilter, location, reason)."""


_SETUPS: weakref.WeakKeyDictionary[IssuerPKI, _SigningSetup] = weakref.WeakKeyDictionary()
_SETUP_LOCK = threading.Lock()


async def _pyhanko_signed_data(signer: Signer, digest: bytes) -> tuple[bytes, bytes]:
    """The CMS pyHanko's PdfSigner builds for a PAdES signature of ``digest``, and its signature value."""
    content_info = await signer.async_sign(
        digest,
        _MD_ALGORITHM,
        use_pades=True,
        signed_attr_settings=PdfCMSSignedAttributes(signing_time=dt.datetime.now(dt.UTC)),
    )
    return content_info.dump(), content_info["content"]["signer_infos"][0]["signature"].native


async def _cms_template(signer: Signer) -> tuple[_CmsTemplate, int]:
    """The template built from one pyHanko signature and checked against a second; that CMS's size."""
    first_digest, second_digest = os.urandom(32), os.urandom(32)
    template = _CmsTemplate.split((await _pyhanko_signed_data(signer, first_digest))[0], first_digest)
    expected, signature = await _pyhanko_signed_data(signer, second_digest)
    if template.content_info(second_digest, signature) != expected:
        raise RuntimeError("the CMS template does not reproduce pyHanko's SignedData")
    return template, len(expected)


async def _setup_for(pki: IssuerPKI) -> _SigningSetup:
    setup = _SETUPS.get(pki)
    if setup is not None:
        return setup
    signer = pki.signer
    template, cms_size = await _cms_template(signer)
    # What PdfSigner declares in the catalog for this signer and digest, taken from a scratch document.
    metadata = PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD_NAME, md_algorithm=_MD_ALGORITHM, subfilter=SigSeedSubFilter.PADES
    )
    scratch = PdfFileWriter()
    PdfSigner(metadata, signer=signer).register_extensions(scratch, md_algorithm=_MD_ALGORITHM)
    entries = (
        ("/Type", generic.pdf_name("/Sig")),
        ("/Filter", generic.pdf_name("/Adobe.PPKLite")),
        ("/SubFilter", SigSeedSubFilter.PADES.value),
        ("/Location", generic.pdf_string(_LOCATION)),
        ("/Reason", generic.pdf_string(_REASON)),
    )
    setup = _SigningSetup(
        signer=signer,
        cms=template,
        contents_reserved=cms_size * 2 + _RESERVE_SLACK,
        output_version=scratch.output_version,
        extensions=scratch.root["/Extensions"],
        signature_entries=b"\n".join(_write(generic.pdf_name(key)) + b" " + _write(value) for key, value in entries),
    )
    with _SETUP_LOCK:
        return _SETUPS.setdefault(pki, setup)


class _SignatureRevision:
    """The signed file being written: the original, the appended objects and the hole left for the CMS."""

    def __init__(self, original: bytes) -> None:
        self.out = BytesIO()
        self.out.write(original)
        if not original.endswith(b"\n"):
            self.out.write(b"\n")
        self.offsets: dict[int, int] = {}
        self.byte_range_at = self.contents_start = self.contents_end = 0

    def add(self, ref: generic.Reference, value: generic.PdfObject | bytes) -> None:
        """Append object ``ref`` (a pyHanko object, or its value already serialised)."""
        self.offsets[ref.idnum] = self.out.tell()
        self.out.write(b"%d %d obj\n" % (ref.idnum, ref.generation))
        if isinstance(value, bytes):
            self.out.write(value)
        else:
            value.write_to_stream(self.out)
        self.out.write(b"\nendobj\n")

    def add_signature(self, ref: generic.Reference, setup: _SigningSetup) -> None:
        """Append the signature dictionary: /ByteRange left blank and /Contents zeros, to fill in later."""
        self.offsets[ref.idnum] = self.out.tell()
        self.out.write(b"%d %d obj\n<<\n%s\n/M " % (ref.idnum, ref.generation, setup.signature_entries))
        generic.pdf_date(dt.datetime.now(dt.UTC)).write_to_stream(self.out)
        self.out.write(b"\n/ByteRange ")
        self.byte_range_at = self.out.tell()
        self.out.write(b" " * _BYTE_RANGE_WIDTH + b"\n/Contents ")
        self.contents_start = self.out.tell()
        self.out.write(b"<" + b"0" * setup.contents_reserved + b">")
        self.contents_end = self.out.tell()
        self.out.write(b"\n>>\nendobj\n")

    def finish(self, trailer_entries: bytes, previous_xref: int) -> None:
        """Append the cross-reference section and trailer; fill in /ByteRange (everything but the hole)."""
        xref_at = self.out.tell()
        lines = [b"xref\n0 1\n0000000000 65535 f \n"]
        numbers = sorted(self.offsets)
        start = 0
        for index, number in enumerate(numbers):  # one subsection per run of consecutive numbers
            if index + 1 == len(numbers) or numbers[index + 1] != number + 1:
                run = numbers[start : index + 1]
                lines.append(b"%d %d\n" % (run[0], len(run)))
                lines.extend(b"%010d 00000 n \n" % self.offsets[n] for n in run)
                start = index + 1
        lines.append(b"trailer\n<<\n%s/Prev %d\n>>\n" % (trailer_entries, previous_xref))
        lines.append(b"startxref\n%d\n%%%%EOF\n" % xref_at)
        self.out.write(b"".join(lines))
        end = self.out.tell()
        self.out.seek(self.byte_range_at)
        self.out.write(b"[0 %d %d %d]" % (self.contents_start, self.contents_end, end - self.contents_end))

    def digest(self) -> bytes:
        """SHA-256 over the byte range: the whole file but the /Contents hole."""
        with self.out.getbuffer() as view:
            document_digest = hashlib.sha256(view[: self.contents_start])
            document_digest.update(view[self.contents_end :])
        return document_digest.digest()

    def signed(self, cms_der: bytes) -> bytes:
        """The file with ``cms_der`` in the hole (hex, zero-padded as reserved)."""
        contents = cms_der.hex().upper().encode("ascii")
        if len(contents) > self.contents_end - self.contents_start - 2:
            raise RuntimeError(f"a CMS of {len(contents)} hex digits does not fit the space reserved for it")
        self.out.seek(self.contents_start + 1)
        self.out.write(contents)
        return self.out.getvalue()


def _signature_revision(pdf_bytes: bytes, setup: _SigningSetup) -> _SignatureRevision:
    """``pdf_bytes`` with the signature revision appended, its /Contents still to be filled in."""
    reader = PdfFileReader(BytesIO(pdf_bytes))
    trailer = reader.trailer_view
    catalog = reader.root
    if "/Encrypt" in trailer or not pdf_bytes.startswith(b"xref", reader.last_startxref):
        raise ValueError("sign_certificate signs unencrypted PDFs with a cross-reference table")
    if "/AcroForm" in catalog or "/Extensions" in catalog:
        raise ValueError("sign_certificate signs PDFs without a form or extensions (a rendered certificate)")
    page_ref = reader.find_page_for_modification(0)[0].reference
    page = page_ref.get_object()
    size = int(trailer["/Size"])
    form_ref, field_ref, signature_ref = (generic.Reference(size + i, 0, reader) for i in range(3))

    annotations = page.get("/Annots", generic.ArrayObject())
    page["/Annots"] = generic.ArrayObject(
        [*(annotations.raw_get(i) for i in range(len(annotations))), generic.IndirectObject(field_ref.idnum, 0, reader)]
    )
    catalog["/AcroForm"] = generic.IndirectObject(form_ref.idnum, 0, reader)
    if reader.input_version < setup.output_version:
        catalog["/Version"] = generic.pdf_name("/{}.{}".format(*setup.output_version))
    catalog["/Extensions"] = setup.extensions

    revision = _SignatureRevision(pdf_bytes)
    for ref, obj in sorted(((page_ref, page), (reader.root_ref, catalog)), key=lambda item: item[0].idnum):
        revision.add(ref, obj)
    revision.add(form_ref, b"<<\n/Fields [ %d 0 R ]\n/SigFlags 3\n>>" % field_ref.idnum)
    revision.add(
        field_ref,
        b"<<\n/FT /Sig\n/T %s\n/Type /Annot\n/Subtype /Widget\n/F %d\n/Rect [ 0 0 0 0 ]\n/P %d %d R\n/V %d 0 R\n>>"
        % (_FIELD_NAME, _WIDGET_FLAGS, page_ref.idnum, page_ref.generation, signature_ref.idnum),
    )
    revision.add_signature(signature_ref, setup)

    info = trailer.raw_get("/Info") if "/Info" in trailer else None
    try:
        first_id = reader.document_id[0]
    except KeyError:
        first_id = os.urandom(16)
    revision.finish(
        b"/Size %d\n/Root %d %d R\n%s/ID [ <%s> <%s> ]\n"
        % (
            size + 3,
            reader.root_ref.idnum,
            reader.root_ref.generation,
            b"" if info is None else b"/Info %d %d R\n" % (info.idnum, info.generation),
            first_id.hex().encode("ascii"),
            os.urandom(16).hex().encode("ascii"),  # a new file: a new second ID (what pyHanko does)
        ),
        reader.last_startxref,
    )
    return revision


async def async_sign_certificate(pdf_bytes: bytes, pki: IssuerPKI) -> bytes:
    """Return ``pdf_bytes`` with the issuer's PAdES signature appended as the file's last revision.

    Raises :class:`ValueError` for a PDF this signer does not handle: encrypted, a cross-reference stream,
    or a form or extension declarations already present (a rendered certificate has none of these).
    """
    setup = await _setup_for(pki)
    revision = _signature_revision(pdf_bytes, setup)
    digest = revision.digest()
    signature = await setup.signer.async_sign_raw(setup.cms.signed_attributes(digest), _MD_ALGORITHM)
    return revision.signed(setup.cms.content_info(digest, signature))


def sign_certificate(pdf_bytes: bytes, pki: IssuerPKI) -> bytes:
    """Sync twin of :func:`async_sign_certificate` (not for use inside a running event loop)."""
    _refuse_running_loop("sign_certificate", "async_sign_certificate")
    # One event loop per thread, reused: asyncio.run() would build and tear one down per PDF (~0.4 ms).
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    return loop.run_until_complete(async_sign_certificate(pdf_bytes, pki))


_loops = threading.local()


def _refuse_running_loop(name: str, async_name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{name}() cannot run inside an event loop; await {async_name}() instead")
