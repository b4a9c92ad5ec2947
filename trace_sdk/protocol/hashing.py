"""Salted per-field record hashing, selective disclosure, Merkle leaves and trace-code hashes.

`field_hash = keccak256(salt || utf8(path) || 0x00 || JCS(value))`,
`record_hash = keccak256(concat(sorted(field_hashes)))`, `leaf = keccak256(record_hash)`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring as _quote
from typing import Any

import orjson
from sha3 import keccak_256 as _keccak

from trace_sdk.exceptions import CanonicalizationError
from trace_sdk.protocol.canonical import canonicalize

__all__ = [
    "SALT_BYTES",
    "Disclosure",
    "HashedRecord",
    "disclose",
    "field_hash",
    "flatten_fields",
    "from_hex",
    "hash_fields",
    "hash_record",
    "keccak256",
    "leaf_hash",
    "new_salts",
    "record_hash_from_disclosure",
    "salt_and_hash",
    "salts_to_json",
    "to_hex",
    "trace_code_hash",
]

SALT_BYTES = 32
_SALT_HEX_CHARS = 2 + 2 * SALT_BYTES
_SURROGATE_MESSAGE = "a string contains an unpaired surrogate (not valid Unicode)"


def keccak256(data: bytes) -> bytes:
    """Ethereum's keccak256 (not NIST SHA3-256)."""
    return _keccak(data).digest()


def to_hex(data: bytes) -> str:
    """`b"\\x01\\xab"` -> `"0x01ab"` (lowercase)."""
    return "0x" + data.hex()


def from_hex(text: str, length: int | None = None) -> bytes:
    """`"0x01ab"` -> `b"\\x01\\xab"`; the `0x` prefix is required, `length` (in bytes) is checked if given."""
    if not isinstance(text, str) or text[:2] not in ("0x", "0X"):
        raise ValueError(f"expected a 0x-prefixed hex string, got {text!r}")
    try:
        data = bytes.fromhex(text[2:])
    except ValueError:
        data = None
    if data is None or 2 * len(data) != len(text) - 2:  # fromhex would skip spaces
        raise ValueError(f"{text!r} is not valid hex")
    if length is not None and len(data) != length:
        raise ValueError(f"expected {length} bytes of hex, got {len(data)}")
    return data


# ------------------------------------------------------------------------------------------- fields

_checked_keys: set[str] = set()  # keys already known to be path-safe (bounded: see _check_key)


def _check_key(key: Any) -> None:
    if not isinstance(key, str):
        raise CanonicalizationError(f"object keys must be strings, got {type(key).__name__}")
    if not key or "." in key or "\x00" in key or (key.isascii() and key.isdigit()):
        # Such keys would make two different records flatten to the same paths.
        raise CanonicalizationError(
            f"object key {key!r} cannot be a field path segment (empty, contains '.' or NUL, or all digits)"
        )
    if len(_checked_keys) < 10_000:
        _checked_keys.add(key)


def flatten_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten a record to `{dotted path: leaf value}`; array items by index, empty containers are leaves."""
    if not isinstance(record, dict) or not record:
        raise CanonicalizationError("a record must be a non-empty JSON object")
    out: dict[str, Any] = {}
    _flatten_object(record, "", out)
    return out


def _flatten_object(obj: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in obj.items():
        if key not in _checked_keys:
            _check_key(key)
        if type(value) is str:  # the common case, inlined
            out[prefix + key] = value
        else:
            _flatten_value(value, prefix + key, out)


def _flatten_value(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        if value:
            _flatten_object(value, path + ".", out)
        else:
            out[path] = value
    elif isinstance(value, list | tuple) and value:
        prefix = path + "."
        for i, item in enumerate(value):
            _flatten_value(item, prefix + str(i), out)
    else:
        out[path] = value


def new_salts(paths: Iterable[str]) -> dict[str, str]:
    """Fresh random 32-byte salts (`0x` hex) for the given paths, drawn with one `os.urandom` call."""
    paths = list(paths)
    pool = os.urandom(SALT_BYTES * len(paths)).hex()
    step = 2 * SALT_BYTES
    return {path: "0x" + pool[i * step : (i + 1) * step] for i, path in enumerate(paths)}


def salts_to_json(salts: Mapping[str, str]) -> str:
    """Compact JSON of salts, exactly as ``json.dumps(salts, separators=(",", ":"))`` writes it.

    orjson writes the same text when every path and salt is printable ASCII (as `new_salts` and
    `salt_and_hash` make them, for a valid record's paths): json.dumps escapes U+007F and what lies beyond
    (ensure_ascii), orjson does not.
    """
    try:
        text = "".join(salts) + "".join(salts.values())
    except TypeError:
        text = "\x00"  # not strings: json.dumps says what it makes of them
    if text.isascii() and text.isprintable():
        try:
            return orjson.dumps(salts).decode()
        except TypeError:  # orjson.JSONEncodeError: a key that is a str subclass
            pass
    return json.dumps(salts, separators=(",", ":"))


def _salt_bytes(salt: str | bytes, path: str) -> bytes:
    if isinstance(salt, str) and len(salt) == _SALT_HEX_CHARS and salt[:2] == "0x":
        try:
            data = bytes.fromhex(salt[2:])
        except ValueError:
            data = b""
        if len(data) == SALT_BYTES:  # fromhex skips spaces: the length is checked after decoding
            return data
    elif isinstance(salt, bytes) and len(salt) == SALT_BYTES:
        return salt
    raise ValueError(f"salt of {path!r} must be 32 bytes or 0x + 64 hex digits, got {salt!r}")


def _preimage(salt: bytes, path: str, value: Any) -> bytes:
    if type(value) is str:  # the common case: the JCS of a string is its JSON quoting
        return salt + (path + "\x00" + _quote(value)).encode()
    return salt + path.encode() + b"\x00" + canonicalize(value)


def field_hash(salt: str | bytes, path: str, value: Any) -> bytes:
    """keccak256(salt || utf8(path) || 0x00 || JCS(value)) for one leaf field."""
    try:
        return _keccak(_preimage(_salt_bytes(salt, path), path, value)).digest()
    except UnicodeEncodeError:
        raise CanonicalizationError(_SURROGATE_MESSAGE) from None


def _combine(field_hashes: Iterable[bytes]) -> bytes:
    return _keccak(b"".join(sorted(field_hashes))).digest()


# ------------------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class HashedRecord:
    """The salted hashes of one record."""

    record_hash: bytes
    """keccak256 of the byte-wise sorted concatenation of the field hashes."""
    field_hashes: dict[str, bytes]
    """Leaf path -> field hash."""

    @property
    def leaf(self) -> bytes:
        """The record's Merkle leaf."""
        return leaf_hash(self.record_hash)


def hash_record(record: Mapping[str, Any], salts: Mapping[str, str]) -> HashedRecord:
    """Hash every leaf field of `record` with its salt; `salts` must cover exactly the record's fields."""
    return hash_fields(flatten_fields(record), salts)


def hash_fields(fields: Mapping[str, Any], salts: Mapping[str, str | bytes]) -> HashedRecord:
    """`hash_record` of a record already flattened by `flatten_fields` (saves flattening it twice)."""
    if len(salts) != len(fields):
        _raise_salt_mismatch(fields, salts)
    blob = _salt_blob(fields, salts)
    try:
        if blob is None:  # bytes salts, or a bad one: field by field, reporting the first bad salt by path
            hashes: dict[str, bytes] = {}
            for path, value in fields.items():
                salt = salts.get(path)
                if salt is None:
                    _raise_salt_mismatch(fields, salts)
                hashes[path] = _keccak(_preimage(_salt_bytes(salt, path), path, value)).digest()
            return HashedRecord(_combine(hashes.values()), hashes)
        return _hash_with_blob(fields, blob)
    except UnicodeEncodeError:
        raise CanonicalizationError(_SURROGATE_MESSAGE) from None


def salt_and_hash(record: Mapping[str, Any]) -> tuple[dict[str, str], HashedRecord]:
    """Fresh salts for every leaf field of `record` and its hashes under them (`new_salts` + `hash_record`)."""
    fields = flatten_fields(record)
    blob = os.urandom(SALT_BYTES * len(fields))
    pool = blob.hex()
    step = 2 * SALT_BYTES
    salts = {path: "0x" + pool[i * step : (i + 1) * step] for i, path in enumerate(fields)}
    try:
        return salts, _hash_with_blob(fields, blob)
    except UnicodeEncodeError:
        raise CanonicalizationError(_SURROGATE_MESSAGE) from None


def _salt_blob(fields: Mapping[str, Any], salts: Mapping[str, str | bytes]) -> bytes | None:
    """All salts decoded at once, in field order (None when one is missing, bytes or malformed)."""
    hexes = []
    append = hexes.append
    for path in fields:
        salt = salts.get(path)
        if type(salt) is not str or len(salt) != _SALT_HEX_CHARS or salt[:2] != "0x":
            return None
        append(salt[2:])
    try:
        blob = bytes.fromhex("".join(hexes))
    except ValueError:
        return None
    return blob if len(blob) == SALT_BYTES * len(hexes) else None  # fromhex skips spaces: check the length


_path_prefixes: dict[str, bytes] = {}  # utf8(path) || 0x00 of paths seen (bounded: field paths repeat)


def _hash_with_blob(fields: Mapping[str, Any], blob: bytes) -> HashedRecord:
    """Field hashes with the salts taken from `blob` (32 bytes per field, in field order)."""
    hashes: dict[str, bytes] = {}
    prefixes = _path_prefixes
    start = 0
    for path, value in fields.items():
        prefix = prefixes.get(path)
        if prefix is None:
            prefix = (path + "\x00").encode()
            if len(prefixes) < 10_000:
                prefixes[path] = prefix
        if type(value) is str:  # the common case: the JCS of a string is its JSON quoting
            hashes[path] = _keccak(blob[start : start + SALT_BYTES] + prefix + _quote(value).encode()).digest()
        else:
            hashes[path] = _keccak(blob[start : start + SALT_BYTES] + prefix + canonicalize(value)).digest()
        start += SALT_BYTES
    return HashedRecord(_keccak(b"".join(sorted(hashes.values()))).digest(), hashes)


def _raise_salt_mismatch(fields: Mapping[str, Any], salts: Mapping[str, Any]) -> None:
    missing = sorted(set(fields) - set(salts))
    extra = sorted(set(salts) - set(fields))
    raise ValueError(f"salts do not match the record's fields: missing {missing}, unexpected {extra}")


def leaf_hash(record_hash: bytes) -> bytes:
    """Merkle leaf of a record: keccak256(record_hash) (a 32-byte preimage, never a 64-byte inner node)."""
    if len(record_hash) != 32:
        raise ValueError(f"a record hash has 32 bytes, got {len(record_hash)}")
    return _keccak(record_hash).digest()


def trace_code_hash(trace_code: str) -> bytes:
    """keccak256(utf8(trace_code)), the key of recalls on chain."""
    return _keccak(trace_code.encode()).digest()


# ------------------------------------------------------------------------------------------- disclosure


@dataclass(frozen=True, slots=True)
class Disclosure:
    """A record with some fields hidden, and what a verifier needs to recompute its record hash."""

    record: dict[str, Any]
    """The record without its hidden fields (hidden array items are `None` placeholders)."""
    salts: dict[str, str]
    """Salts of the disclosed fields only."""
    hidden_field_hashes: dict[str, bytes]
    """Field hashes of the hidden fields."""


def disclose(record: Mapping[str, Any], salts: Mapping[str, str], hide: Iterable[str]) -> Disclosure:
    """Hide the fields under each path in `hide` (a leaf path or an object/array path) from `record`.

    Objects left empty by hiding disappear; a hidden array item becomes a `None` placeholder so the other
    items keep their indices, and an array whose items are all hidden disappears.
    """
    hashed = hash_record(record, salts)
    hide = set(hide)
    hidden = {p for p in hashed.field_hashes if p in hide or any(a in hide for a in _ancestors(p))}
    unknown = {h for h in hide if not any(p == h or p.startswith(h + ".") for p in hashed.field_hashes)}
    if unknown:
        raise ValueError(f"no such field to hide: {sorted(unknown)}")
    disclosed = _prune(dict(record), "", hidden)
    return Disclosure(
        record=disclosed if disclosed is not _DROPPED else {},
        salts={p: salts[p] for p in hashed.field_hashes if p not in hidden},
        hidden_field_hashes={p: hashed.field_hashes[p] for p in hidden},
    )


_DROPPED = object()


def _ancestors(path: str) -> Iterable[str]:
    while "." in path:
        path = path.rpartition(".")[0]
        yield path


def _prune(value: Any, path: str, hidden: set[str]) -> Any:
    if path in hidden:
        return _DROPPED
    if isinstance(value, dict) and value:
        kept = {}
        for key, item in value.items():
            pruned = _prune(item, f"{path}.{key}" if path else key, hidden)
            if pruned is not _DROPPED:
                kept[key] = pruned
        return kept or _DROPPED
    if isinstance(value, list | tuple) and value:
        items = [_prune(item, f"{path}.{i}", hidden) for i, item in enumerate(value)]
        if all(item is _DROPPED for item in items):
            return _DROPPED
        return [None if item is _DROPPED else item for item in items]
    return value


def record_hash_from_disclosure(
    disclosed_record: Mapping[str, Any],
    salts: Mapping[str, str | bytes],
    hidden_field_hashes: Mapping[str, bytes],
) -> bytes:
    """Recompute the full record hash from a disclosed record, its salts and the hidden fields' hashes.

    A hidden field must be absent from `disclosed_record`, or a `None` placeholder (inside an array).
    """
    if not isinstance(disclosed_record, dict):
        raise CanonicalizationError("a disclosed record must be a JSON object")
    hidden_under = {a for path in hidden_field_hashes for a in _ancestors(path)}
    hashes = []
    for path, value in (flatten_fields(disclosed_record) if disclosed_record else {}).items():
        if path in hidden_field_hashes or path in hidden_under:
            if value is None or value == {} or value == []:
                continue  # the placeholder of a hidden field, or of a container of hidden fields
            raise ValueError(f"field {path!r} is both disclosed and hidden")
        if any(a in hidden_field_hashes for a in _ancestors(path)):
            raise ValueError(f"field {path!r} is both disclosed and hidden")
        if path not in salts:
            raise ValueError(f"no salt for disclosed field {path!r}")
        hashes.append(field_hash(salts[path], path, value))
    for path, digest in hidden_field_hashes.items():
        if len(digest) != 32:
            raise ValueError(f"hidden field hash of {path!r} must have 32 bytes")
        hashes.append(digest)
    if not hashes:
        raise ValueError("a disclosure needs at least one disclosed or hidden field")
    return _combine(hashes)
