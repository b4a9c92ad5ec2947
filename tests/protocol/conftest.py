"""Fixtures of the protocol tests: fresh copies of the shared sample records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sample-records.jsonl"


@pytest.fixture
def records() -> list[dict[str, Any]]:
    """The 34 sample records of ../shared, parsed afresh for each test (free to mutate)."""
    if not SAMPLES.is_file():
        pytest.skip(f"the shared sample records are absent ({SAMPLES})")
    return [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def record(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A rich valid sample record (import inspection: gtin, gln, documents, cold chain, contact)."""
    return next(r for r in records if r["record_id"] == "DEMO-r000002")
