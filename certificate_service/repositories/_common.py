"""Value normalisation shared by the repositories."""

from __future__ import annotations

from functools import lru_cache

from eth_utils import to_checksum_address

__all__ = ["normalize_address", "normalize_hash32"]


@lru_cache(maxsize=4096)
def normalize_address(address: str) -> str:
    """EIP-55 checksum form of an address (the form stored in every table)."""
    return to_checksum_address(address)


def normalize_hash32(value: str | bytes) -> str:
    """``0x``-prefixed lowercase hex of a 32-byte hash (the form stored in every table)."""
    if isinstance(value, bytes | bytearray):
        if len(value) != 32:
            raise ValueError(f"expected 32 bytes, got {len(value)}")
        return "0x" + bytes(value).hex()
    text = value.lower()
    if not text.startswith("0x"):
        text = "0x" + text
    if len(text) != 66 or any(c not in "0123456789abcdef" for c in text[2:]):
        raise ValueError(f"not a 32-byte hex hash: {value!r}")
    return text
