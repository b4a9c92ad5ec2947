"""Property tests: canonical form, Merkle proofs, record hashes, disclosure, and the validator vs jsonschema."""

from __future__ import annotations

import copy
import json
import random
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sha3 import keccak_256

from trace_sdk.protocol.canonical import canonicalize
from trace_sdk.protocol.hashing import (
    disclose,
    flatten_fields,
    hash_record,
    new_salts,
    record_hash_from_disclosure,
)
from trace_sdk.protocol.merkle import MerkleTree, verify_proof
from trace_sdk.protocol.records import _compile, load_schema, validate_record

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
_FIXTURES = [HealthCheck.function_scoped_fixture]

# Strings the x-limits rules accept: printable, NFC, no surrounding whitespace.
_clean_text = st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S"]), max_size=12).filter(
    lambda s: unicodedata.is_normalized("NFC", s)
)
_numbers = st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
_keys = st.text(alphabet=st.characters(codec="utf-8"), max_size=6)
_json = st.recursive(
    st.none() | st.booleans() | _numbers | st.text(alphabet=st.characters(codec="utf-8"), max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


# ------------------------------------------------------------------------------------------- canonical form


def _reorder(value: Any, rnd: random.Random) -> Any:
    if isinstance(value, dict):
        items = [(k, _reorder(v, rnd)) for k, v in value.items()]
        rnd.shuffle(items)
        return dict(items)
    if isinstance(value, list):
        return [_reorder(v, rnd) for v in value]
    return value


def _respell(value: Any, rnd: random.Random) -> Any:
    """Replace every number by the value JSON gives another spelling of it (1 -> 1.0, 2.5 -> 2.5E+00...)."""
    if isinstance(value, dict):
        return {k: _respell(v, rnd) for k, v in value.items()}
    if isinstance(value, list):
        return [_respell(v, rnd) for v in value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    number = float(value)
    spellings = [f"{number:.17e}", f"{number:.17E}", repr(number), json.dumps(value)]
    if number.is_integer() and abs(number) < 1e15:
        spellings += [f"{int(number)}.000", str(int(number))]
    return json.loads(rnd.choice(spellings))


@given(_json, st.integers(0, 2**32), st.sampled_from([None, 0, 2]), st.booleans())
def test_canonical_form_ignores_key_order_whitespace_and_number_spelling(
    value: Any, seed: int, indent: int | None, ascii_only: bool
) -> None:
    expected = canonicalize(value)
    rnd = random.Random(seed)
    variant = _respell(_reorder(value, rnd), rnd)
    text = json.dumps(variant, indent=indent, ensure_ascii=ascii_only)
    assert canonicalize(json.loads(text)) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_round_trip_in_shortest_ecmascript_form(number: float) -> None:
    text = canonicalize(number).decode()
    assert float(text) == number
    assert re.fullmatch(r"-?(0|[1-9]\d*)(\.\d*[1-9])?(e[-+][1-9]\d*)?", text)
    significant = len(re.sub(r"e.*|[-.]", "", text).strip("0"))
    if significant > 1:  # one significant digit fewer no longer gives the same double
        assert float(f"{number:.{significant - 2}e}") != number


def test_integral_float_and_int_are_the_same_number() -> None:
    assert canonicalize({"q": 1.0}) == canonicalize({"q": 1}) == b'{"q":1}'


# ------------------------------------------------------------------------------------------- Merkle


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.binary(min_size=1, max_size=8))
def test_every_proof_verifies_against_its_root(count: int, seed: bytes) -> None:
    leaves = [keccak_256(seed + i.to_bytes(2, "big")).digest() for i in range(count)]
    tree = MerkleTree(leaves)
    proofs = tree.proofs()
    depth = max(1, (count - 1).bit_length())
    for i, (leaf, proof) in enumerate(zip(leaves, proofs, strict=True)):
        assert verify_proof(leaf, proof, tree.root), i
        assert len(proof) <= depth
    if count > 1:
        assert not verify_proof(leaves[0], proofs[1], tree.root) or leaves[0] == leaves[1]


# ------------------------------------------------------------------------------------------- record hashes


@settings(suppress_health_check=_FIXTURES, max_examples=80, deadline=None)
@given(data=st.data())
def test_changing_any_single_field_changes_the_record_hash(records: list[dict[str, Any]], data: st.DataObject) -> None:
    record = data.draw(st.sampled_from(records))
    salts = new_salts(flatten_fields(record))
    original = hash_record(record, salts).record_hash
    path = data.draw(st.sampled_from(sorted(salts)))
    old = flatten_fields(record)[path]
    new = data.draw(
        (_clean_text | _numbers | st.booleans() | st.none()).filter(lambda v: canonicalize(v) != canonicalize(old))
    )
    changed = copy.deepcopy(record)
    _set_path(changed, path, new)
    assert hash_record(changed, salts).record_hash != original


@settings(suppress_health_check=_FIXTURES, max_examples=80, deadline=None)
@given(data=st.data())
def test_disclosure_with_any_subset_hidden_reproduces_the_record_hash(
    records: list[dict[str, Any]], data: st.DataObject
) -> None:
    record = data.draw(st.sampled_from(records))
    salts = new_salts(flatten_fields(record))
    full = hash_record(record, salts).record_hash
    leaves = sorted(salts)
    containers = sorted({p.rsplit(".", i)[0] for p in leaves for i in range(1, p.count(".") + 1)})
    hide = data.draw(st.lists(st.sampled_from(leaves + containers), unique=True))
    shown = disclose(record, salts, hide)
    assert record_hash_from_disclosure(shown.record, shown.salts, shown.hidden_field_hashes) == full
    # and it went through JSON on its way to the verifier
    wire = json.loads(json.dumps(shown.record, ensure_ascii=False))
    assert record_hash_from_disclosure(wire, shown.salts, shown.hidden_field_hashes) == full


def _set_path(record: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = record
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


# ------------------------------------------------------------------------------------------- vs jsonschema

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (dev dependency) cross-checks the validator")
_SCHEMA = load_schema()
_REFERENCE = jsonschema.Draft202012Validator(_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
_STRUCTURE = _compile(_SCHEMA, "", set(), {})  # the schema alone, without the prose rules
_DATE_TIME_PATHS = {"event_time"}  # jsonschema checks date-time only with an extra package: leave it alone

_codes = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{3,10}", fullmatch=True)
_digits = st.text(alphabet="0123456789", min_size=5, max_size=15)
_replacement = (
    _clean_text
    | _codes
    | _digits
    | _numbers
    | st.booleans()
    | st.none()
    | st.lists(_codes, max_size=3)
    | st.dictionaries(st.sampled_from(["name", "type", "number", "colour"]), _clean_text, max_size=2)
)


def _mutate(record: dict[str, Any], data: st.DataObject) -> None:
    paths = sorted(_all_paths(record))
    kind = data.draw(st.sampled_from(["replace", "delete", "add"]))
    path = data.draw(st.sampled_from(paths))
    if kind == "replace" and path not in _DATE_TIME_PATHS:
        _set_path(record, path, data.draw(_replacement))
    elif kind == "delete":
        *parents, last = path.split(".")
        parent = _get_path(record, ".".join(parents))
        if isinstance(parent, dict):
            del parent[last]
    elif kind == "add":
        target = _get_path(record, path)
        if isinstance(target, dict):
            target[data.draw(st.sampled_from(["colour", "name", "lot", "gtin", "note"]))] = data.draw(_replacement)


def _all_paths(value: Any, path: str = "") -> set[str]:
    out = {path} if path else set()
    if isinstance(value, dict):
        for k, v in value.items():
            out |= _all_paths(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out |= _all_paths(v, f"{path}.{i}")
    return out


def _get_path(record: dict[str, Any], path: str) -> Any:
    node: Any = record
    for part in path.split(".") if path else []:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


@settings(suppress_health_check=_FIXTURES, max_examples=300, deadline=None)
@given(data=st.data())
def test_structural_verdict_agrees_with_jsonschema(records: list[dict[str, Any]], data: st.DataObject) -> None:
    record = copy.deepcopy(data.draw(st.sampled_from(records)))
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(record, data)
    errors: list[tuple[str, str]] = []
    ours = _STRUCTURE(record, "", errors)
    reference = sorted(_REFERENCE.iter_errors(record), key=lambda e: e.json_path)
    event("valid" if ours else "invalid")
    assert ours == (not reference), (errors, [(e.json_path, e.message) for e in reference])
    assert ours == (not errors)


_anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=3),
    max_leaves=10,
)


@settings(suppress_health_check=_FIXTURES, max_examples=200, deadline=None)
@given(data=st.data())
def test_validator_reports_instead_of_raising(records: list[dict[str, Any]], data: st.DataObject) -> None:
    record = copy.deepcopy(data.draw(st.sampled_from(records)))
    path = data.draw(st.sampled_from(sorted(_all_paths(record))))
    _set_path(record, path, data.draw(_anything))
    if data.draw(st.booleans()):
        record["extensions"] = data.draw(_anything)
    errors = validate_record(record, 5, now=NOW)
    assert all(e.index == 5 and isinstance(e.message, str) and e.message for e in errors)
    if not errors:  # whatever passes validation can be canonicalised and hashed
        hash_record(record, new_salts(flatten_fields(record)))
        assert len(canonicalize(record)) <= 16384
