"""Trace graphs (溯源倒查): the lots linked to a lot through ``inputs``/``outputs``, with their records,
enterprises and recall state.

``backward`` (溯源) follows a lot to the lots it came from, ``forward`` (追踪) to every lot that received
anything from it. Edges always point the way the goods went (``from`` input lot ``to`` output lot). The walk
is breadth-first, cycle-safe and bounded (:data:`MAX_TRACE_NODES`).

A lot is ``recalled`` when it or any lot upstream of it (transitively, through the service's current lot
links) was recalled on chain; recalls come from the indexer's ``recalls`` table.

Agencies (requests signed by an active member) get every record in full. The public gets a desensitised
view (:func:`desensitize_record`): no ``contact``, no ``extensions``, no document numbers, no record ids,
every USCC masked (:func:`mask_uscc`).
"""

from __future__ import annotations

import copy
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from sqlalchemy.orm import Session

from certificate_service.db.models import Record
from certificate_service.errors import BadRequest, NotFound
from certificate_service.repositories import anchors as anchor_repo
from certificate_service.repositories import records as record_repo
from certificate_service.services.agency_auth import authenticate_agency
from trace_sdk.protocol.certificate_ids import certificate_id_for
from trace_sdk.protocol.hashing import to_hex, trace_code_hash
from trace_sdk.verifier.chain_reader import ChainReader

__all__ = [
    "MAX_ANCESTORS",
    "MAX_TRACE_NODES",
    "PRIVATE_FIELDS",
    "Direction",
    "TraceGraph",
    "ancestor_trace_codes",
    "desensitize_record",
    "mask_uscc",
    "trace_graph",
]

Direction = Literal["backward", "forward"]
MAX_TRACE_NODES = 5_000
"""Most lots one trace answer holds (the answer says ``truncated`` when there were more)."""
MAX_ANCESTORS = 10_000
"""Most upstream lots followed when deciding whether a lot is recalled."""
PRIVATE_FIELDS: tuple[str, ...] = ("contact", "extensions")
"""Record fields no public answer ever contains."""

_TRACE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{5,127}$")
_CST = timezone(timedelta(hours=8), "CST")


# ---------------------------------------------------------------------------------------------------- privacy


def mask_uscc(uscc: Any) -> str:
    """``91310115735468487L`` -> ``9131****487L`` (first four and last four characters kept)."""
    text = str(uscc or "")
    return f"{text[:4]}****{text[-4:]}" if len(text) > 8 else "****"


def desensitize_record(
    record: Mapping[str, Any], *, keep_record_id: bool = False, mask_enterprise_uscc: bool = True
) -> dict[str, Any]:
    """A public copy of ``record``: no contact/extensions/document numbers, counterparty USCC masked.

    ``keep_record_id`` keeps ``record_id`` (printed on a certificate); ``mask_enterprise_uscc`` also masks
    the responsible enterprise's USCC (a certificate discloses it; a public trace does not).
    """
    public = {k: copy.deepcopy(v) for k, v in record.items() if k not in PRIVATE_FIELDS}
    public.pop("schema", None)
    if not keep_record_id:
        public.pop("record_id", None)
    documents = public.get("documents")
    if isinstance(documents, list):
        public["documents"] = [
            {k: v for k, v in doc.items() if k != "number"} if isinstance(doc, dict) else None for doc in documents
        ]
    counterparty = public.get("counterparty")
    if isinstance(counterparty, dict) and "uscc" in counterparty:
        counterparty["uscc"] = mask_uscc(counterparty["uscc"])
    enterprise = public.get("enterprise")
    if mask_enterprise_uscc and isinstance(enterprise, dict) and "uscc" in enterprise:
        enterprise["uscc"] = mask_uscc(enterprise["uscc"])
    return public


# ---------------------------------------------------------------------------------------------------- graph


@dataclass(frozen=True, slots=True)
class TraceGraph:
    """The answer of one trace: lots (nodes) and the links between them (edges)."""

    trace_code: str
    """The lot the trace started from."""
    direction: Direction
    """``backward`` (溯源, towards the sources) or ``forward`` (追踪, towards the recipients)."""
    full: bool
    """Whether records are complete (an authenticated agency) or desensitised (the public)."""
    nodes: list[dict[str, Any]]
    """``{"trace_code", "records", "enterprises", "recalled", "recall"}`` per lot, start lot first."""
    edges: list[dict[str, str]]
    """``{"from", "to"}``: lot ``from`` went into lot ``to``."""
    truncated: bool
    """True when the walk stopped at :data:`MAX_TRACE_NODES` lots."""

    def to_json(self) -> dict[str, Any]:
        """The API shape of the trace."""
        return {
            "trace_code": self.trace_code,
            "direction": self.direction,
            "view": "full" if self.full else "public",
            "truncated": self.truncated,
            "nodes": self.nodes,
            "edges": self.edges,
        }


def _check_trace_code(trace_code: str) -> str:
    """``trace_code`` if it matches the schema's pattern; 400 otherwise."""
    if not _TRACE_CODE.match(trace_code):
        raise BadRequest(
            "trace_code must be 6 to 128 characters: letters, digits and . _ : / - (starting with a letter or digit)"
        )
    return trace_code


def ancestor_trace_codes(session: Session, trace_code: str, *, limit: int = MAX_ANCESTORS) -> list[str]:
    """Every lot ``trace_code`` descends from, transitively, through the current lot links (sorted)."""
    parents = _parents_closure(session, [trace_code], limit=limit)
    seen: set[str] = set()
    frontier = [trace_code]
    while frontier:
        for parent in parents.get(frontier.pop(), ()):
            if parent != trace_code and parent not in seen:
                seen.add(parent)
                frontier.append(parent)
    return sorted(seen)


def _parents_closure(
    session: Session, codes: Iterable[str], *, limit: int, known: Mapping[str, list[str]] | None = None
) -> dict[str, list[str]]:
    """Parent lots of every lot in ``codes`` and of all their ancestors (at most ``limit`` lots read)."""
    parents: dict[str, list[str]] = dict(known or {})
    frontier = deque(code for code in codes)
    queued = set(frontier)
    while frontier:
        code = frontier.popleft()
        if code not in parents:
            if len(parents) >= limit:
                continue
            links = record_repo.list_input_links(session=session, trace_code=code)
            parents[code] = [link.from_trace_code for link in links]
        for parent in parents[code]:
            if parent not in queued:
                queued.add(parent)
                frontier.append(parent)
    return parents


def _recall_state(session: Session, codes: list[str], known: Mapping[str, list[str]]) -> dict[str, bool]:
    """Per lot: whether it or any lot upstream of it was recalled (indexed recalls)."""
    recalled_hashes = {row.trace_code_hash for row in anchor_repo.list_recalls(session=session)}
    if not recalled_hashes:
        return dict.fromkeys(codes, False)
    parents = _parents_closure(session, codes, limit=MAX_ANCESTORS, known=known)
    children: dict[str, list[str]] = {}
    for child, its_parents in parents.items():
        for parent in its_parents:
            children.setdefault(parent, []).append(child)
    universe = set(parents) | {p for ps in parents.values() for p in ps}
    tainted = {code for code in universe if to_hex(trace_code_hash(code)) in recalled_hashes}
    frontier = list(tainted)
    while frontier:
        for child in children.get(frontier.pop(), ()):
            if child not in tainted:
                tainted.add(child)
                frontier.append(child)
    return {code: code in tainted for code in codes}


def _iso(moment: datetime | None) -> str | None:
    """ISO 8601 in Beijing time, to the second (None stays None)."""
    return moment.astimezone(_CST).isoformat(timespec="seconds") if moment is not None else None


def _record_entry(session: Session, row: Record, *, full: bool) -> dict[str, Any]:
    """One record of a node: complete for agencies, desensitised for the public."""
    # Only a revocation under the record's own batch counts (a record not yet anchored has none).
    revocation = (
        anchor_repo.get_revocation(session=session, root=row.root, record_hash=row.record_hash)
        if row.root is not None
        else None
    )
    revoked = (
        {"reason": revocation.reason, "revoked_at": _iso(revocation.block_time), "tx_hash": revocation.tx_hash}
        if revocation is not None
        else None
    )
    if not full:
        return {"record": desensitize_record(row.record), "revoked": revocation is not None, "revocation": revoked}
    return {
        "record_hash": row.record_hash,
        "certificate_id": certificate_id_for(bytes.fromhex(row.record_hash[2:])),
        "agency": row.agency_address,
        "root": row.root,
        "record": row.record,
        "revoked": revocation is not None,
        "revocation": revoked,
    }


def _enterprises(rows: Iterable[Record], *, full: bool) -> list[dict[str, Any]]:
    """The enterprises a lot's records name: responsible enterprises and counterparties, once each."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        record = row.record
        for relation, party in (("subject", record.get("enterprise")), ("counterparty", record.get("counterparty"))):
            if not isinstance(party, dict) or not party.get("name"):
                continue
            uscc = party.get("uscc")
            key = (relation, uscc or party["name"])
            if key in found:
                continue
            entry: dict[str, Any] = {"name": party["name"], "relation": relation}
            if uscc:
                entry["uscc"] = uscc if full else mask_uscc(uscc)
            if party.get("role"):
                entry["role"] = party["role"]
            found[key] = entry
    return list(found.values())


def trace_graph(
    *,
    session: Session,
    chain: ChainReader,
    trace_code: str,
    direction: Direction,
    signer: str | None = None,
    max_nodes: int = MAX_TRACE_NODES,
) -> TraceGraph:
    """The lots reachable from ``trace_code`` in ``direction``; full records when ``signer`` is an active member.

    Raises NotFound when no record or lot link mentions the lot; Forbidden/Unavailable from the membership
    check of ``signer``.
    """
    _check_trace_code(trace_code)
    if direction not in ("backward", "forward"):
        raise BadRequest("direction must be backward or forward")
    full = signer is not None
    if signer is not None:
        authenticate_agency(chain, signer)

    order = [trace_code]
    seen = {trace_code}
    edges: dict[tuple[str, str], None] = {}
    parents: dict[str, list[str]] = {}
    truncated = False
    frontier = deque([trace_code])
    while frontier:
        code = frontier.popleft()
        if direction == "backward":
            links = record_repo.list_input_links(session=session, trace_code=code)
            parents[code] = [link.from_trace_code for link in links]
            neighbours = [(link.from_trace_code, link.from_trace_code, code) for link in links]
        else:
            links = record_repo.list_output_links(session=session, trace_code=code)
            neighbours = [(link.to_trace_code, code, link.to_trace_code) for link in links]
        for neighbour, source, target in neighbours:
            if neighbour not in seen:
                if len(seen) >= max_nodes:
                    truncated = True
                    continue
                seen.add(neighbour)
                order.append(neighbour)
                frontier.append(neighbour)
            edges[(source, target)] = None

    rows = {code: record_repo.list_records_by_trace_code(session=session, trace_code=code) for code in order}
    if not rows[trace_code] and not edges:
        raise NotFound(f"no record or lot link mentions trace code {trace_code!r}", trace_code=trace_code)
    recalled = _recall_state(session, order, parents)
    nodes = []
    for code in order:
        recall = anchor_repo.get_recall(session=session, trace_code_hash=to_hex(trace_code_hash(code)))
        nodes.append({
            "trace_code": code,
            "records": [_record_entry(session, row, full=full) for row in rows[code]],
            "enterprises": _enterprises(rows[code], full=full),
            "recalled": recalled[code],
            "recall": {"reason": recall.reason, "recalled_at": _iso(recall.block_time), "tx_hash": recall.tx_hash}
            if recall is not None
            else None,
        })
    return TraceGraph(
        trace_code=trace_code,
        direction=direction,
        full=full,
        nodes=nodes,
        edges=[{"from": s, "to": t} for s, t in edges if s in seen and t in seen],
        truncated=truncated,
    )

