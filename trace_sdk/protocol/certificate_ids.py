"""Certificate ids: 20 Crockford base32 characters derived from the record hash.

Deterministic (one record, one id; the agency knows it as soon as the record is hashed) and not guessable
from other ids: the record hash behind it is salted, so knowing any number of ids or certificates tells
nothing about another record's id. 100 bits, typed in groups of five (``7K2M9-QX4HR-PW3NV-8YJ0C``).
"""

from __future__ import annotations

import sha3

__all__ = ["CERTIFICATE_ID_LENGTH", "certificate_id_for", "normalize_certificate_id"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
_DOMAIN = b"tracechain-certificate-id/v1"
CERTIFICATE_ID_LENGTH = 20
# Characters a person may type for a Crockford digit.
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})


# Two Crockford digits per 10 bits: index ``hi * 32 + lo`` holds ``_ALPHABET[hi] + _ALPHABET[lo]``.
_DIGIT_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]
_PAIR_SHIFTS = range(10 * (CERTIFICATE_ID_LENGTH // 2 - 1), -1, -10)  # 90, 80, ..., 0: most significant first


def certificate_id_for(record_hash: bytes) -> str:
    """The certificate id of the record with this 32-byte hash."""
    if len(record_hash) != 32:
        raise ValueError("record_hash must be 32 bytes")
    digest = sha3.keccak_256(_DOMAIN + record_hash).digest()
    value = int.from_bytes(digest[:13], "big") >> 4  # 100 bits: 20 base-32 digits, most significant first
    return "".join([_DIGIT_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


def normalize_certificate_id(text: str) -> str | None:
    """The canonical id for what a person typed (case, dashes, spaces, I/L/O), or None if it cannot be one."""
    cleaned = text.strip().upper().replace("-", "").replace(" ", "").translate(_READ_AS)
    if len(cleaned) != CERTIFICATE_ID_LENGTH or any(c not in _ALPHABET for c in cleaned):
        return None
    return cleaned
