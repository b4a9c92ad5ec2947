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


def test_tokens_signatures_and_pem_keys_are_masked_but_hashes_stay_readable() -> None:
    signature = "0x" + "cd" * 65
    token = "tc_" + "x" * 43
    marker = "PRIVATE" + " KEY-----"  # assembled at run time: no key-shaped block in the repository
    pem = f"-----BEGIN {marker}\nMIGHAgEAMBMG\n-----END {marker}"
    tx_hash = "0x" + "ab" * 32
    entry = _format("sig %s token %s header Bearer %s key %s tx %s", signature, token, token, pem, tx_hash,
                    secret_extra=signature)
    text = json.dumps(entry)
    for secret in (signature, token, "MIGHAgEAMBMG"):
        assert secret not in text
    assert tx_hash in entry["message"]
