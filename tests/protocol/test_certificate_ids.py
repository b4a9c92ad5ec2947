"""Certificate ids: 20 Crockford base-32 digits of 100 bits of keccak256(domain || record hash)."""

from __future__ import annotations

import hashlib
import os

import pytest
from sha3 import keccak_256

from trace_sdk.protocol.certificate_ids import CERTIFICATE_ID_LENGTH, certificate_id_for, normalize_certificate_id

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _by_hand(record_hash: bytes) -> str:
    """The definition, digit by digit."""
    value = int.from_bytes(keccak_256(b"tracechain-certificate-id/v1" + record_hash).digest()[:13], "big") >> 4
    return "".join(_ALPHABET[(value >> (5 * (CERTIFICATE_ID_LENGTH - 1 - i))) & 31] for i in range(20))


@pytest.mark.parametrize(
    ("seed", "expected"),
    [(b"", "8KYZ6R0VRSCSCRP7Y63Z"), (b"a", "8APK3DAKQS4439X65466"), (b"tracechain", "5RZNWQ48AVBAQAHQ1F8J")],
)
def test_known_ids(seed: bytes, expected: str) -> None:
    assert certificate_id_for(hashlib.sha256(seed).digest()) == expected


def test_ids_follow_the_definition() -> None:
    for record_hash in [bytes(32), b"\xff" * 32, *(os.urandom(32) for _ in range(2_000))]:
        assert certificate_id_for(record_hash) == _by_hand(record_hash)
    assert certificate_id_for(bytes(32)) == "SDSTHH9RV115SM2J7T88"


def test_ids_need_32_bytes_and_read_back_as_typed() -> None:
    with pytest.raises(ValueError):
        certificate_id_for(b"\x00" * 31)
    cid = certificate_id_for(b"\x01" * 32)
    assert normalize_certificate_id(f" {cid[:5].lower()}-{cid[5:10]} {cid[10:]}") == cid
