"""RFC 8785 (JCS) canonical JSON, checked against the examples of the RFC itself."""

from __future__ import annotations

import json
import math
import struct
from collections import OrderedDict
from enum import IntEnum

import pytest

from trace_sdk.exceptions import CanonicalizationError
from trace_sdk.protocol.canonical import canonicalize, format_number


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
