"""Fresh, valid trace records for the benchmarks: realistic variants of the 34 shipped sample records.

``bench/sample-records.jsonl`` is a copy of ``../shared/data/sample-records.jsonl`` (two small Shanghai food
chains per product family, linked through ``inputs``/``outputs``). Copy ``k`` of the set gets its own
``record_id``s, trace codes (``inputs``/``outputs`` rewritten consistently, so the lot graph stays linked
within the copy), lot numbers and quantities; everything else (USCCs, GTINs, GLNs with valid check
characters, Chinese names, documents) is kept, so every variant passes the protocol's validation.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["SAMPLE_PATH", "generate_records", "sample_records"]

SAMPLE_PATH = Path(__file__).resolve().parent / "sample-records.jsonl"


@cache
def _sample_lines() -> tuple[str, ...]:
    lines = SAMPLE_PATH.read_text(encoding="utf-8").splitlines()
    return tuple(line for line in lines if line.strip())


def sample_records() -> list[dict[str, Any]]:
    """The 34 sample records shipped with the benchmark (fresh objects)."""
    return [json.loads(line) for line in _sample_lines()]


def _variant(line: str, tag: str, quantity_scale: float) -> dict[str, Any]:
    """One record of copy ``tag``: ids, trace codes, lot and quantity made unique to the copy."""
    out = json.loads(line)  # a fresh object (cheaper than a deep copy)
    out["record_id"] = f"{out['record_id']}-{tag}"
    out["trace_code"] = f"{out['trace_code']}-{tag}"
    for key in ("inputs", "outputs"):
        if key in out:
            out[key] = [f"{code}-{tag}" for code in out[key]]
    product = out.get("product")
    if isinstance(product, dict):
        if "lot" in product:
            product["lot"] = f"{product['lot']}-{tag}"[:64]
        if isinstance(product.get("quantity"), int | float) and not isinstance(product.get("quantity"), bool):
            product["quantity"] = round(product["quantity"] * quantity_scale, 3) or product["quantity"]
    return out


def iter_records(count: int, run_tag: str | None = None, *, start: int = 0) -> Iterator[dict[str, Any]]:
    """Records ``start`` to ``start + count - 1`` of the run (copy ``n // 34`` of sample ``n % 34``);
    ``run_tag`` keeps runs apart (a random one when not given)."""
    run = run_tag or secrets.token_hex(3).upper()
    samples = _sample_lines()
    for n in range(start, start + count):
        copy_index, template = divmod(n, len(samples))
        scale = 0.5 + (copy_index * 7919 % 1000) / 1000  # deterministic spread of quantities
        yield _variant(samples[template], f"{run}{copy_index:06d}", scale)


def generate_records(count: int, run_tag: str | None = None) -> list[dict[str, Any]]:
    """A list of ``count`` fresh records (see :func:`iter_records`)."""
    return list(iter_records(count, run_tag))
