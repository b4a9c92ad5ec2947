"""Structured logs: one JSON object per line.

The service never logs secrets; as a second line of defence, tokens, bearer credentials, signatures and PEM
private keys are masked whatever logged them. 32-byte hex values (tx hashes, roots, record hashes) stay
readable: they identify things and are public on chain.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "configure_logging"]

_SECRET = re.compile(
    r"(-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----"  # PEM keys
    r"|(?:0x)?[0-9a-fA-F]{130}(?![0-9a-fA-F])"  # 65-byte signatures
    r"|tc_[A-Za-z0-9_-]{20,}"  # enterprise API tokens
    r"|Bearer\s+\S+)",
    re.DOTALL,
)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _mask(text: str) -> str:
    return _SECRET.sub(lambda m: m.group(0)[:6] + "…", text)


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", ...extra}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _mask(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool | None) else _mask(str(value))
        if record.exc_info:
            entry["exception"] = _mask(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: int = logging.INFO) -> None:
    """Send the root logger's records to stderr as JSON lines (once per process)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(level)
