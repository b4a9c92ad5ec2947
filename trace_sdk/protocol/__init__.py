"""The pure protocol core: validation, canonical JSON, salted hashing, Merkle trees. No I/O, no web3."""

from trace_sdk.protocol.canonical import canonicalize, format_number
from trace_sdk.protocol.hashing import (
    SALT_BYTES,
    Disclosure,
    HashedRecord,
    disclose,
    field_hash,
    flatten_fields,
    from_hex,
    hash_record,
    keccak256,
    leaf_hash,
    new_salts,
    record_hash_from_disclosure,
    to_hex,
    trace_code_hash,
)
from trace_sdk.protocol.identifiers import (
    gs1_check_digit,
    is_valid_gln,
    is_valid_gtin,
    is_valid_uscc,
    uscc_check_char,
)
from trace_sdk.protocol.merkle import MerkleTree, hash_pair, verify_proof
from trace_sdk.protocol.records import (
    MAX_EXTENSIONS_BYTES,
    MAX_FUTURE_SKEW,
    load_schema,
    validate_record,
    validate_records,
)

__all__ = [
    "MAX_EXTENSIONS_BYTES",
    "MAX_FUTURE_SKEW",
    "SALT_BYTES",
    "Disclosure",
    "HashedRecord",
    "MerkleTree",
    "canonicalize",
    "disclose",
    "field_hash",
    "flatten_fields",
    "format_number",
    "from_hex",
    "gs1_check_digit",
    "hash_pair",
    "hash_record",
    "is_valid_gln",
    "is_valid_gtin",
    "is_valid_uscc",
    "keccak256",
    "leaf_hash",
    "load_schema",
    "new_salts",
    "record_hash_from_disclosure",
    "to_hex",
    "trace_code_hash",
    "uscc_check_char",
    "validate_record",
    "validate_records",
    "verify_proof",
]
