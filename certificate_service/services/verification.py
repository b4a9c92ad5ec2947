"""Public verification of certificates (扫码验真) and the anti-counterfeit counter.

A certificate is looked up by what a consumer has at hand: its id (the QR code; typed input is normalised),
a ``0x`` hash (certificate hash of a stored PDF variant, or record hash), or the SHA-256 of a certificate PDF;
or the PDF itself is uploaded. Every answer comes from the shared verifier (``trace_sdk.verifier``), so the
API, the pages and ``tracechain verify`` report the same check names, plus one service check,
``registry_match``: the certificate is the one this platform registered (for an upload: the file is
byte-identical to a stored certificate file; otherwise the check names what disagrees).

Lookups verify the stored default-variant payload (``contact`` and ``extensions`` hidden), or the stored
variant a certificate hash / PDF SHA-256 names; before any PDF was downloaded, the default payload is built in
memory the way the certificate service builds it. The upstream lots of the service's *current* lot-link
graph are passed to the verifier, so a recall of any ancestor lot shows.

HTTP status: 200 for a decided verdict (valid, revoked, recalled, invalid), 404 ``not_found``; 503 with the
same JSON shape when the verdict is ``invalid`` only because checks could not be decided (chain, or another
dependency, unreachable: the shared verifier fails closed, ``valid`` is false, those checks say ``error``,
no check says ``invalid``) - the answer may be retried, and a forgery is never answered with 503.

Caching: stored payloads (immutable) are kept by certificate hash; whole public answers are kept, as JSON
bytes, by (certificate hash, lot-link version, revocation/recall version) where the versions are read from the
indexer's tables in one query. A lookup whose answer is cached and whose versions were read at most
``VERIFY_FRESHNESS_S`` ago (a background thread re-reads them twice per window) is answered from memory on
the event loop (:func:`cached_verification`): no database, no chain, no thread hop; so a new revocation,
recall or lot link shows within that window after the indexer stored it (0 = read the versions on every
lookup). Answers are recomputed in the background after :data:`RESULT_TTL_S` (agency names etc.) and served
meanwhile; answers with an ``error`` check are never cached. The counter is counted in memory and written in
batches (``verification_counter``).

Privacy: answers never contain ``contact``, ``extensions`` or document numbers; a counterparty's USCC is
masked (``9131****487L``); names of hidden fields are reduced to their top-level name.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import random
import threading
import time
import weakref
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from sqlalchemy.orm import Session

from certificate_service.context import ServiceContext
from certificate_service.db.models import Record
from certificate_service.errors import BadRequest, NotFound, PayloadTooLarge, ServiceError, Unavailable
from certificate_service.repositories import anchors as anchor_repo
from certificate_service.repositories import certificates as certificate_repo
from certificate_service.repositories import records as record_repo
from certificate_service.services import certificates as certificate_service
from certificate_service.services.tracing import (
    MAX_ANCESTORS,
    TraceGraph,
    ancestor_trace_codes,
    desensitize_record,
    trace_graph,
)
from trace_sdk.exceptions import CanonicalizationError
from trace_sdk.protocol.certificate_ids import normalize_certificate_id
from trace_sdk.protocol.hashing import flatten_fields
from trace_sdk.verifier.chain_reader import FactCache
from trace_sdk.verifier.checks import verify_payload
from trace_sdk.verifier.result import Check, VerificationResult

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_TIMELINE_EVENTS",
    "MAX_UPLOAD_BYTES",
    "REGISTRY_CHECK",
    "RESULT_TTL_S",
    "ParsedQuery",
    "VerificationPage",
    "VerificationView",
    "cached_verification",
    "parse_query",
    "refresh_versions",
    "verification_page",
    "verify_query",
    "verify_upload",
]

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
"""Largest certificate PDF accepted for upload (a genuine one is well under 200 KB)."""
MAX_QUERY_CHARS = 200
REGISTRY_CHECK = "registry_match"
RESULT_TTL_S = 300.0
"""Cached answers are recomputed at least this often, for the chain facts no table version covers (agency
names and the like; revocations, recalls and lot links are covered): an older one is still served while a
background thread recomputes it, for up to as long again. Each answer's refresh comes a random 0-20 % early,
so that answers cached together are not all recomputed in the same moment."""
MAX_TIMELINE_EVENTS = 100
NO_FILE_TTL_S = 10.0
"""How long "no stored default PDF yet" is believed before the database is asked again."""

_CST = timezone(timedelta(hours=8), "CST")
_HEX = frozenset("0123456789abcdef")

log = logging.getLogger(__name__)

QueryKind = Literal["certificate_id", "hash", "pdf_sha256"]


# ---------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """What a lookup names: a canonical certificate id, a ``0x`` 32-byte hash or a bare PDF SHA-256."""

    kind: QueryKind
    value: str


@dataclass(frozen=True, slots=True)
class VerificationView:
    """One public verification answer and the HTTP status it is served with."""

    http_status: int
    status: str
    """The verdict: valid, revoked, recalled, invalid or not_found."""
    undecided: bool
    """Invalid only because checks could not be decided (a dependency was unreachable), not a forgery."""
    fields: dict[str, Any]
    """The body's fields after ``prefix`` (all of them when there is no prefix)."""
    prefix: bytes | None = None
    """The JSON of a cached answer without its closing brace (``valid, status, checks, certificate, anchor``)."""

    @property
    def body(self) -> dict[str, Any]:
        """``valid, status, checks, certificate, anchor, verification`` (+ ``warning``)."""
        if self.prefix is None:
            return self.fields
        return {**json.loads(self.prefix + b"}"), **self.fields}

    def json_bytes(self) -> bytes:
        """The body as compact UTF-8 JSON (a cached answer's part is not serialised again)."""
        if self.prefix is None:
            return _dumps(self.fields)
        return self.prefix + b"," + _dumps(self.fields)[1:]


def _undecided(body: Mapping[str, Any]) -> bool:
    """Invalid only because checks could not be decided (no check found the certificate invalid)."""
    checks = body.get("checks") or ()
    return (
        body.get("status") == "invalid"
        and any(c["status"] == "error" for c in checks)
        and not any(c["status"] == "invalid" for c in checks)
    )


@dataclass(frozen=True, slots=True)
class VerificationPage:
    """What the verification page shows: the answer and the desensitised trace timelines."""

    view: VerificationView | None
    upstream: list[dict[str, Any]] = field(default_factory=list)
    """溯源: events of the certificate's lot and of every lot it came from, oldest first."""
    downstream: list[dict[str, Any]] = field(default_factory=list)
    """追踪: events of every lot that received anything from the certificate's lot, oldest first."""
    message: str | None = None
    """Why there is no answer (a malformed query, an empty or too large upload)."""
    message_status: int = 400
    """HTTP status of a page with a message instead of an answer."""

    @property
    def http_status(self) -> int:
        """The status the page is served with (the answer's, or the message's)."""
        return self.view.http_status if self.view is not None else self.message_status


@dataclass(frozen=True, slots=True)
class _Answer:
    """A cached public answer without counter: its JSON without the closing brace, and its verdict.

    Kept as bytes, not as the dict: thousands of cached answers as nested dicts made the garbage collector's
    full scans stall a worker for tens of milliseconds.
    """

    prefix: bytes
    status: str
    undecided: bool
    made_at: float
    """When it was computed (``time.monotonic``), moved back by up to a fifth of :data:`RESULT_TTL_S`."""


def _dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as Starlette's JSONResponse writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _answer(body: dict[str, Any]) -> _Answer:
    """A body to cache, serialised once."""
    early = random.uniform(0, 0.2 * RESULT_TTL_S)
    return _Answer(_dumps(body)[:-1], str(body["status"]), _undecided(body), time.monotonic() - early)


@dataclass(frozen=True, slots=True)
class _Target:
    """The certificate a lookup resolved to, and the stored variant it names (None = the default one)."""

    certificate_id: str
    file_certificate_hash: str | None


@dataclass(frozen=True, slots=True)
class _Facts:
    """Immutable facts of a certificate the lookups need."""

    record_hash: str
    trace_code: str
    default_variant: str


@dataclass(frozen=True, slots=True)
class _Versions:
    """Versions of the mutable tables the answers depend on (read once per request)."""

    links: int
    status: tuple[int, int, int, int]


class _Caches:
    """Caches of one service context (one deployment, one database)."""

    def __init__(self) -> None:
        """Empty caches."""
        self.targets = FactCache(65_536)  # (kind, value) -> _Target (positive answers only)
        self.facts = FactCache(65_536)  # certificate_id -> _Facts
        self.default_files = FactCache(65_536)  # certificate_id -> certificate hash of its stored default file
        self.no_default_file = FactCache(65_536, ttl_seconds=NO_FILE_TTL_S)  # certificate_id -> True (none yet)
        self.payloads = FactCache(4_096)  # certificate hash -> stored payload (JSON bytes)
        self.built = FactCache(4_096, ttl_seconds=2 * RESULT_TTL_S)  # (certificate_id, links) -> (hash, JSON)
        self.lineage = FactCache(16_384)  # (trace_code, links) -> ancestor trace codes
        self.results = FactCache(16_384, ttl_seconds=2 * RESULT_TTL_S)  # (hash, links, status) -> _Answer
        self.refreshing: set[_Target] = set()  # answers being recomputed in the background
        self.refreshing_lock = threading.Lock()
        self.refresher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="verification-refresh")
        self._versions: tuple[float, _Versions] | None = None  # (monotonic time read, versions)

    def remember_versions(self, versions: _Versions) -> None:
        """Note the table versions just read from the database."""
        self._versions = (time.monotonic(), versions)

    def fresh_versions(self, max_age_s: float) -> _Versions | None:
        """The table versions if they were read at most ``max_age_s`` ago, else None."""
        snapshot = self._versions
        if snapshot is None or time.monotonic() - snapshot[0] > max_age_s:
            return None
        return snapshot[1]


_CACHES: dict[int, _Caches] = {}


def _caches(context: ServiceContext) -> _Caches:
    """The caches of ``context`` (dropped when the context is garbage collected)."""
    key = id(context)
    caches = _CACHES.get(key)
    if caches is None:
        caches = _CACHES.setdefault(key, _Caches())
        weakref.finalize(context, _CACHES.pop, key, None)
    return caches


# ---------------------------------------------------------------------------------------------------- parsing


def _is_hex(text: str) -> bool:
    """Whether ``text`` is non-empty lowercase hexadecimal."""
    return bool(text) and all(c in _HEX for c in text)


def parse_query(query: str) -> ParsedQuery:
    """Classify typed input as a certificate id, a ``0x`` hash or a PDF SHA-256; 400 when it is none."""
    text = query.strip()
    if not text or len(text) > MAX_QUERY_CHARS:
        raise BadRequest(f"give a certificate id, a 0x hash or a PDF SHA-256 (at most {MAX_QUERY_CHARS} characters)")
    lowered = text.lower()
    if lowered.startswith("0x") and len(lowered) == 66 and _is_hex(lowered[2:]):
        return ParsedQuery("hash", lowered)
    if len(lowered) == 64 and _is_hex(lowered):
        return ParsedQuery("pdf_sha256", lowered)
    certificate_id = normalize_certificate_id(text)  # ids may start with "0X" too
    if certificate_id is None:
        if lowered.startswith("0x"):
            raise BadRequest("a hash must be 0x followed by 64 hexadecimal digits", query=text[:80])
        raise BadRequest(
            "not a certificate id (20 characters, e.g. 7K2M9-QX4HR-PW3NV-8YJ0C), a 0x hash or a PDF SHA-256",
            query=text[:80],
        )
    return ParsedQuery("certificate_id", certificate_id)


# ---------------------------------------------------------------------------------------------------- reads


@functools.lru_cache(maxsize=65_536)  # every answer shows a first_verified_at: format each distinct one once
def _iso(moment: datetime) -> str:
    """ISO 8601 in Beijing time, to the second."""
    return moment.astimezone(_CST).isoformat(timespec="seconds")


def _read_versions(session: Session, caches: _Caches) -> _Versions:
    """Lot-link and revocation/recall versions, in one query (remembered for the cached path)."""
    links, revocations, revoked_at, recalls, recalled_at = anchor_repo.table_versions(session=session)
    versions = _Versions(links, (revocations, revoked_at, recalls, recalled_at))
    caches.remember_versions(versions)
    return versions


def _resolve(session: Session, caches: _Caches, query: ParsedQuery) -> _Target | None:
    """The certificate (and stored variant) ``query`` names, or None."""
    key = (query.kind, query.value)
    target: _Target | None = caches.targets.get(key)
    if target is not None:
        return target
    if query.kind == "certificate_id":
        certificate = certificate_repo.get_certificate(session=session, certificate_id=query.value)
        target = _Target(certificate.certificate_id, None) if certificate is not None else None
    elif query.kind == "hash":
        stored = certificate_repo.get_file_by_certificate_hash(session=session, certificate_hash=query.value)
        if stored is not None:
            target = _Target(stored.certificate_id, stored.certificate_hash)
        else:
            certificate = certificate_repo.get_certificate_by_record(session=session, record_hash=query.value)
            if certificate is not None:
                target = _Target(certificate.certificate_id, None)
            else:
                stored = certificate_repo.get_file_by_pdf_sha256(session=session, pdf_sha256=query.value[2:])
                target = _Target(stored.certificate_id, stored.certificate_hash) if stored is not None else None
    else:
        stored = certificate_repo.get_file_by_pdf_sha256(session=session, pdf_sha256=query.value)
        target = _Target(stored.certificate_id, stored.certificate_hash) if stored is not None else None
    if target is not None:
        caches.targets.put(key, target)
    return target


def _load(session: Session, certificate_id: str) -> tuple[Any, Record]:
    """The certificate row and its record (404 if either vanished)."""
    certificate = certificate_repo.get_certificate(session=session, certificate_id=certificate_id)
    record = record_repo.get_record(session=session, record_hash=certificate.record_hash) if certificate else None
    if certificate is None or record is None:
        raise NotFound(f"no certificate {certificate_id}")
    return certificate, record


def _facts(session: Session, caches: _Caches, certificate_id: str) -> _Facts:
    """The immutable facts of a certificate (cached after the first read)."""
    facts: _Facts | None = caches.facts.get(certificate_id)
    if facts is None:
        _certificate, record = _load(session, certificate_id)
        _disclosure, variant = certificate_service.disclosure_for(record, [])
        facts = _Facts(record.record_hash, record.trace_code, variant)
        caches.facts.put(certificate_id, facts)
    return facts


def _stored_payload(session: Session, caches: _Caches, certificate_hash: str) -> dict[str, Any]:
    """The payload signed into a stored certificate file (read from its PDF once)."""
    embedded: bytes | None = caches.payloads.get(certificate_hash)
    if embedded is None:
        stored = certificate_repo.get_file_by_certificate_hash(
            session=session, certificate_hash=certificate_hash, with_pdf=True
        )
        if stored is None:
            raise NotFound(f"no certificate file {certificate_hash}")
        embedded = certificate_service.embedded_payload(stored.pdf)
        caches.payloads.put(certificate_hash, embedded)
    payload: dict[str, Any] = json.loads(embedded)
    return payload


def _payload_for(
    session: Session, context: ServiceContext, caches: _Caches, target: _Target, versions: _Versions,
    *, fresh: bool = False,
) -> dict[str, Any]:
    """The payload a lookup verifies: the named stored variant, else the default variant (stored or built;
    built anew if ``fresh``)."""
    if target.file_certificate_hash is not None:
        return _stored_payload(session, caches, target.file_certificate_hash)
    certificate_id = target.certificate_id
    file_hash: str | None = caches.default_files.get(certificate_id)
    if file_hash is None and not caches.no_default_file.get(certificate_id):
        facts = _facts(session, caches, certificate_id)
        stored = certificate_repo.get_certificate_file(
            session=session, certificate_id=certificate_id, variant=facts.default_variant
        )
        if stored is not None:
            file_hash = stored.certificate_hash
            caches.default_files.put(certificate_id, file_hash)
        else:
            caches.no_default_file.put(certificate_id, True)
    if file_hash is not None:
        return _stored_payload(session, caches, file_hash)
    key = (certificate_id, versions.links)
    built: tuple[str | None, bytes] | None = None if fresh else caches.built.get(key)
    if built is None:
        certificate, record = _load(session, certificate_id)
        disclosure, _variant = certificate_service.disclosure_for(record, [])
        payload = certificate_service.build_payload(session, context, certificate, record, disclosure)
        caches.built.put(key, (payload.get("certificate_hash"), _dumps(payload)))
        return payload
    loaded: dict[str, Any] = json.loads(built[1])
    return loaded


def _ancestors(session: Session, caches: _Caches, trace_code: Any, links: int) -> tuple[str, ...]:
    """Every upstream lot of ``trace_code`` in the current lot-link graph."""
    if not isinstance(trace_code, str) or not trace_code:
        return ()
    key = (trace_code, links)
    codes: tuple[str, ...] | None = caches.lineage.get(key)
    if codes is None:
        codes = tuple(ancestor_trace_codes(session, trace_code, limit=MAX_ANCESTORS))
        caches.lineage.put(key, codes)
    return codes


# ---------------------------------------------------------------------------------------------------- answers


def _public_body(result: VerificationResult, registry: Check) -> dict[str, Any]:
    """The verifier's JSON plus the registry check, desensitised; ``registry_match`` invalid = invalid."""
    data = result.to_json()
    status = "invalid" if registry.status == "invalid" else data["status"]
    certificate = data["certificate"]
    if isinstance(certificate.get("record"), dict):
        certificate["record"] = desensitize_record(
            certificate["record"], keep_record_id=True, mask_enterprise_uscc=False
        )
    certificate["hidden_fields"] = sorted({str(path).split(".")[0] for path in certificate.get("hidden_fields") or ()})
    return {
        "valid": status == "valid",
        "status": status,
        "checks": [*data["checks"], registry.to_json()],
        "certificate": certificate,
        "anchor": data["anchor"],
    }


def _bare_body(status: str, check_status: str, message: str, certificate: dict[str, Any]) -> dict[str, Any]:
    """An answer without a verification run (not found, or a dependency down)."""
    return {
        "valid": False,
        "status": status,
        "checks": [{"name": "payload_integrity", "status": check_status, "message": message}],
        "certificate": certificate,
        "anchor": None,
    }


def _not_found(query: ParsedQuery) -> VerificationView:
    """The 404 answer for a lookup that names no certificate."""
    certificate_id = query.value if query.kind == "certificate_id" else None
    body = _bare_body(
        "not_found", "invalid", f"未找到与 {query.value} 对应的证书", {"certificate_id": certificate_id}
    )
    body["query"] = query.value
    body["verification"] = None
    return VerificationView(404, "not_found", False, body)


def _finish(
    answer: _Answer | dict[str, Any], verification: dict[str, Any] | None, warn_count: int
) -> VerificationView:
    """Attach the counter (and the copied-code warning) and pick the HTTP status."""
    if isinstance(answer, _Answer):
        status, undecided, prefix, fields = answer.status, answer.undecided, answer.prefix, {}
    else:
        status, undecided, prefix, fields = str(answer["status"]), _undecided(answer), None, dict(answer)
    fields["verification"] = verification
    if verification is not None and verification["count"] > warn_count:
        fields["warning"] = (
            f"该证书已被公开查验 {verification['count']} 次（超过 {warn_count} 次），二维码或证书编号可能被复制，"
            "请核对产品、批次与包装是否一致，谨防假冒。"
        )
    http_status = 404 if status == "not_found" else 503 if undecided else 200
    return VerificationView(http_status, status, undecided, fields, prefix)


def _count(session: Session, context: ServiceContext, certificate_id: str, at: datetime) -> dict[str, Any] | None:
    """Count one public verification; ``{count, first_verified_at}``, or None for an unknown certificate."""
    counted = context.verification_counter.load_and_count(session, certificate_id, at)
    return None if counted is None else _verification(counted)


def _verification(counted: tuple[int, datetime]) -> dict[str, Any]:
    """The public form of a count and its first time."""
    return {"count": counted[0], "first_verified_at": _iso(counted[1])}


def _cached_key(caches: _Caches, target: _Target, versions: _Versions) -> tuple[Any, ...] | None:
    """The answer cache key of ``target`` if every fact it needs is cached, else None."""
    file_hash = target.file_certificate_hash or caches.default_files.get(target.certificate_id)
    if file_hash is None:
        if not caches.no_default_file.get(target.certificate_id):
            return None
        built: tuple[str | None, bytes] | None = caches.built.get((target.certificate_id, versions.links))
        if built is None:
            return None
        file_hash = built[0]
    return (file_hash, versions.links, versions.status)


def refresh_versions(context: ServiceContext) -> None:
    """Read the table versions now, so that lookups keep being answered from memory."""
    with context.sessions() as session:
        _read_versions(session, _caches(context))


def cached_verification(*, context: ServiceContext, query: str, now: datetime | None = None) -> VerificationView | None:
    """The answer to a lookup from memory alone (no database, no chain), counted; None if anything is missing.

    Used directly on the event loop: a known target, table versions read at most ``VERIFY_FRESHNESS_S`` ago,
    the cached answer for them and a loaded counter. Raises BadRequest for a malformed query.
    """
    parsed = parse_query(query)
    caches = _caches(context)
    target: _Target | None = caches.targets.get((parsed.kind, parsed.value))
    if target is None:
        return None
    versions = caches.fresh_versions(context.settings.VERIFY_FRESHNESS_S)
    if versions is None:
        return None
    key = _cached_key(caches, target, versions)
    answer: _Answer | None = caches.results.get(key) if key is not None else None
    if answer is None:
        return None
    if time.monotonic() - answer.made_at > RESULT_TTL_S:
        _refresh_later(context, caches, target)
    counted = context.verification_counter.count(target.certificate_id, now or datetime.now(UTC))
    if counted is None:
        return None
    return _finish(answer, _verification(counted), context.settings.VERIFY_WARN_COUNT)


def verify_query(
    *, context: ServiceContext, query: str, session: Session | None = None, now: datetime | None = None
) -> VerificationView:
    """Verify the certificate ``query`` names and count the verification (400 for malformed input).

    Answered from memory when possible (:func:`cached_verification`); otherwise with ``session``, or a
    session opened (and closed) here.
    """
    at = now or datetime.now(UTC)
    cached = cached_verification(context=context, query=query, now=at)
    if cached is not None:
        return cached
    if session is None:
        with context.sessions() as own:
            return _verify_stored(context, parse_query(query), own, at)
    return _verify_stored(context, parse_query(query), session, at)


def _answer_for(
    session: Session, context: ServiceContext, caches: _Caches, target: _Target, versions: _Versions,
    *, fresh: bool = False,
) -> _Answer | dict[str, Any]:
    """The public answer (without counter) for ``target`` under ``versions``: cached, or computed and cached
    (always computed if ``fresh``); a bare undecided body when its payload cannot be built now."""
    try:
        payload = _payload_for(session, context, caches, target, versions, fresh=fresh)
    except Unavailable as exc:
        message = f"暂时无法核验：{exc.message}"
        return _bare_body("invalid", "error", message, {"certificate_id": target.certificate_id})
    key = (payload.get("certificate_hash"), versions.links, versions.status)
    cached: _Answer | None = None if fresh else caches.results.get(key)
    if cached is None:
        ancestors = _ancestors(session, caches, _get(payload, "record", "trace_code"), versions.links)
        result = verify_payload(payload, context.chain, extra_upstream_trace_codes=ancestors)
        message = f"证书 {target.certificate_id} 已在本平台登记，证书数据取自登记库"
        public = _public_body(result, Check(REGISTRY_CHECK, "valid", message))
        cached = _answer(public)
        if not any(check["status"] == "error" for check in public["checks"]):
            caches.results.put(key, cached)
    return cached


def _refresh_later(context: ServiceContext, caches: _Caches, target: _Target) -> None:
    """Recompute the answer of ``target`` in the background (once at a time per target)."""
    with caches.refreshing_lock:
        if target in caches.refreshing:
            return
        caches.refreshing.add(target)
    caches.refresher.submit(_refresh, context, caches, target)


def _refresh(context: ServiceContext, caches: _Caches, target: _Target) -> None:
    """Compute the answer of ``target`` anew and cache it (an undecided one is not cached: the old one stays
    until it expires, then lookups take the slow path and say so)."""
    try:
        with context.sessions() as session:
            try:
                _answer_for(session, context, caches, target, _read_versions(session, caches), fresh=True)
            finally:
                session.rollback()
    except Exception:
        log.warning("could not recompute the verification answer of %s", target.certificate_id, exc_info=True)
    finally:
        with caches.refreshing_lock:
            caches.refreshing.discard(target)


def _verify_stored(context: ServiceContext, parsed: ParsedQuery, session: Session, at: datetime) -> VerificationView:
    """The answer to a lookup read from the database (and the chain where not cached), counted."""
    caches = _caches(context)
    try:
        target = _resolve(session, caches, parsed)
        if target is None:
            return _not_found(parsed)
        versions = _read_versions(session, caches)
        body = _answer_for(session, context, caches, target, versions)
        verification = _count(session, context, target.certificate_id, at)
    except NotFound:
        return _not_found(parsed)
    finally:
        session.rollback()
    if verification is None:
        return _not_found(parsed)
    return _finish(body, verification, context.settings.VERIFY_WARN_COUNT)


# ---------------------------------------------------------------------------------------------------- uploads


def _get(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...``, or None where a level is missing or not an object."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _hash32(value: Any) -> str | None:
    """``value`` as lowercase ``0x`` hex if it is a 32-byte hash, else None."""
    if isinstance(value, str) and value.lower().startswith("0x") and len(value) == 66 and _is_hex(value[2:].lower()):
        return value.lower()
    return None


def _disagreements(session: Session, payload: Mapping[str, Any], record: Record, certificate: Any) -> list[str]:
    """What the payload states differently from the registry (field paths only, never values)."""
    problems: list[str] = []
    if certificate is None or payload.get("certificate_id") != certificate.certificate_id:
        problems.append("证书编号与登记不符")
    if certificate is not None and payload.get("issued_at") != certificate_service._iso(certificate.issued_at):
        problems.append("签发时间与登记不符")
    if _get(payload, "merkle", "root") != record.root or _get(payload, "merkle", "proof") != list(record.proof or []):
        problems.append("Merkle 根或证明与登记不符")
    batch = anchor_repo.get_batch(session=session, root=record.root) if record.root else None
    anchor = (_get(payload, "anchor", "tx_hash"), _get(payload, "anchor", "block_number"))
    if batch is not None and anchor != (batch.tx_hash, batch.block_number):
        problems.append("上链交易或区块与登记不符")
    stored = flatten_fields(record.record)
    hidden = payload.get("hidden_fields") if isinstance(payload.get("hidden_fields"), dict) else {}
    disclosed_record = payload.get("record")
    try:
        disclosed = flatten_fields(disclosed_record) if isinstance(disclosed_record, dict) else {}
    except CanonicalizationError:
        disclosed = {}
        problems.append("公开字段无法解析")
    differing = [
        path
        for path, value in disclosed.items()
        if not (value is None and any(h.startswith(path + ".") or h == path for h in hidden))
        and (path not in stored or stored[path] != value)
    ]
    differing += [path for path in hidden if path not in stored]
    if differing:
        shown = "、".join(sorted(differing)[:10]) + ("等" if len(differing) > 10 else "")
        problems.append(f"字段 {shown} 与登记的记录不符")
    return problems


def _registry_check(session: Session, payload: dict[str, Any] | None, pdf_sha256: str) -> tuple[Check, str | None]:
    """Whether the uploaded file is a registered certificate file, and the certificate it belongs to."""
    name = REGISTRY_CHECK
    stored = certificate_repo.get_file_by_pdf_sha256(session=session, pdf_sha256=pdf_sha256)
    if stored is not None:
        return Check(name, "valid", "文件与本平台登记的证书文件逐字节一致"), stored.certificate_id
    if payload is None:
        return Check(name, "invalid", "文件中没有可读的证书数据，且不是本平台登记的证书文件"), None
    try:
        actual = certificate_service.certificate_hash(payload)
    except (CanonicalizationError, ValueError, TypeError):
        actual = None
    same = certificate_repo.get_file_by_certificate_hash(session=session, certificate_hash=actual) if actual else None
    if same is not None:
        message = "证书数据与登记一致，但文件与登记的证书文件不一致（签名后被改动、追加内容或重新签名）"
        return Check(name, "invalid", message), same.certificate_id
    record_hash = _hash32(payload.get("record_hash"))
    record = record_repo.get_record(session=session, record_hash=record_hash) if record_hash else None
    if record is None:
        return Check(name, "invalid", "本平台登记库中没有该证书及其记录（证书不是本平台签发的）"), None
    certificate = certificate_repo.get_certificate_by_record(session=session, record_hash=record.record_hash)
    problems = ["证书数据与本平台登记的任何证书文件都不一致（证书数据被改动）"]
    problems += _disagreements(session, payload, record, certificate)
    return Check(name, "invalid", "；".join(problems)), certificate.certificate_id if certificate else None


def verify_upload(
    *, session: Session, context: ServiceContext, pdf: bytes, now: datetime | None = None
) -> VerificationView:
    """Verify an uploaded certificate PDF (signature, chain, registry) and count it for its certificate."""
    from trace_sdk.verifier.pdf_evidence import read_certificate_pdf  # pyHanko is loaded for uploads only

    if not pdf:
        raise BadRequest("the uploaded file is empty")
    if len(pdf) > MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"the PDF exceeds {MAX_UPLOAD_BYTES} bytes", limit=MAX_UPLOAD_BYTES)
    evidence = read_certificate_pdf(pdf, [context.pki.ca_pem])
    caches = _caches(context)
    try:
        versions = _read_versions(session, caches)
        registry, certificate_id = _registry_check(session, evidence.payload, hashlib.sha256(pdf).hexdigest())
        ancestors = _ancestors(session, caches, _get(evidence.payload, "record", "trace_code"), versions.links)
        result = verify_payload(
            evidence.payload,
            context.chain,
            pdf=evidence,
            extra_upstream_trace_codes=ancestors,
            require_ca_chain=True,
        )
        at = now or datetime.now(UTC)
        verification = _count(session, context, certificate_id, at) if certificate_id else None
    finally:
        session.rollback()
    body = _public_body(result, registry)
    return _finish(body, verification, context.settings.VERIFY_WARN_COUNT)


# ---------------------------------------------------------------------------------------------------- page


def _event_key(event: Mapping[str, Any]) -> tuple[int, str]:
    """Sort key of a timeline event: its instant (unparseable times last)."""
    try:
        return 0, datetime.fromisoformat(str(event.get("event_time"))).astimezone(UTC).isoformat()
    except ValueError:
        return 1, str(event.get("event_time"))


def _timeline(graph: TraceGraph, *, exclude: str | None = None) -> list[dict[str, Any]]:
    """The events of a public trace graph, oldest first (at most :data:`MAX_TIMELINE_EVENTS`)."""
    events: list[dict[str, Any]] = []
    for node in graph.nodes:
        if node["trace_code"] == exclude:
            continue
        for entry in node["records"]:
            record = entry["record"]
            events.append({
                "trace_code": node["trace_code"],
                "own_lot": node["trace_code"] == graph.trace_code,
                "event_time": record.get("event_time"),
                "biz_step": record.get("biz_step"),
                "enterprise": _get(record, "enterprise", "name"),
                "product": _get(record, "product", "name"),
                "lot": _get(record, "product", "lot"),
                "location": _get(record, "location", "name"),
                "recalled": node["recalled"],
                "revoked": entry["revoked"],
            })
    events.sort(key=_event_key)
    return events[:MAX_TIMELINE_EVENTS]


def _timelines(
    session: Session, context: ServiceContext, trace_code: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Upstream (溯源, own lot included) and downstream (追踪) public timelines of a lot."""
    if not isinstance(trace_code, str):
        return [], []
    try:
        backward = trace_graph(session=session, chain=context.chain, trace_code=trace_code, direction="backward")
        forward = trace_graph(session=session, chain=context.chain, trace_code=trace_code, direction="forward")
    except ServiceError:
        return [], []
    finally:
        session.rollback()
    return _timeline(backward), _timeline(forward, exclude=trace_code)


def verification_page(
    *,
    session: Session,
    context: ServiceContext,
    query: str | None = None,
    pdf: bytes | None = None,
    now: datetime | None = None,
) -> VerificationPage:
    """The answer for the page (a lookup or an upload) with its trace timelines; input errors become a message."""
    try:
        if pdf is not None:
            view = verify_upload(session=session, context=context, pdf=pdf, now=now)
        else:
            view = verify_query(context=context, query=query or "", session=session, now=now)
    except PayloadTooLarge as exc:
        message = f"文件超过 {MAX_UPLOAD_BYTES // (1024 * 1024)} MB。证书 PDF 通常只有几十 KB，请确认选择的文件。"
        return VerificationPage(view=None, message=message, message_status=exc.status_code)
    except BadRequest as exc:
        message = (
            "请选择要上传的证书 PDF 文件。"
            if pdf is not None
            else "请输入正确的证书编号（20 位，如 7K2M9-QX4HR-PW3NV-8YJ0C）、0x 开头的哈希或证书 PDF 的 SHA-256。"
        )
        return VerificationPage(view=None, message=message, message_status=exc.status_code)
    if view.status == "not_found" or view.undecided or (pdf is not None and view.status == "invalid"):
        return VerificationPage(view=view)
    upstream, downstream = _timelines(session, context, _get(view.body, "certificate", "trace_code"))
    return VerificationPage(view=view, upstream=upstream, downstream=downstream)

