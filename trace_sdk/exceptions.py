"""The TraceChain exception tree: one root, one branch per layer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CanonicalizationError",
    "ChainError",
    "ChainUnavailableError",
    "ConflictError",
    "ContractRevertError",
    "DeliveryPendingError",
    "FieldError",
    "NotMemberError",
    "ServiceError",
    "ServiceUnavailableError",
    "TraceError",
    "ValidationError",
]


class TraceError(Exception):
    """Root of every TraceChain error; `user_message` is safe to show to an end user."""

    def __init__(self, message: str = "", *, user_message: str | None = None) -> None:
        super().__init__(message)
        self.user_message = user_message


class CanonicalizationError(TraceError, ValueError):
    """A value cannot be written as RFC 8785 canonical JSON (NaN, non-string key, lone surrogate...)."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem found in one submitted record."""

    index: int
    """Position of the record in the submitted list."""
    record_id: str | None
    """The record's `record_id` when it has a string one."""
    path: str
    """Dotted JSON path of the offending field (`product.gtin`, `documents.0.number`); "" = whole record."""
    message: str
    """Plain-language reason, English first, optionally followed by Chinese."""

    def __str__(self) -> str:
        return f"{self.path or '(record)'}: {self.message}"


class ValidationError(TraceError, ValueError):
    """Records break the data interface protocol; `.errors` lists every problem of every record."""

    def __init__(self, errors: Iterable[FieldError], *, user_message: str | None = None) -> None:
        self.errors: list[FieldError] = list(errors)
        super().__init__(_summarise(self.errors), user_message=user_message)


def _summarise(errors: Sequence[FieldError]) -> str:
    records = len({e.index for e in errors})
    head = f"{len(errors)} problem(s) in {records} record(s)"
    lines = [
        f"  record {e.index}{f' ({e.record_id})' if e.record_id is not None else ''} {e}" for e in errors
    ]
    return "\n".join([head + ":", *lines]) if lines else head


class ChainError(TraceError):
    """Talking to the chain failed."""


class ContractRevertError(ChainError):
    """A contract call reverted with a decoded custom error; `args` holds its decoded arguments."""

    def __init__(self, error_name: str, args: Sequence[Any] = (), *, user_message: str | None = None) -> None:
        message = f"{error_name}({', '.join(map(repr, args))})"
        super().__init__(message, user_message=user_message)
        self.error_name = error_name
        self.args = tuple(args)  # replaces BaseException.args, hence the explicit __str__
        self._message = message

    def __str__(self) -> str:
        return self._message


class NotMemberError(ChainError):
    """The account is not a member of the consortium."""


class ChainUnavailableError(ChainError):
    """The chain's JSON-RPC endpoint cannot be reached (or keeps failing)."""


class ConflictError(TraceError):
    """The same `record_id` was submitted before with different content; the first record stands."""

    def __init__(self, record_id: str, message: str = "", *, user_message: str | None = None) -> None:
        super().__init__(
            message or f"record_id {record_id!r} was already submitted with different content",
            user_message=user_message,
        )
        self.record_id = record_id


class ServiceError(TraceError):
    """The certificate service answered with an error (`status_code`, `reason`)."""

    def __init__(
        self,
        status_code: int,
        reason: str,
        *,
        details: dict[str, Any] | None = None,
        user_message: str | None = None,
    ) -> None:
        super().__init__(f"HTTP {status_code}: {reason}", user_message=user_message)
        self.status_code = status_code
        self.reason = reason
        self.details = details or {}


class ServiceUnavailableError(TraceError):
    """The certificate service cannot be reached (or answers 5xx)."""


class DeliveryPendingError(TraceError):
    """Records are safe in the outbox but could not be delivered yet; `pending` lists what waits."""

    def __init__(self, message: str, *, pending: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.pending = list(pending)
