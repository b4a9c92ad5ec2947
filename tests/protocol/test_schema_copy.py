"""The packaged schema is the normative one of ../shared, byte for byte."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

SHARED_SCHEMA = Path(__file__).resolve().parents[2].parent / "shared" / "schema" / "trace-record.v1.schema.json"


def test_packaged_schema_is_byte_identical_to_shared() -> None:
    if not SHARED_SCHEMA.parent.parent.is_dir():
        pytest.skip(f"../shared is absent ({SHARED_SCHEMA.parent.parent}): nothing to compare against")
    packaged = resources.files("trace_sdk.protocol.schema").joinpath("trace-record.v1.schema.json")
    assert packaged.read_bytes() == SHARED_SCHEMA.read_bytes()
