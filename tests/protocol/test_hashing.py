"""Salted field hashing, record hashes, leaves and selective disclosure."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sha3 import keccak_256

from trace_sdk.exceptions import CanonicalizationError
from trace_sdk.protocol.hashing import (
    disclose,
    field_hash,
    flatten_fields,
    from_hex,
    hash_record,
    keccak256,
    leaf_hash,
    new_salts,
    record_hash_from_disclosure,
    salt_and_hash,
    salts_to_json,
    to_hex,
    trace_code_hash,
)

SALT = bytes(range(32))
SALT_HEX = "0x" + SALT.hex()


def _fixed_salts(paths: Any) -> dict[str, str]:
    return {p: to_hex(keccak256(p.encode())) for p in paths}


def test_keccak256_is_ethereum_keccak_not_sha3() -> None:
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def test_hex_helpers_round_trip_and_are_strict() -> None:
    assert to_hex(b"\x01\xab") == "0x01ab"
    assert from_hex("0x01ab") == b"\x01\xab"
    assert from_hex("0x" + "00" * 32, 32) == bytes(32)
    for bad in ("01ab", "0x01a", "0xzz", "0x01 ab"):
        with pytest.raises(ValueError):
            from_hex(bad)
    with pytest.raises(ValueError, match="32 bytes"):
        from_hex("0x01", 32)


def test_flatten_uses_dotted_paths_and_array_indices() -> None:
    record = {
        "a": "x",
        "b": {"c": 1, "d": {"e": None}},
        "docs": [{"n": "1"}, {"n": "2"}],
        "codes": ["p", "q"],
        "empty_obj": {},
        "empty_list": [],
    }
    assert flatten_fields(record) == {
        "a": "x",
        "b.c": 1,
        "b.d.e": None,
        "docs.0.n": "1",
        "docs.1.n": "2",
        "codes.0": "p",
        "codes.1": "q",
        "empty_obj": {},
        "empty_list": [],
    }


@pytest.mark.parametrize("key", ["a.b", "", "0", "12", "nul\x00"])
def test_flatten_rejects_keys_that_would_make_paths_ambiguous(key: str) -> None:
    # {"a.b": 1} would flatten like {"a": {"b": 1}}, {"0": x} like [x]: two records, one hash.
    with pytest.raises(CanonicalizationError):
        flatten_fields({"x": {key: 1}})


def test_flatten_rejects_non_objects() -> None:
    with pytest.raises(CanonicalizationError):
        flatten_fields([])  # type: ignore[arg-type]
    with pytest.raises(CanonicalizationError):
        flatten_fields({})


def test_field_hash_is_keccak_of_salt_path_nul_canonical_value() -> None:
    expected = keccak_256(SALT + b"product.name" + b"\x00" + '"冷冻猪前腿肉"'.encode()).digest()
    assert field_hash(SALT, "product.name", "冷冻猪前腿肉") == expected
    assert field_hash(SALT_HEX, "product.name", "冷冻猪前腿肉") == expected
    number = keccak_256(SALT + b"product.quantity\x00" + b"24").digest()
    assert field_hash(SALT, "product.quantity", 24.0) == number  # JCS: 24.0 is written 24


def test_field_hash_binds_path_salt_and_value() -> None:
    base = field_hash(SALT, "a", "v")
    assert field_hash(SALT, "b", "v") != base
    assert field_hash(bytes(32), "a", "v") != base
    assert field_hash(SALT, "a", "w") != base
    assert field_hash(SALT, "a", 1) != field_hash(SALT, "a", "1")  # a number is not a numeric string


@pytest.mark.parametrize("salt", ["0x1234", SALT_HEX[2:], "0X" + SALT_HEX[2:], b"short", "0x" + "zz" * 32])
def test_bad_salts_are_rejected(salt: Any) -> None:
    with pytest.raises(ValueError):
        field_hash(salt, "a", "v")


def test_new_salts_are_32_random_bytes_per_path() -> None:
    salts = new_salts(["a", "b.c", "d.0"])
    assert list(salts) == ["a", "b.c", "d.0"]
    assert all(len(from_hex(s, 32)) == 32 and s == s.lower() for s in salts.values())
    assert len(set(salts.values())) == 3
    assert new_salts(["a"]) != new_salts(["a"])


def test_salts_json_is_what_json_dumps_writes(record: dict[str, Any]) -> None:
    salts, _ = salt_and_hash(record)
    assert salts_to_json(salts) == json.dumps(salts, separators=(",", ":"))
    assert json.loads(salts_to_json(salts)) == salts


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(max_size=6), st.text(max_size=6) | st.integers() | st.none(), max_size=6))
def test_salts_json_equals_json_dumps_for_any_mapping(salts: dict[str, Any]) -> None:
    # orjson only for printable ASCII (json.dumps escapes DEL and non-ASCII, orjson does not): the same text
    assert salts_to_json(salts) == json.dumps(salts, separators=(",", ":"))


@pytest.mark.parametrize("text", [chr(c) for c in range(128)] + ["é", "\u2028", "😀"])
def test_salts_json_escapes_every_ascii_character_as_json_dumps(text: str) -> None:
    salts = {f"a{text}": f"0x{text}"}
    assert salts_to_json(salts) == json.dumps(salts, separators=(",", ":"))


def test_hash_record_follows_the_spec_by_hand() -> None:
    record = {"b": {"c": 1.0}, "a": "x"}
    salts = {"a": "0x" + "11" * 32, "b.c": "0x" + "22" * 32}
    fa = keccak_256(b"\x11" * 32 + b'a\x00"x"').digest()
    fbc = keccak_256(b"\x22" * 32 + b"b.c\x001").digest()
    hashed = hash_record(record, salts)
    assert hashed.field_hashes == {"a": fa, "b.c": fbc}
    assert hashed.record_hash == keccak_256(b"".join(sorted([fa, fbc]))).digest()
    assert hashed.leaf == keccak_256(hashed.record_hash).digest() == leaf_hash(hashed.record_hash)


def test_hash_record_is_independent_of_key_order(record: dict[str, Any]) -> None:
    salts = new_salts(flatten_fields(record))
    reordered = dict(reversed(list(record.items())))
    reordered["product"] = dict(reversed(list(record["product"].items())))
    assert hash_record(reordered, salts) == hash_record(record, salts)


def test_hash_record_needs_exactly_the_record_salts(record: dict[str, Any]) -> None:
    salts = new_salts(flatten_fields(record))
    missing = dict(salts)
    del missing["product.name"]
    with pytest.raises(ValueError, match=re.escape("missing ['product.name']")):
        hash_record(record, missing)
    with pytest.raises(ValueError, match=re.escape("unexpected ['zzz']")):
        hash_record(record, {**salts, "zzz": salts["product.name"]})
    renamed = dict(missing, zzz=salts["product.name"])
    with pytest.raises(ValueError, match="missing"):
        hash_record(record, renamed)
    with pytest.raises(ValueError, match="0x"):
        hash_record(record, dict(salts, **{"product.name": "0x" + "0x" * 32}))


def test_hash_record_rejects_unhashable_values() -> None:
    with pytest.raises(CanonicalizationError):
        hash_record({"a": float("nan")}, {"a": SALT_HEX})
    with pytest.raises(CanonicalizationError):
        hash_record({"a": "\ud800"}, {"a": SALT_HEX})


def test_leaf_and_trace_code_hashes() -> None:
    assert trace_code_hash("DEMOI918983889200001") == keccak_256(b"DEMOI918983889200001").digest()
    with pytest.raises(ValueError):
        leaf_hash(b"\x00" * 31)


def test_disclosure_reproduces_the_record_hash(record: dict[str, Any]) -> None:
    salts = new_salts(flatten_fields(record))
    full = hash_record(record, salts).record_hash
    shown = disclose(record, salts, ["contact", "product.gtin", "documents.1"])
    assert "contact" not in shown.record
    assert "gtin" not in shown.record["product"]
    assert shown.record["documents"][1] is None  # placeholder keeps documents.2 at index 2
    assert shown.record["documents"][2] == record["documents"][2]
    assert set(shown.hidden_field_hashes) == {
        "contact.person",
        "contact.phone",
        "product.gtin",
        "documents.1.type",
        "documents.1.number",
        "documents.1.result",
    }
    assert not set(shown.salts) & set(shown.hidden_field_hashes)
    assert record_hash_from_disclosure(shown.record, shown.salts, shown.hidden_field_hashes) == full


def test_disclosure_with_nothing_or_everything_hidden(record: dict[str, Any]) -> None:
    salts = new_salts(flatten_fields(record))
    full = hash_record(record, salts).record_hash
    nothing = disclose(record, salts, [])
    assert nothing.record == record and not nothing.hidden_field_hashes
    assert record_hash_from_disclosure(nothing.record, nothing.salts, {}) == full
    everything = disclose(record, salts, list(record))
    assert everything.record == {} and not everything.salts
    assert record_hash_from_disclosure({}, {}, everything.hidden_field_hashes) == full


def test_disclosure_keeps_original_empty_containers_and_nulls() -> None:
    record = {"a": {"keep": {}, "gone": "x"}, "b": [None, "y"], "c": []}
    salts = new_salts(flatten_fields(record))
    shown = disclose(record, salts, ["a.gone", "b.1"])
    assert shown.record == {"a": {"keep": {}}, "b": [None, None], "c": []}
    assert record_hash_from_disclosure(shown.record, shown.salts, shown.hidden_field_hashes) == (
        hash_record(record, salts).record_hash
    )


def test_disclosure_rejects_tampering(record: dict[str, Any]) -> None:
    salts = new_salts(flatten_fields(record))
    full = hash_record(record, salts).record_hash
    shown = disclose(record, salts, ["contact.phone"])
    forged = copy.deepcopy(shown.record)
    forged["product"]["name"] = "假冒产品"
    assert record_hash_from_disclosure(forged, shown.salts, shown.hidden_field_hashes) != full
    both = copy.deepcopy(shown.record)
    both["contact"]["phone"] = "13900000000"
    with pytest.raises(ValueError, match="both disclosed and hidden"):
        record_hash_from_disclosure(both, dict(shown.salts, **{"contact.phone": SALT_HEX}), shown.hidden_field_hashes)
    with pytest.raises(ValueError, match="no salt"):
        record_hash_from_disclosure(shown.record, {}, shown.hidden_field_hashes)
    with pytest.raises(ValueError, match="no such field"):
        disclose(record, salts, ["contact.email"])
