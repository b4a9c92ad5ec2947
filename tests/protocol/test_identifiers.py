"""Check characters: USCC (GB 32100-2015), GTIN and GLN (GS1 mod 10)."""

from __future__ import annotations

from typing import Any

import pytest

from trace_sdk.protocol.identifiers import (
    USCC_ALPHABET,
    gs1_check_digit,
    is_valid_gln,
    is_valid_gtin,
    is_valid_uscc,
    uscc_check_char,
)


def test_uscc_alphabet_has_31_characters_without_i_o_s_v_z() -> None:
    assert len(USCC_ALPHABET) == 31
    assert not set("IOSVZ") & set(USCC_ALPHABET)


def test_uscc_check_character_by_hand() -> None:
    # 91350100M000100Y4: weighted sum 9*1+1*3+3*9+5*27+0*19+1*26+0*16+0*17+21*20+0*29+0*25+0*13
    # +1*8+0*24+0*10+30*30+4*28 = 1640; 1640 mod 31 = 28; 31 - 28 = 3 -> "3".
    assert uscc_check_char("91350100M000100Y4") == "3"
    assert is_valid_uscc("91350100M000100Y43")


def test_uscc_check_value_31_maps_to_zero() -> None:
    # A body whose weighted sum is a multiple of 31 gets check character "0", not index 31.
    assert uscc_check_char("0" * 17) == "0"
    assert is_valid_uscc("0" * 18)


@pytest.mark.parametrize(
    "code",
    ["91350100M000100Y44", "91350100M000100Y4", "91350100M000100Y43X", "91350100M0001O0Y43", ""],
)
def test_invalid_usccs(code: str) -> None:
    assert not is_valid_uscc(code)


def test_uscc_check_char_rejects_bad_bodies() -> None:
    with pytest.raises(ValueError, match="17"):
        uscc_check_char("123")
    with pytest.raises(ValueError, match="not a USCC character"):
        uscc_check_char("91350100M000100I4")


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("4006381333931", True),  # GTIN-13 from the GS1 check digit calculator
        ("96385074", True),  # GTIN-8
        ("036000291452", True),  # GTIN-12 (UPC-A)
        ("10614141000415", True),  # GTIN-14
        ("4006381333932", False),
        ("400638133393", False),  # 12 digits, wrong check digit
        ("40063813339311", False),
        ("4006381333", False),  # 10 digits: no such GTIN
        ("400638133393a", False),
        ("４００６３８１３３３９３１", False),  # full-width digits are not digits here
    ],
)
def test_gtin(code: str, valid: bool) -> None:
    assert is_valid_gtin(code) is valid


def test_gln_is_13_digits_with_gs1_check_digit() -> None:
    assert is_valid_gln("6935268596931")
    assert not is_valid_gln("6935268596932")
    assert not is_valid_gln("96385074")


def test_gs1_check_digit_weights_from_the_right() -> None:
    # 400638133393: from the right 3*3 + 9 + 3*3 + 3 + 3*3 + 1 + 3*8 + 3 + 3*6 + 0 + 3*0 + 4 = 89 -> 1
    assert gs1_check_digit("400638133393") == "1"
    with pytest.raises(ValueError):
        gs1_check_digit("12a")


def test_every_sample_identifier_is_valid(records: list[dict[str, Any]]) -> None:
    usccs = [r["enterprise"]["uscc"] for r in records] + [
        r["counterparty"]["uscc"] for r in records if "uscc" in r.get("counterparty", {})
    ]
    gtins = [r["product"]["gtin"] for r in records if "gtin" in r["product"]]
    glns = [r["location"]["gln"] for r in records if "gln" in r.get("location", {})]
    assert usccs and gtins and glns
    assert all(map(is_valid_uscc, usccs))
    assert all(map(is_valid_gtin, gtins))
    assert all(map(is_valid_gln, glns))
