"""Fixtures of the protocol tests: deep copies of the shared sample records and a fixed clock."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
"""The clock of the validation tests: after every sample record's event_time."""


@pytest.fixture
def records(sample_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The 34 sample records, free to mutate."""
    return copy.deepcopy(sample_records)


@pytest.fixture
def record(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A rich valid sample record (import inspection: gtin, gln, documents, cold chain, contact)."""
    return next(r for r in records if r["record_id"] == "DEMO-r000002")
