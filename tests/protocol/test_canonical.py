"""RFC 8785 (JCS) canonical JSON, checked against the examples of the RFC itself."""

from __future__ import annotations

import json
import math
import struct
import sys
import uuid
from collections import OrderedDict
from datetime import date
from enum import Enum, IntEnum
from json.encoder import encode_basestring
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trace_sdk.exceptions import CanonicalizationError
from trace_sdk.protocol.canonical import (
    _NOT_ORJSON,
    _canonicalize_reference,
    _orjson_form,
    canonicalize,
    format_number,
)


def _double(hex_bits: str) -> float:
    return struct.unpack(">d", bytes.fromhex(hex_bits))[0]


# RFC 8785 Appendix B: IEEE 754 bit patterns and their ECMAScript serialisation.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_appendix_b_numbers(bits: str, expected: str) -> None:
    assert canonicalize(_double(bits)) == expected.encode()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_appendix_b_nan_and_infinity_are_rejected(bits: str) -> None:
    with pytest.raises(CanonicalizationError):
        canonicalize(_double(bits))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e16, "10000000000000000"),
        (1e-7, "1e-7"),
        (1e-6, "0.000001"),
        (1.5e-5, "0.000015"),
        (0.1 + 0.2, "0.30000000000000004"),
        (-18.5, "-18.5"),
        (123e300, "1.23e+302"),
        (2.0**60, "1152921504606847000"),
    ],
)
def test_ecmascript_number_forms(value: float, expected: str) -> None:
    assert format_number(value) == expected


def test_integers_beyond_2_53_are_written_as_their_double_or_rejected() -> None:
    assert canonicalize(2**60) == b"1152921504606847000"  # exact double: written as ECMAScript would
    assert canonicalize(-(2**53)) == b"-9007199254740992"
    with pytest.raises(CanonicalizationError, match="not exactly representable"):
        canonicalize(2**53 + 1)
    with pytest.raises(CanonicalizationError, match="outside"):
        canonicalize(10**400)


def test_rfc_section_3_2_2_example() -> None:
    # The input of RFC 8785 section 3.2.2, as a JSON text, and its canonical form.
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonicalize(json.loads(text)) == expected.encode()


def test_rfc_section_3_2_3_sorting_by_utf16_code_units() -> None:
    text = (
        '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh",'
        ' "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",'
        ' "\\u00f6": "Latin Small Letter O With Diaeresis"}'
    )
    values = [v for v in json.loads(canonicalize(json.loads(text))).values()]
    assert values == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",  # U+1F600 is D83D DE00 in UTF-16: before U+FB33, unlike code-point order
        "Hebrew Letter Dalet With Dagesh",
    ]


def test_string_escaping_is_minimal() -> None:
    assert canonicalize('a"b\\c/\b\f\n\r\t\x00\x1f\x7f é中😀') == (
        '"a\\"b\\\\c/\\b\\f\\n\\r\\t\\u0000\\u001f\x7f é中😀"'.encode()
    )


def test_structure_has_no_whitespace_and_keeps_array_order() -> None:
    assert canonicalize({"b": [3, 1, 2], "a": {"d": None, "c": True}, "e": []}) == (
        b'{"a":{"c":true,"d":null},"b":[3,1,2],"e":[]}'
    )


def test_subclasses_of_json_types_are_written_as_their_base() -> None:
    class Tag(str):
        def __str__(self) -> str:
            return "not the value"

    class Level(IntEnum):
        HIGH = 3

    assert canonicalize(OrderedDict([("b", Level.HIGH), ("a", Tag("red"))])) == b'{"a":"red","b":3}'
    assert canonicalize((1, 2.0)) == b"[1,2]"


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        {"x": math.inf},
        [-math.inf],
        {1: "int key"},
        {"a": 1, 2: "mixed keys"},
        "lone \ud800 surrogate",
        {"key \udc00": 1},
        {"set": {1, 2}},
        b"bytes",
    ],
)
def test_non_json_values_are_rejected(value: object) -> None:
    with pytest.raises(CanonicalizationError):
        canonicalize(value)


def test_canonicalization_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        canonicalize(float("nan"))


# ------------------------------------------------------------------------------------------- orjson fast path
# `canonicalize` writes with orjson when `_orjson_form` says orjson's bytes are JCS's; these tests hold the
# fast path to the reference serialiser, which the tests above pin to RFC 8785.


def _same_outcome(value: Any) -> None:
    """`canonicalize` and the reference give the same bytes, or raise the same error."""
    try:
        expected: bytes | str = _canonicalize_reference(value)
    except CanonicalizationError as exc:
        expected = f"error: {exc}"
    try:
        got: bytes | str = canonicalize(value)
    except CanonicalizationError as exc:
        got = f"error: {exc}"
    assert got == expected


def test_orjson_escapes_every_code_point_as_jcs() -> None:
    # Escaping is per code point: one string holding all of them (surrogates apart) covers every string.
    everything = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    assert orjson.dumps(everything) == encode_basestring(everything).encode()
    assert orjson.dumps({everything: 0}) == b"{" + encode_basestring(everything).encode() + b":0}"
    with pytest.raises(orjson.JSONEncodeError):  # where the reference raises too
        orjson.dumps("\ud800")


def test_the_fast_path_serves_records(records: list[dict[str, Any]]) -> None:
    # Integral floats (-18.0) are written as ints, other floats as orjson writes them: no fallback for records.
    for record in records:
        assert _orjson_form(record) is not _NOT_ORJSON, record["record_id"]
        assert canonicalize(record) == _canonicalize_reference(record)


def test_the_fast_path_leaves_the_value_alone() -> None:
    value = {"cold_chain": {"temperature_c": -18.0}, "q": [2.0, 2.5], "t": (1.0,)}
    assert canonicalize(value) == b'{"cold_chain":{"temperature_c":-18},"q":[2,2.5],"t":[1]}'
    assert value == {"cold_chain": {"temperature_c": -18.0}, "q": [2.0, 2.5], "t": (1.0,)}
    assert type(value["cold_chain"]["temperature_c"]) is float and type(value["q"][0]) is float


@pytest.mark.parametrize(
    "value",
    [
        -18.0, -0.0, 1e16, 1e21, 1e-7, 0.000001, 12.254, 2.0**53, 2**53, -(2**53), 2**53 - 1, 2**64, 10**400,
        float("nan"), math.inf, {"q": 1.0, "r": [2.0, -0.0]}, (1, 2.0), [[[]]], {}, [],
        {"\ue000": 1, "\U0001f600": 2}, {"\ud7ff": 1, "a": 2}, {"é": 1, "e": 2}, "\ud800", {"k\udc00": 1},
        OrderedDict(b=1, a=2), IntEnum("Level", "LOW HIGH").HIGH, Enum("Colour", "RED").RED, uuid.UUID(int=1),
        date(2026, 1, 1), {1: "int key"}, {"a": 1, 2: "mixed"}, {"s": {1}}, b"bytes", True, None,
    ],
)
def test_fast_path_equals_reference_on_edge_cases(value: Any) -> None:
    _same_outcome(value)


def test_fast_path_equals_reference_on_deep_nesting() -> None:
    for depth in (200, 254, 255, 256, 300):  # orjson refuses more than 254 levels: the reference takes over
        value: Any = 1.5
        for _ in range(depth):
            value = [value]
        _same_outcome(value)


_any_float = st.floats(allow_nan=True, allow_infinity=True)
_scalars = (
    st.none() | st.booleans() | st.integers() | st.integers(-(2**64), 2**64) | _any_float
    | st.floats(allow_nan=False, allow_infinity=False).map(float.__round__).map(float)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=8)
    | st.text(alphabet=st.characters(min_codepoint=0xD000, max_codepoint=0x1F700), max_size=4)
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=4) | st.sampled_from(["\ue000", "\U0001f600", "\uffff", "a"]), inner,
                      max_size=4),
    max_leaves=25,
)


@settings(max_examples=1500, deadline=None)
@given(_json_values)
def test_fast_path_equals_reference(value: Any) -> None:
    _same_outcome(value)


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_fast_path_writes_every_double_as_jcs(number: float) -> None:
    text = format_number(number)
    assert canonicalize(number) == text.encode()
    assert canonicalize([number, {"n": number}]) == f'[{text},{{"n":{text}}}]'.encode()
