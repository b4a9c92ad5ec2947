"""Check characters of the identifiers a record carries: USCC (GB 32100-2015), GS1 GTIN and GLN."""

from __future__ import annotations

from operator import mul

__all__ = [
    "USCC_ALPHABET",
    "gs1_check_digit",
    "is_valid_gln",
    "is_valid_gtin",
    "is_valid_uscc",
    "uscc_check_char",
]

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 code characters of GB 32100-2015 (no I, O, S, V, Z); a character's value is its index."""

_USCC_VALUES = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_GTIN_LENGTHS = frozenset({8, 12, 13, 14})


def uscc_check_char(body: str) -> str:
    """Return the 18th (check) character for the first 17 characters of a USCC."""
    if len(body) != 17:
        raise ValueError(f"a USCC body has 17 characters, got {len(body)}")
    try:
        total = sum(map(mul, map(_USCC_VALUES.__getitem__, body), _USCC_WEIGHTS))
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]!r} is not a USCC character") from None
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    """True if `code` is 18 USCC characters whose last one is the right check character."""
    if len(code) != 18 or not all(c in _USCC_VALUES for c in code):
        return False
    return uscc_check_char(code[:17]) == code[17]


def gs1_check_digit(body: str) -> str:
    """Return the GS1 mod-10 check digit for the digits before it (GTIN, GLN, SSCC...)."""
    if not (body.isascii() and body.isdigit()):
        raise ValueError(f"{body!r} is not a string of digits")
    # Weights 3, 1, 3, 1... counted from the rightmost digit of the body.
    total = 3 * sum(map(int, body[::-2])) + sum(map(int, body[-2::-2]))
    return str((10 - total % 10) % 10)


def _is_valid_gs1(code: str, lengths: frozenset[int]) -> bool:
    if len(code) not in lengths or not (code.isascii() and code.isdigit()):
        return False
    return gs1_check_digit(code[:-1]) == code[-1]


def is_valid_gtin(code: str) -> bool:
    """True for a GTIN-8/12/13/14 with a correct check digit."""
    return _is_valid_gs1(code, _GTIN_LENGTHS)


def is_valid_gln(code: str) -> bool:
    """True for a 13-digit GLN with a correct check digit."""
    return _is_valid_gs1(code, frozenset({13}))
