"""The service's log lines are JSON and never carry a secret."""

from __future__ import annotations

import json
import logging

from certificate_service.logging_setup import JsonFormatter


def _format(message: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("certificate_service", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return json.loads(JsonFormatter().format(record))


def test_log_lines_are_json_with_level_logger_and_extra_fields() -> None:
    entry = _format("indexed %d events", 12, block=44)
    assert entry["message"] == "indexed 12 events" and entry["level"] == "WARNING"
    assert entry["logger"] == "certificate_service" and entry["block"] == 44


def test_keys_tokens_and_bearer_headers_are_masked() -> None:
    key = "0x" + "ab" * 32
    token = "tc_" + "x" * 43
    entry = _format("loaded %s and %s; header Bearer %s", key, token, token, secret_extra=key)
    text = json.dumps(entry)
    assert key not in text and token not in text
    assert "0xabab…" in entry["message"]
