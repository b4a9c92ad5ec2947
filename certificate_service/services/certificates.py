"""Certificates (上链凭证): a record's payload per disclosure variant, its signed PDF, an enterprise's list.

A record has one certificate (``certificate_id``) and one signed PDF per *variant*: the canonical, sorted,
comma-separated list of the leaf field paths the PDF hides. ``contact`` and ``extensions`` are always hidden;
the enterprise may hide more. Each variant is rendered and signed once (by a small pool of worker processes),
stored, and served from the database afterwards, so its bytes (and its ``certificate_hash``) never change.

Anchor facts come from the indexer's tables or, while the indexer has not caught up, from the chain itself;
never from the upload. The issuer is the active ISSUER member whose on-chain fingerprint is the one of this
service's signing certificate; when there is none the service refuses to issue (fail closed).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from io import BytesIO
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from web3.exceptions import Web3Exception

from certificate_service.context import ServiceContext
from certificate_service.db.models import Certificate, Record
from certificate_service.errors import BadRequest, NotFound, Unavailable
from certificate_service.pdf.render import ATTACHMENT_NAME, render_certificate
from certificate_service.pdf.sign import async_sign_certificate
from certificate_service.pdf.workers import make_signed_certificate, warm_up
from certificate_service.repositories import anchors as anchor_repo
from certificate_service.repositories import certificates as certificate_repo
from certificate_service.repositories import members as member_repo
from certificate_service.repositories import records as record_repo
from certificate_service.services.tracing import ancestor_trace_codes
from certificate_service.worker_pool import WorkerPool
from trace_sdk.client.contracts import ROLES
from trace_sdk.exceptions import ChainError
from trace_sdk.protocol.canonical import canonicalize
from trace_sdk.protocol.certificate_ids import normalize_certificate_id
from trace_sdk.protocol.hashing import (
    Disclosure,
    disclose,
    flatten_fields,
    keccak256,
    leaf_hash,
    record_hash_from_disclosure,
    to_hex,
)
from trace_sdk.protocol.records import load_schema

__all__ = [
    "ALWAYS_HIDDEN",
    "CERTIFICATE_TYPE",
    "CHINA_STANDARD_TIME",
    "MAX_LIST_LIMIT",
    "NEVER_HIDDEN",
    "CertificateDocument",
    "CertificatePage",
    "CertificateSummary",
    "async_certificate_document",
    "build_payload",
    "certificate_hash",
    "disclosure_for",
    "embedded_payload",
    "list_certificates",
    "parse_hide",
]

CERTIFICATE_TYPE = "tracechain-certificate/v1"
ALWAYS_HIDDEN: tuple[str, ...] = ("contact", "extensions")
"""Personal data and free-form agency data: never on a certificate."""
NEVER_HIDDEN: tuple[str, ...] = ("schema", "record_id", "trace_code", "enterprise.uscc")
"""What identifies the record and its owner: always disclosed."""
MAX_LIST_LIMIT = 200
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")
ROLE_ISSUER = ROLES["ISSUER"]

_MAX_HIDE_NAMES = 64
_MAX_HIDE_NAME_CHARS = 256
_BATCH_ANCHORED_TOPIC = to_hex(keccak256(b"BatchAnchored(bytes32,address,uint256,uint8)"))

_T = TypeVar("_T")

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class CertificateDocument:
    """One stored, signed PDF variant of a certificate."""

    certificate_id: str
    """The canonical certificate id."""
    variant: str
    """Sorted, comma-separated leaf paths hidden in this PDF."""
    certificate_hash: str
    """``0x`` keccak256 of the RFC 8785 payload without its ``certificate_hash``."""
    pdf_sha256: str
    """Lowercase hex SHA-256 of the PDF bytes."""
    pdf: bytes
    """The signed PDF (its payload is attached as ``certificate.json``)."""


@dataclass(frozen=True, slots=True)
class CertificateSummary:
    """A line of an enterprise's certificate list."""

    certificate_id: str
    record_id: str
    trace_code: str
    product_name: str | None
    lot: str | None
    event_time: str
    """As the record states it (RFC 3339 with the agency's offset)."""
    biz_step: str | None
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class CertificatePage:
    """One page of an enterprise's certificates and how many match in total."""

    data: list[CertificateSummary]
    count: int


@dataclass(frozen=True, slots=True)
class _Draft:
    """A payload ready to be rendered, signed and stored."""

    certificate_id: str
    variant: str
    payload: dict[str, Any]
    verify_url: str


# ---------------------------------------------------------------------------------------------------- hiding


def parse_hide(values: str | Iterable[str] | None) -> list[str]:
    """The field names of ``?hide=a,b`` (repeated parameters allowed), deduplicated, in order."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    names = [part.strip() for item in items for part in item.split(",")]
    names = list(dict.fromkeys(name for name in names if name))
    if len(names) > _MAX_HIDE_NAMES:
        raise BadRequest(f"hide names at most {_MAX_HIDE_NAMES} fields, got {len(names)}")
    malformed = [
        name for name in names if len(name) > _MAX_HIDE_NAME_CHARS or any(not s for s in name.split("."))
    ]
    if malformed:
        raise BadRequest(
            f"malformed field name(s) in hide: {', '.join(malformed)} (use top-level names or dotted paths)",
            fields=malformed,
        )
    return names


@cache
def _schema() -> dict[str, Any]:
    return load_schema()


def _schema_knows(path: str) -> bool:
    """Whether ``path`` names a field (or a part of one) the trace-record schema defines."""
    node: Any = _schema()
    for segment in path.split("."):
        if not isinstance(node, dict):
            return False
        if "properties" in node:
            node = node["properties"].get(segment)
            if node is None:
                return False
        elif node.get("type") == "array":
            if not (segment.isascii() and segment.isdigit()):
                return False
            node = node.get("items")
        else:
            # A free-form object (extensions) takes any key; a scalar has no parts.
            return bool(node.get("type") == "object")
    return True


def _covers(name: str, path: str) -> bool:
    return path == name or path.startswith(name + ".")


def _hide_names(record: dict[str, Any], requested: Sequence[str]) -> list[str]:
    """The names to hide in ``record``: the checked request plus the always-hidden fields it holds."""
    protected = [name for name in requested if any(_covers(name, p) for p in NEVER_HIDDEN)]
    if protected:
        raise BadRequest(
            f"cannot hide {', '.join(protected)}: {', '.join(NEVER_HIDDEN)} identify the record and its "
            "enterprise and are always shown",
            fields=protected,
        )
    paths = list(flatten_fields(record))
    unknown = [
        name for name in requested if not _schema_knows(name) and not any(_covers(name, p) for p in paths)
    ]
    if unknown:
        raise BadRequest(f"unknown field(s) to hide: {', '.join(unknown)}", fields=unknown)
    wanted = dict.fromkeys([*requested, *ALWAYS_HIDDEN])
    return [name for name in wanted if any(_covers(name, p) for p in paths)]


def disclosure_for(record: Record, requested: Sequence[str]) -> tuple[Disclosure, str]:
    """The disclosure of ``record`` hiding ``requested`` (plus the always-hidden fields) and its variant."""
    disclosure = disclose(record.record, record.salts, _hide_names(record.record, requested))
    recomputed = record_hash_from_disclosure(
        disclosure.record, disclosure.salts, disclosure.hidden_field_hashes
    )
    if to_hex(recomputed) != record.record_hash:
        # The stored record no longer hashes to its anchored hash: never certify it.
        raise RuntimeError(f"stored record {record.record_hash} does not hash to its record hash")
    return disclosure, ",".join(sorted(disclosure.hidden_field_hashes))


# ---------------------------------------------------------------------------------------------------- payload


def certificate_hash(payload: dict[str, Any]) -> str:
    """``0x`` + keccak256 of the RFC 8785 form of ``payload`` without its ``certificate_hash``."""
    body = {key: value for key, value in payload.items() if key != "certificate_hash"}
    return to_hex(keccak256(canonicalize(body)))


def _iso(moment: datetime) -> str:
    """ISO 8601 in China Standard Time, to the second (the form printed on the certificate)."""
    return moment.astimezone(CHINA_STANDARD_TIME).isoformat(timespec="seconds")


def _chain_read(what: str, read: Callable[[], _T]) -> _T:
    """Run a chain read; an unreachable or failing chain is a 503 (the request may be retried)."""
    try:
        return read()
    except (ChainError, Web3Exception, OSError, ValueError) as exc:
        raise Unavailable(f"cannot read the chain ({what}): {exc}") from None


def _party(session: Session, context: ServiceContext, address: str) -> dict[str, str]:
    """Name, code and address of a member account (indexed table first, then the registry)."""
    member = member_repo.get_member(session=session, address=address)
    if member is not None:
        return {"name": member.name, "code": member.code, "address": member.address}
    entry = _chain_read("member entry", lambda: context.chain.member(address))
    return {"name": entry.name, "code": entry.code, "address": entry.account}


def _anchor(session: Session, context: ServiceContext, record: Record) -> dict[str, Any]:
    """Where and when the record's root was anchored: the indexed batch, else the chain itself."""
    if not record.root:
        raise Unavailable(f"record {record.record_hash} has no anchored batch")
    batch = anchor_repo.get_batch(session=session, root=record.root)
    if batch is not None:
        tx_hash, block_number, block_time, agency = (
            batch.tx_hash, batch.block_number, batch.block_time, batch.agency_address
        )
    else:
        root = bytes.fromhex(record.root[2:])
        found = _chain_read("anchored batch", lambda: context.chain.batch(root))
        if found is None:
            raise Unavailable(f"root {record.root} is not anchored on chain (a reorganisation?); retry later")
        logs = _chain_read(
            "BatchAnchored event",
            lambda: context.w3.eth.get_logs({
                "address": context.deployment.anchor_address,
                "topics": [_BATCH_ANCHORED_TOPIC, record.root],
                "fromBlock": found.block_number,
                "toBlock": found.block_number,
            }),
        )
        if not logs:
            raise Unavailable(f"the BatchAnchored event of {record.root} is not readable yet; retry later")
        tx_hash = to_hex(bytes(logs[0]["transactionHash"]))
        block_number, agency = found.block_number, found.agency
        block_time = datetime.fromtimestamp(found.timestamp, UTC)
    return {
        "tx_hash": tx_hash,
        "block_number": block_number,
        "block_time": _iso(block_time),
        "chain_id": context.deployment.chain_id,
        "contracts": {
            "ConsortiumRegistry": context.deployment.registry_address,
            "TraceAnchor": context.deployment.anchor_address,
        },
        "agency": _party(session, context, agency),
    }


def _issuer(session: Session, context: ServiceContext) -> dict[str, str]:
    """The active ISSUER member holding this service's certificate fingerprint; 503 when none does."""
    fingerprint = context.pki.fingerprint_sha256.lower().removeprefix("0x")
    fields = {"certificate_fingerprint_sha256": fingerprint}
    member = member_repo.get_member_by_fingerprint(session=session, fingerprint=fingerprint, active_only=True)
    if member is not None and member.roles & ROLE_ISSUER:
        return {"name": member.name, "code": member.code, "address": member.address, **fields}
    raw = bytes.fromhex(fingerprint)
    if _chain_read("issuer fingerprint", lambda: context.chain.is_issuer_fingerprint(raw)):
        registry = context.contract("ConsortiumRegistry")
        addresses = _chain_read("member list", lambda: registry.functions.memberAddresses().call())
        for address in reversed(addresses):
            registered = _chain_read("fingerprint", lambda a=address: context.chain.issuer_fingerprint(a))
            if registered != raw:
                continue
            entry = _chain_read("member entry", lambda a=address: context.chain.member(a))
            if entry.active and entry.roles & ROLE_ISSUER:
                return {"name": entry.name, "code": entry.code, "address": entry.account, **fields}
    raise Unavailable(
        f"the issuer certificate fingerprint {fingerprint} is not registered on chain for an active ISSUER "
        "member, so no certificate can be issued; the consortium must register it through governance",
        fingerprint=fingerprint,
    )


def build_payload(
    session: Session,
    context: ServiceContext,
    certificate: Certificate,
    record: Record,
    disclosure: Disclosure,
) -> dict[str, Any]:
    """The certificate payload of one disclosure (``certificate_hash`` included)."""
    payload: dict[str, Any] = {
        "type": CERTIFICATE_TYPE,
        "certificate_id": certificate.certificate_id,
        "issued_at": _iso(certificate.issued_at),
        "record": disclosure.record,
        "salts": disclosure.salts,
        "hidden_fields": {path: to_hex(h) for path, h in sorted(disclosure.hidden_field_hashes.items())},
        "record_hash": record.record_hash,
        "merkle": {
            "leaf": to_hex(leaf_hash(bytes.fromhex(record.record_hash[2:]))),
            "root": record.root,
            "proof": list(record.proof or []),
        },
        "anchor": _anchor(session, context, record),
        "issuer": _issuer(session, context),
        "lineage": {"upstream_trace_codes": ancestor_trace_codes(session, record.trace_code)},
    }
    payload["certificate_hash"] = certificate_hash(payload)
    return payload


# ------------------------------------------------------------------------------------------------ documents


def _owned(session: Session, enterprise_uscc: str, certificate_id: str) -> tuple[Certificate, Record]:
    """The certificate and record if the record names this enterprise; else 404 (existence not revealed)."""
    canonical = normalize_certificate_id(certificate_id)
    certificate = (
        certificate_repo.get_certificate(session=session, certificate_id=canonical) if canonical else None
    )
    record = (
        record_repo.get_record(session=session, record_hash=certificate.record_hash) if certificate else None
    )
    if certificate is None or record is None or record.enterprise_uscc != enterprise_uscc:
        raise NotFound(f"no certificate {certificate_id!r} among this enterprise's certificates")
    return certificate, record


def _prepare(
    session: Session, context: ServiceContext, enterprise_uscc: str, certificate_id: str, hide: Sequence[str]
) -> CertificateDocument | _Draft:
    """The stored variant, or the payload of a variant not rendered yet (ends the read transaction)."""
    try:
        certificate, record = _owned(session, enterprise_uscc, certificate_id)
        disclosure, variant = disclosure_for(record, hide)
        stored = certificate_repo.get_certificate_file(
            session=session, certificate_id=certificate.certificate_id, variant=variant, with_pdf=True
        )
        if stored is not None:
            return CertificateDocument(
                stored.certificate_id, stored.variant, stored.certificate_hash, stored.pdf_sha256, stored.pdf
            )
        payload = build_payload(session, context, certificate, record, disclosure)
        verify_url = f"{context.settings.PUBLIC_URL}/verify/{certificate.certificate_id}"
        return _Draft(certificate.certificate_id, variant, payload, verify_url)
    finally:
        # Rendering takes a while: hold no read snapshot meanwhile (SQLite could not upgrade it to write).
        session.rollback()


def _store(session: Session, draft: _Draft, pdf: bytes) -> CertificateDocument:
    """Store a freshly signed variant; if a concurrent request stored it first, return that one."""
    pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    certificate_repo.add_certificate_file(
        session=session,
        certificate_id=draft.certificate_id,
        variant=draft.variant,
        certificate_hash=draft.payload["certificate_hash"],
        pdf_sha256=pdf_sha256,
        pdf=pdf,
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        log.info("certificate %s variant %r was stored concurrently; serving that file",
                 draft.certificate_id, draft.variant)
        stored = certificate_repo.get_certificate_file(
            session=session, certificate_id=draft.certificate_id, variant=draft.variant, with_pdf=True
        )
        if stored is None:
            raise
        return CertificateDocument(
            stored.certificate_id, stored.variant, stored.certificate_hash, stored.pdf_sha256, stored.pdf
        )
    return CertificateDocument(
        draft.certificate_id, draft.variant, draft.payload["certificate_hash"], pdf_sha256, pdf
    )


async def async_certificate_document(
    *,
    session: Session,
    context: ServiceContext,
    enterprise_uscc: str,
    certificate_id: str,
    hide: str | Iterable[str] | None = None,
) -> CertificateDocument:
    """The signed PDF of a certificate of ``enterprise_uscc`` hiding ``hide``: stored, or made once now."""
    names = parse_hide(hide)
    prepared = await asyncio.to_thread(_prepare, session, context, enterprise_uscc, certificate_id, names)
    if isinstance(prepared, CertificateDocument):
        return prepared
    signed = await _async_signed_pdf(context, prepared)
    return await asyncio.to_thread(_store, session, prepared, signed)


# ------------------------------------------------------------------------------------------------ PDF workers
# Rendering and signing a certificate is pure CPU (~3 ms), and the service's event loop and request threads share
# one GIL: PDFs are made by a small pool of worker processes (certificate_service.worker_pool), in-process while
# it warms up or after it broke.

_pdf_workers = WorkerPool(max_workers=2, warm_up=warm_up)


async def _async_signed_pdf(context: ServiceContext, draft: _Draft) -> bytes:
    """Render and sign ``draft``: in a worker process once the pool is warm, else in this process."""
    pool = _pdf_workers.ready()
    if pool is not None:
        try:
            return await asyncio.wrap_future(
                pool.submit(
                    make_signed_certificate,
                    draft.payload,
                    draft.verify_url,
                    str(context.settings.DATA_DIR.resolve()),
                    context.pki.fingerprint_sha256,
                )
            )
        except BrokenProcessPool:
            log.warning("PDF workers died; making the PDF in-process")
            _pdf_workers.drop(pool)
        except Exception:  # e.g. the PKI a worker found is not this service's: the in-process path decides
            log.debug("PDF worker failed; making the PDF in-process", exc_info=True)
    rendered = await asyncio.to_thread(render_certificate, draft.payload, draft.verify_url)
    return await async_sign_certificate(rendered, context.pki)


def embedded_payload(pdf: bytes) -> bytes:
    """The RFC 8785 payload bytes attached to a certificate PDF as ``certificate.json``."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(BytesIO(pdf))
    names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
    for index in range(0, len(names) - 1, 2):
        if str(names[index]) == ATTACHMENT_NAME:
            return bytes(names[index + 1]["/EF"]["/F"].data)
    raise ValueError(f"the PDF has no {ATTACHMENT_NAME} attachment")


# ---------------------------------------------------------------------------------------------------- listing


def list_certificates(
    *,
    session: Session,
    enterprise_uscc: str,
    limit: int = 50,
    offset: int = 0,
    trace_code: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> CertificatePage:
    """The enterprise's certificates, newest event first; dates filter the event's own (local) date."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise BadRequest(f"limit must be from 1 to {MAX_LIST_LIMIT}, got {limit}")
    if offset < 0:
        raise BadRequest(f"offset must not be negative, got {offset}")
    if date_from is not None and date_to is not None and date_from > date_to:
        raise BadRequest(f"from ({date_from}) is after to ({date_to})")
    count, rows = certificate_repo.list_enterprise_certificates(
        session=session,
        enterprise_uscc=enterprise_uscc,
        limit=limit,
        offset=offset,
        trace_code=trace_code,
        date_from=date_from,
        date_to=date_to,
    )
    data = [
        CertificateSummary(
            certificate_id=row.certificate_id,
            record_id=row.record_id,
            trace_code=row.trace_code,
            product_name=(row.record.get("product") or {}).get("name"),
            lot=(row.record.get("product") or {}).get("lot"),
            event_time=row.record["event_time"],
            biz_step=row.record.get("biz_step"),
            issued_at=row.issued_at,
        )
        for row in rows
    ]
    return CertificatePage(data=data, count=count)

