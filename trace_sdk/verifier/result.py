"""Typed, frozen verdicts of a certificate verification (one `Check` per rule, one `VerificationResult`).

A failed verification is a value, not an exception: `VerificationResult.ok` is the bottom line, and
`to_json()` is the one JSON shape shared by the CLI (`--json`) and the certificate service.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "CHECK_NAMES",
    "INTEGRITY_CHECKS",
    "STATUS_CHECKS",
    "Check",
    "CheckStatus",
    "LotRecall",
    "RecordRevocation",
    "Verdict",
    "VerificationResult",
    "decide_verdict",
]

CheckStatus = Literal["valid", "invalid", "error", "skipped"]
"""Outcome of one check; `error` = could not be decided (chain unreachable...), never counted as valid."""

Verdict = Literal["valid", "revoked", "recalled", "invalid", "not_found"]
"""Bottom line (the API's `status` values). A check that could not be decided (chain unreachable) makes the
result `invalid` — fail closed — and `VerificationResult.undecided` tells it apart from a forgery."""

INTEGRITY_CHECKS: tuple[str, ...] = (
    "payload_integrity",
    "merkle_proof",
    "anchored_on_chain",
    "agency_membership",
    "pdf_signature",
)
"""Checks that prove the certificate authentic; any of them invalid makes the certificate invalid."""

STATUS_CHECKS: tuple[str, ...] = ("not_revoked", "not_recalled")
"""Checks about the current standing of an authentic certificate."""

CHECK_NAMES: tuple[str, ...] = INTEGRITY_CHECKS + STATUS_CHECKS
"""Every check, in report order (stable names shared by the CLI and the service)."""

VERDICT_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "valid": "有效 / VALID",
        "revoked": "已撤销 / REVOKED",
        "recalled": "已召回 / RECALLED",
        "invalid": "无效 / INVALID",
        "not_found": "未找到 / NOT FOUND",
    }
)
"""Chinese + English label of each verdict, for human output."""


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one named verification rule."""

    name: str
    """Stable check name (see `CHECK_NAMES`)."""
    status: CheckStatus
    """`valid`, `invalid`, `error` (undecidable) or `skipped` (does not apply)."""
    message: str
    """Plain-language explanation in Chinese."""

    @property
    def passed(self) -> bool:
        """Whether the check does not stand in the way of a valid verdict (valid or skipped)."""
        return self.status in ("valid", "skipped")

    def to_json(self) -> dict[str, str]:
        """`{"name", "status", "message"}`."""
        return {"name": self.name, "status": self.status, "message": self.message}


@dataclass(frozen=True, slots=True)
class RecordRevocation:
    """A revocation of a record read from the chain."""

    record_hash: str
    """0x hex record hash that was revoked."""
    revoked_at: int
    """Unix time (seconds) of the revoking block."""
    root: str
    """0x hex Merkle root of the batch named in the revocation."""
    reason: str
    """Reason given by the revoker."""

    def to_json(self) -> dict[str, Any]:
        """JSON form with an ISO 8601 UTC time."""
        return {
            "record_hash": self.record_hash,
            "revoked_at": _iso(self.revoked_at),
            "root": self.root,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class LotRecall:
    """A recall of a lot (by trace code) read from the chain."""

    trace_code: str
    """The recalled lot's trace code."""
    relation: str
    """How the lot relates to the certificate: `self`, `input`, `upstream` or `extra`."""
    recalled_at: int
    """Unix time (seconds) of the recalling block."""
    recalled_by: str
    """Checksummed address of the regulator that recalled the lot."""
    reason: str
    """Reason given by the regulator."""

    def to_json(self) -> dict[str, Any]:
        """JSON form with an ISO 8601 UTC time."""
        return {
            "trace_code": self.trace_code,
            "relation": self.relation,
            "recalled_at": _iso(self.recalled_at),
            "recalled_by": self.recalled_by,
            "reason": self.reason,
        }


def _iso(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else MappingProxyType(copy.deepcopy(dict(value)))


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return value


def decide_verdict(checks: Iterable[Check], *, revoked: bool, recalled: bool) -> Verdict:
    """The bottom line: integrity invalid or undecided > revoked > recalled > anything undecided > valid."""
    checks = tuple(checks)
    integrity = [c for c in checks if c.name in INTEGRITY_CHECKS]
    if any(c.status in ("invalid", "error") for c in integrity):
        return "invalid"
    if revoked:
        return "revoked"
    if recalled:
        return "recalled"
    if any(c.status in ("error", "invalid") for c in checks):
        return "invalid"
    return "valid"


@dataclass(frozen=True)
class VerificationResult:
    """Every check of one certificate verification, the public facts it established and the verdict."""

    status: Verdict
    """Bottom line (see `decide_verdict`)."""
    checks: tuple[Check, ...]
    """One entry per check, in `CHECK_NAMES` order."""
    certificate: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Public certificate fields (certificate_id, certificate_hash, record_hash, trace_code, record...)."""
    anchor: Mapping[str, Any] | None = None
    """`{tx_hash, block_number, block_time, agency}` of the anchoring batch (None if unknown)."""
    revocation: RecordRevocation | None = None
    """The on-chain revocation of the record, if any."""
    recalls: tuple[LotRecall, ...] = ()
    """Every recalled lot among the record's own lot and its inputs/upstream lots."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "certificate", _frozen(self.certificate) or MappingProxyType({}))
        object.__setattr__(self, "anchor", _frozen(self.anchor))
        object.__setattr__(self, "checks", tuple(self.checks))
        object.__setattr__(self, "recalls", tuple(self.recalls))

    @property
    def valid(self) -> bool:
        """True only when every check passed and the certificate is neither revoked nor recalled."""
        return self.status == "valid"

    @property
    def ok(self) -> bool:
        """Bottom line, same as `valid` (pyHanko's `bottom_line`)."""
        return self.valid

    @property
    def undecided(self) -> bool:
        """Invalid only because a check could not be decided (e.g. the chain was unreachable), not a forgery."""
        return (
            self.status == "invalid"
            and any(c.status == "error" for c in self.checks)
            and not any(c.status == "invalid" for c in self.checks)
        )

    @property
    def revoked(self) -> bool:
        """Whether the record was revoked on chain."""
        return self.revocation is not None

    @property
    def recalled(self) -> bool:
        """Whether the lot or one of its upstream lots was recalled on chain."""
        return bool(self.recalls)

    @property
    def label(self) -> str:
        """The verdict in Chinese and English (`有效 / VALID`...)."""
        return VERDICT_LABELS[self.status]

    def check(self, name: str) -> Check | None:
        """The check called `name`, if it was run."""
        return next((c for c in self.checks if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """The shared JSON shape: valid, status, checks, certificate (with revocation, recalls), anchor."""
        certificate = _thaw(self.certificate)
        certificate["revocation"] = self.revocation.to_json() if self.revocation else None
        certificate["recalls"] = [r.to_json() for r in self.recalls]
        return {
            "valid": self.valid,
            "status": self.status,
            "checks": [c.to_json() for c in self.checks],
            "certificate": certificate,
            "anchor": _thaw(self.anchor) if self.anchor is not None else None,
        }

    @classmethod
    def not_found(cls, certificate_id: str) -> VerificationResult:
        """The result for a certificate id nobody issued (used by the service's lookup by id)."""
        return cls(
            status="not_found",
            checks=(Check("payload_integrity", "invalid", f"未找到证书 {certificate_id}"),),
            certificate={"certificate_id": certificate_id},
        )
