"""Fixtures of the protocol tests: deep copies of the shared sample records."""

from __future__ import annotations

import copy
from typing import Any

import pytest


@pytest.fixture
def records(sample_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The 34 sample records, free to mutate."""
    return copy.deepcopy(sample_records)


@pytest.fixture
def record(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A rich valid sample record (import inspection: gtin, gln, documents, cold chain, contact)."""
    return next(r for r in records if r["record_id"] == "DEMO-r000002")
