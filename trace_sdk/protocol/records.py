"""Validation of trace records against the data interface protocol (trace-record v1).

The packaged JSON Schema is compiled once into plain Python checks (no `jsonschema` at run time), so a
change of an enum, pattern, length or limit in the schema file is picked up as it is. The rules the schema
states only in prose or in `x-limits` (check characters, date order, clock skew, string hygiene, size
limits...) are added here by field path.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache, lru_cache
from importlib import resources
from typing import Any, NamedTuple

from trace_sdk.exceptions import CanonicalizationError, FieldError, TraceError, ValidationError
from trace_sdk.protocol.canonical import canonicalize
from trace_sdk.protocol.hashing import salt_and_hash, salts_to_json
from trace_sdk.protocol.identifiers import gs1_check_digit, is_valid_gln, is_valid_gtin, uscc_check_char

__all__ = [
    "MAX_EXTENSIONS_BYTES",
    "MAX_EXTENSIONS_DEPTH",
    "MAX_FUTURE_SKEW",
    "PreparedRecord",
    "load_schema",
    "prepare_records",
    "validate_record",
    "validate_records",
]

MAX_EXTENSIONS_BYTES = 4096
"""Canonical JSON size limit of `extensions` (stated in the schema's description of it)."""
MAX_FUTURE_SKEW = timedelta(minutes=10)
"""How far `event_time` may lie ahead of the validating machine's clock."""
MAX_EXTENSIONS_DEPTH = 32
"""Nesting limit inside `extensions` (an implementation limit: keeps every walk far from recursion limits)."""
_EXTENSION_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")

_SCHEMA_PACKAGE = "trace_sdk.protocol.schema"
_SCHEMA_FILE = "trace-record.v1.schema.json"

# (path, message) pairs; a record's list is turned into FieldErrors once the record is done.
_Errors = list[tuple[str, str]]
# A compiled check: appends what is wrong with `value` (at `path`) and returns True if nothing was.
_Check = Callable[[Any, str, _Errors], bool]


def load_schema() -> dict[str, Any]:
    """The packaged trace-record v1 JSON Schema, freshly parsed."""
    text = resources.files(_SCHEMA_PACKAGE).joinpath(_SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


# ---------------------------------------------------------------------------------------------- public API


def validate_records(records: Sequence[Any], *, now: datetime | None = None) -> None:
    """Raise `ValidationError` listing every problem of every record; return None if all are valid."""
    if not isinstance(records, list | tuple):
        raise TypeError(f"records must be a list, got {type(records).__name__}")
    now = _utc_now(now)
    errors: list[FieldError] = []
    for index, record in enumerate(records):
        errors.extend(validate_record(record, index, now=now))
    if errors:
        raise ValidationError(errors)


def validate_record(
    record: Any, index: int = 0, *, now: datetime | None = None, canonical_size: int | None = None
) -> list[FieldError]:
    """Every problem of one record (empty if it is valid); `index` is its position in the submission.

    ``canonical_size`` is the length of the record's canonical JSON (`canonicalize`) when the caller has it
    already; the size rule then uses it instead of measuring the record again.
    """
    return _validate(record, index, now, canonical_size)


def _validate(record: Any, index: int, now: datetime | None, canonical_size: int | None) -> list[FieldError]:
    """`validate_record`; ``canonical_size`` is the record's canonical JSON size when the caller knows it."""
    validator = _compiled().check
    errs: _Errors = []
    if not isinstance(record, dict):
        errs.append(("", f"a record must be a JSON object, not {_json_type(record)} / 记录必须是 JSON 对象"))
    else:
        validator(record, "", errs)
        _check_record_rules(record, errs, _utc_now(now), canonical_size)
    if not errs:
        return []
    record_id = record.get("record_id") if isinstance(record, dict) else None
    record_id = record_id if isinstance(record_id, str) else None
    return [FieldError(index, record_id, path, message) for path, message in errs]


class PreparedRecord(NamedTuple):
    """One record validated, in canonical form, salted and hashed (or the problems that stop it)."""

    index: int
    """Position of the record in the submission."""
    errors: tuple[FieldError, ...]
    """Every problem of the record (empty if it is valid; the other fields are None then)."""
    canonical: bytes | None
    """RFC 8785 bytes of the record."""
    content_sha256: str | None
    """Hex SHA-256 of the canonical bytes (what identifies the content of a record_id)."""
    salts_json: str | None
    """Fresh salts of every leaf field as compact JSON (``{"path":"0x…",…}``, as `json.dumps` writes it);
    None when not salted."""
    record_hash: bytes | None
    """The record hash under those salts (None when not salted)."""


def prepare_records(
    records: Sequence[Any], *, first_index: int = 0, salted: bool = True
) -> list[PreparedRecord]:
    """Validate each record and, if it is valid, canonicalise it and (if ``salted``) salt it afresh and hash it.

    What an agency does to every record before batching, in one pass per record (pure but for the
    random salts), so that a large submission can be split across worker processes. The canonical form
    comes first: its size is the validator's size rule, which otherwise measures the record itself.
    """
    prepared = []
    for offset, record in enumerate(records):
        index = first_index + offset
        try:  # canonical first: its size is the validator's size rule (else it measures the record itself)
            canonical: bytes | None = canonicalize(record)
        except (CanonicalizationError, RecursionError):
            canonical = None  # invalid: the validator says why
        errors = _validate(record, index, None, len(canonical) if canonical is not None else None)
        if errors:
            prepared.append(PreparedRecord(index, tuple(errors), None, None, None, None))
            continue
        if canonical is None:
            canonical = canonicalize(record)  # raises what a valid record cannot (a safety net)
        content = hashlib.sha256(canonical).hexdigest()
        if salted:
            salts, hashed = salt_and_hash(record)
            prepared.append(PreparedRecord(index, (), canonical, content, salts_to_json(salts), hashed.record_hash))
        else:
            prepared.append(PreparedRecord(index, (), canonical, content, None, None))
    return prepared


def _utc_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


# ---------------------------------------------------------------------------------------------- messages

_TYPE_NAMES = {
    "string": ("a string", "字符串"),
    "number": ("a number", "数字"),
    "integer": ("a whole number", "整数"),
    "boolean": ("true or false", "布尔值"),
    "object": ("an object", "对象"),
    "array": ("a list", "数组"),
    "null": ("null", "null"),
}


def _type_error(kind: str, value: Any) -> str:
    english, chinese = _TYPE_NAMES[kind]
    hint = ""
    if kind in ("number", "integer") and isinstance(value, str):
        try:
            float(value)
            hint = f" (write {value.strip()} without quotes)"
        except ValueError:
            pass
    return f"must be {english}, not {_json_type(value)}{hint} / 应为{chinese}"


# Plain-language explanations of the schema's patterns; an unknown pattern gets a generic message.
_PATTERN_MESSAGES = {
    "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$": "must be 1-64 characters: letters, digits and . _ : - , starting "
    "with a letter or digit / 只能包含字母、数字和 . _ : -，以字母或数字开头，最长 64 位",
    "^[A-Za-z0-9][A-Za-z0-9._:/-]{5,127}$": "must be a trace code of 6-128 characters: letters, digits and "
    ". _ : / - , starting with a letter or digit / 追溯码应为 6-128 位字母、数字或 . _ : / -",
    "^([0-9]{8}|[0-9]{12}|[0-9]{13}|[0-9]{14})$": "must be a GTIN of 8, 12, 13 or 14 digits / "
    "商品条码应为 8、12、13 或 14 位数字",
    "^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$": "must be an 18-character unified social "
    "credit code (digits and capital letters other than I, O, S, V, Z) / 统一社会信用代码应为 18 位",
    "^[0-9]{6}$": "must be a 6-digit administrative division code / 行政区划代码应为 6 位数字",
    "^[0-9]{13}$": "must be 13 digits / 应为 13 位数字",
    "^[0-9+\\- ]{5,20}$": "must be 5-20 characters: digits, spaces, + and - / 电话只能包含数字、空格、+ 和 -，5-20 位",
}


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__} (not a JSON value)"


# ---------------------------------------------------------------------------------------------- scalars


_CONTROL = re.compile("[\x00-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _string_problem(s: str) -> str | None:
    """The x-limits string rules: NFC, no control characters, no leading/trailing whitespace."""
    if s.isprintable():  # fast path: the only whitespace a printable string can hold is U+0020
        if s and (s[0] == " " or s[-1] == " "):
            return "must not start or end with a space / 首尾不能有空格"
    else:
        if _CONTROL.search(s):
            return "contains a control character (line break, tab...) / 含有控制字符（换行、制表符等）"
        if _SURROGATE.search(s):
            return "contains an invalid character (unpaired surrogate) / 含有无效字符"
        if s != s.strip():
            return "must not start or end with whitespace / 首尾不能有空白字符"
    if not s.isascii() and not unicodedata.is_normalized("NFC", s):
        return "is not in Unicode NFC form; normalise it before submitting / 未做 Unicode NFC 规范化"
    return None


def _number_problem(v: int | float) -> str | None:
    if isinstance(v, float):
        if not math.isfinite(v):
            return "must be a finite number (NaN and Infinity are not allowed) / 必须是有限数值"
    elif not -(2**53) <= v <= 2**53:
        try:
            canonicalize(v)
        except CanonicalizationError:
            return "is too large to be represented exactly / 数值过大，无法精确表示"
    return None


def _is_number(v: Any) -> bool:
    t = type(v)
    return t is float or t is int or (isinstance(v, int | float) and not isinstance(v, bool))


_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATE_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?"
)
_DATE_MESSAGE = "must be a date written YYYY-MM-DD, e.g. 2026-03-01 / 日期格式应为 YYYY-MM-DD"
_DATE_TIME_MESSAGE = (
    "must be a date and time with a UTC offset, e.g. 2026-03-01T08:30:00+08:00 / 时间格式应为 2026-03-01T08:30:00+08:00"
)


@lru_cache(maxsize=4096)  # dates repeat across records (production, expiry, documents)
def _parse_date(s: str) -> date | None:
    m = _DATE.fullmatch(s)
    if m is None:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


@lru_cache(maxsize=256)  # the format check and the clock rule both parse each event_time
def _parse_date_time(s: str) -> datetime | str:
    """The aware datetime of an RFC 3339 date-time, or the message saying what is wrong with it."""
    m = _DATE_TIME.fullmatch(s)
    if m is None:
        return _DATE_TIME_MESSAGE
    if m[8] is None and m[9] is None:
        return "has no UTC offset; add one such as +08:00 or Z / 缺少时区偏移，如 +08:00"
    try:
        if m[8]:
            tz = UTC
        else:
            hours, minutes = int(m[10]), int(m[11])
            if hours > 23 or minutes > 59:
                return _DATE_TIME_MESSAGE
            offset = timedelta(hours=hours, minutes=minutes)
            tz = timezone(-offset if m[9] == "-" else offset)
        micro = int((m[7][1:] + "000000")[:6]) if m[7] else 0
        return datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]), micro, tz)
    except ValueError:
        return "is not a real date and time / 日期或时间不存在"


def _date_time_problem(s: str) -> str | None:
    parsed = _parse_date_time(s)
    return parsed if isinstance(parsed, str) else None


def _check_format(fmt: str, spath: str) -> Callable[[str], str | None]:
    if fmt == "date":
        return lambda s: None if _parse_date(s) is not None else _DATE_MESSAGE
    if fmt == "date-time":
        return _date_time_problem
    raise TraceError(f"schema format {fmt!r} at {spath} is not supported by the validator")


# ---------------------------------------------------------------------------------------------- field rules
# Prose rules attached to a schema path ("*" = any array index); each runs after the schema checks passed.


# Identifiers repeat across records (one enterprise, product or place in many of them): their check
# characters are computed once per distinct value.
_uscc_check_char = lru_cache(maxsize=4096)(uscc_check_char)


def _gs1_rule(is_valid: Callable[[str], bool]) -> _Check:
    cached_is_valid = lru_cache(maxsize=4096)(is_valid)

    def check(value: str, path: str, errs: _Errors) -> bool:
        if cached_is_valid(value):
            return True
        expected = gs1_check_digit(value[:-1])
        errs.append((path, f"check digit is wrong (expected {expected}) / 校验位错误（应为 {expected}）"))
        return False

    return check


def _uscc_rule(value: str, path: str, errs: _Errors) -> bool:
    expected = _uscc_check_char(value[:17])
    if value[17] == expected:
        return True
    errs.append((path, f"check character is wrong (expected {expected}) / 校验码错误（应为 {expected}）"))
    return False


def _extensions_size_rule(value: dict[str, Any], path: str, errs: _Errors) -> bool:
    size = _canonical_size_over(value, MAX_EXTENSIONS_BYTES)
    if size is None:
        return True
    limit = MAX_EXTENSIONS_BYTES
    message = f"is {size} bytes as canonical JSON, at most {limit} allowed / 扩展字段超过 {limit} 字节"
    errs.append((path, message))
    return False


def _canonical_size_over(value: Any, limit: int) -> int | None:
    """The canonical JSON size of `value` if it exceeds `limit`, else None; cheap for most values."""
    # repr writes every character at least once where canonical UTF-8 needs at most 4 bytes, an escape
    # takes at least 2 repr characters for at most 6 bytes, and repr's ", " and ": " pay for the longer
    # ECMAScript spelling of numbers such as 1e+20: 4 * len(repr) bounds the canonical size of JSON data.
    if 4 * len(repr(value)) <= limit:
        return None
    size = len(canonicalize(value))
    return size if size > limit else None


_FIELD_RULES: dict[str, _Check] = {
    "product.gtin": _gs1_rule(is_valid_gtin),
    "location.gln": _gs1_rule(is_valid_gln),
    "enterprise.uscc": _uscc_rule,
    "counterparty.uscc": _uscc_rule,
    "extensions": _extensions_size_rule,
}
# Free-form objects whose keys (at every depth) must match a pattern: needed so that flattening a record
# into dotted field paths can never map two different records onto the same fields.
_FREE_FORM_KEYS = {"extensions": _EXTENSION_KEY}


def _check_record_rules(
    record: dict[str, Any], errs: _Errors, now: datetime, canonical_size: int | None = None
) -> None:
    bad = {path for path, _ in errs}
    product = record.get("product")
    if isinstance(product, dict) and not bad.intersection(("product.production_date", "product.expiry_date")):
        produced, expires = product.get("production_date"), product.get("expiry_date")
        if isinstance(produced, str) and isinstance(expires, str) and expires < produced:
            errs.append(("product.expiry_date", f"is before the production date {produced} / 保质期早于生产日期"))

    event_time = record.get("event_time")
    if isinstance(event_time, str) and "event_time" not in bad:
        moment = _parse_date_time(event_time)
        if isinstance(moment, datetime) and moment - now > MAX_FUTURE_SKEW:
            minutes = int(MAX_FUTURE_SKEW.total_seconds() // 60)
            errs.append(
                (
                    "event_time",
                    f"is more than {minutes} minutes in the future; check the clock and the UTC offset / "
                    f"事件时间晚于当前时间超过 {minutes} 分钟",
                )
            )

    inputs, trace_code = record.get("inputs"), record.get("trace_code")
    if isinstance(inputs, list) and isinstance(trace_code, str):
        for i, code in enumerate(inputs):
            if code == trace_code:
                errs.append(
                    (
                        f"inputs.{i}",
                        "is this record's own trace_code; a lot cannot be its own input / "
                        "不能把本批次自己的追溯码列为来源",
                    )
                )

    _check_record_size(record, errs, _compiled().max_record_bytes, canonical_size)


def _check_record_size(record: dict[str, Any], errs: _Errors, limit: int, known: int | None = None) -> None:
    if known is not None:  # the caller has the canonical bytes already
        size: int | None = known if known > limit else None
    else:
        try:
            size = _canonical_size_over(record, limit)
        except (CanonicalizationError, RecursionError) as exc:
            if not errs:  # a safety net: every cause (NaN, too deep...) is reported as a field error already
                errs.append(("", f"cannot be written as canonical JSON: {exc}"))
            return
    if size is not None:
        errs.append(("", f"record is {size} bytes as canonical JSON, at most {limit} allowed / 记录超过 {limit} 字节"))


# ---------------------------------------------------------------------------------------------- compiler

_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "examples", "default"})
_SUPPORTED = frozenset(
    {
        "type",
        "const",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "maxItems",
        "uniqueItems",
    }
)


@dataclass(frozen=True, slots=True)
class _CompiledSchema:
    check: _Check
    max_record_bytes: int


@cache
def _compiled() -> _CompiledSchema:
    """The packaged schema compiled into checks, once per process."""
    schema = load_schema()
    seen: set[str] = set()
    check = _compile(schema, "", seen, _FIELD_RULES)
    missing = set(_FIELD_RULES) - seen
    if missing:
        raise TraceError(f"validator rules refer to fields the schema does not have: {sorted(missing)}")
    limit = schema.get("x-limits", {}).get("max_canonical_record_bytes", 16384)
    return _CompiledSchema(check, limit)


def _compile(node: dict[str, Any], spath: str, seen: set[str], rules: dict[str, _Check]) -> _Check:
    """Compile one schema node at `spath` (dotted, "*" for array items), adding `rules` by path."""
    seen.add(spath)
    unknown = {k for k in node if k not in _SUPPORTED and k not in _ANNOTATIONS and not k.startswith("x-")}
    if unknown:
        raise TraceError(f"schema keyword(s) {sorted(unknown)} at {spath or '(root)'} are not supported")
    types = node.get("type")
    if types == "string":
        check = _compile_string(node, spath)
    elif types in ("number", "integer"):
        check = _compile_number(node, types)
    elif types == "object":
        check = _compile_object(node, spath, seen, rules)
    elif types == "array":
        check = _compile_array(node, spath, seen, rules)
    elif types in ("boolean", "null"):
        check = _compile_simple(types)
    elif types is None and ("enum" in node or "const" in node):
        check = _compile_enum(node)
    else:
        raise TraceError(f"schema node at {spath or '(root)'} has no supported type: {types!r}")
    if types is not None and ("enum" in node or "const" in node):
        check = _chain(check, _compile_enum(node))
    rule = rules.get(spath)
    return _chain(check, rule) if rule else check


def _chain(first: _Check, then: _Check) -> _Check:
    def check(value: Any, path: str, errs: _Errors) -> bool:
        return first(value, path, errs) and then(value, path, errs)

    return check


def _compile_enum(node: dict[str, Any]) -> _Check:
    allowed = [node["const"]] if "const" in node else list(node["enum"])
    listing = ", ".join(str(a) if isinstance(a, str) else json.dumps(a) for a in allowed)
    if len(allowed) == 1:
        message = f"must be {_show(allowed[0])} / 取值必须为 {_show(allowed[0])}"
    else:
        message = f"is not an allowed value; use one of: {listing} / 取值不在允许范围内"
    if all(isinstance(a, str) for a in allowed):
        strings = frozenset(allowed)

        def check_strings(value: Any, path: str, errs: _Errors) -> bool:
            if isinstance(value, str) and value in strings:
                return True
            errs.append((path, f"{_show(value)} {message}"))
            return False

        return check_strings
    canonical = {canonicalize(a) for a in allowed}

    def check_any(value: Any, path: str, errs: _Errors) -> bool:
        try:
            if canonicalize(value) in canonical:
                return True
        except CanonicalizationError:
            pass
        errs.append((path, f"{_show(value)} {message}"))
        return False

    return check_any


def _compile_simple(kind: str) -> _Check:
    def check(value: Any, path: str, errs: _Errors) -> bool:
        if (value is None) if kind == "null" else isinstance(value, bool):
            return True
        errs.append((path, _type_error(kind, value)))
        return False

    return check


def _compile_string(node: dict[str, Any], spath: str) -> _Check:
    min_len = node.get("minLength", 0)
    max_len = node.get("maxLength")
    pattern = re.compile(node["pattern"]) if "pattern" in node else None
    pattern_message = _PATTERN_MESSAGES.get(
        node.get("pattern", ""), f"is not in the expected format ({node.get('pattern')}) / 格式不正确"
    )
    fmt = _check_format(node["format"], spath) if "format" in node else None

    def check(value: Any, path: str, errs: _Errors) -> bool:
        if not isinstance(value, str):
            errs.append((path, _type_error("string", value)))
            return False
        if value.isascii() and value.isprintable() and value[:1] != " " and value[-1:] != " ":
            problem = None  # clean ASCII: the x-limits string rules hold (inlined fast path)
        else:
            problem = _string_problem(value)
        if problem is None:
            n = len(value)
            if n < min_len:
                problem = (
                    "must not be empty / 不能为空"
                    if min_len == 1
                    else f"must be at least {min_len} characters / 至少 {min_len} 个字符"
                )
            elif max_len is not None and n > max_len:
                problem = f"is too long: {n} characters, at most {max_len} allowed / 超过最大长度 {max_len}"
            elif pattern is not None and pattern.search(value) is None:
                problem = pattern_message
            elif fmt is not None:
                problem = fmt(value)
        if problem is None:
            return True
        errs.append((path, problem))
        return False

    return check


def _compile_number(node: dict[str, Any], kind: str) -> _Check:
    bounds: list[tuple[Callable[[float], bool], str]] = []
    if "minimum" in node:
        lo = node["minimum"]
        bounds.append((lambda v, lo=lo: v >= lo, f"must be at least {lo} / 不能小于 {lo}"))
    if "exclusiveMinimum" in node:
        xlo = node["exclusiveMinimum"]
        bounds.append((lambda v, xlo=xlo: v > xlo, f"must be greater than {xlo} / 必须大于 {xlo}"))
    if "maximum" in node:
        hi = node["maximum"]
        bounds.append((lambda v, hi=hi: v <= hi, f"must be at most {hi} / 不能大于 {hi}"))
    if "exclusiveMaximum" in node:
        xhi = node["exclusiveMaximum"]
        bounds.append((lambda v, xhi=xhi: v < xhi, f"must be less than {xhi} / 必须小于 {xhi}"))
    whole = kind == "integer"

    def check(value: Any, path: str, errs: _Errors) -> bool:
        if not _is_number(value):
            errs.append((path, _type_error(kind, value)))
            return False
        problem = _number_problem(value)
        if problem is None and whole and not (isinstance(value, int) or value.is_integer()):
            problem = f"must be a whole number, not {_show(value)} / 应为整数"
        if problem is None:
            for ok, message in bounds:
                if not ok(value):
                    problem = message
                    break
        if problem is None:
            return True
        errs.append((path, problem))
        return False

    return check


def _compile_object(node: dict[str, Any], spath: str, seen: set[str], rules: dict[str, _Check]) -> _Check:
    prefix = spath + "." if spath else ""
    properties = {name: _compile(sub, prefix + name, seen, rules) for name, sub in node.get("properties", {}).items()}
    required = tuple(node.get("required", ()))
    extra = node.get("additionalProperties", True)
    free_keys = _FREE_FORM_KEYS.get(spath)
    if extra is False or extra is True:
        extra_check: _Check | None = None
    else:
        extra_check = _compile(extra, prefix + "*", seen, rules)

    known = frozenset(properties)
    must = frozenset(required)

    def check(value: Any, path: str, errs: _Errors) -> bool:
        if not isinstance(value, dict):
            errs.append((path, _type_error("object", value)))
            return False
        ok = True
        child = path + "." if path else ""
        keys = value.keys()
        if not keys >= must:
            for name in required:
                if name not in value:
                    errs.append((child + name, "is required but missing / 缺少必填字段"))
            ok = False
        if keys <= known:  # the usual case: every key is a schema property
            for key, item in value.items():
                if not properties[key](item, child + key, errs):
                    ok = False
            return ok
        for key, item in value.items():
            sub = properties.get(key)
            if sub is not None:
                ok = sub(item, child + key, errs) and ok
            elif not isinstance(key, str):
                errs.append((child + str(key), "object keys must be strings / 字段名必须是字符串"))
                ok = False
            elif extra_check is not None:
                ok = extra_check(item, child + key, errs) and ok
            elif extra is True:
                ok = _check_json_member(key, item, child, errs, free_keys, 1) and ok
            else:
                errs.append((child + key, "is not a field of the protocol (check the spelling) / 不是协议定义的字段"))
                ok = False
        return ok

    return check


def _compile_array(node: dict[str, Any], spath: str, seen: set[str], rules: dict[str, _Check]) -> _Check:
    items = _compile(node["items"], spath + ".*", seen, rules) if "items" in node else _free_form_checker(None)
    min_items = node.get("minItems", 0)
    max_items = node.get("maxItems")
    unique = node.get("uniqueItems", False)

    def check(value: Any, path: str, errs: _Errors) -> bool:
        if not isinstance(value, list | tuple):
            errs.append((path, _type_error("array", value)))
            return False
        n = len(value)
        if n < min_items:
            errs.append((path, f"needs at least {min_items} item(s) / 至少 {min_items} 项"))
            return False
        if max_items is not None and n > max_items:
            errs.append((path, f"has {n} items, at most {max_items} allowed / 最多 {max_items} 项"))
            return False
        ok = True
        prefix = path + "."
        for i, item in enumerate(value):
            ok = items(item, prefix + str(i), errs) and ok
        if unique and n > 1:
            ok = _check_unique(value, prefix, errs) and ok
        return ok

    return check


def _check_unique(items: list[Any], prefix: str, errs: _Errors) -> bool:
    first: dict[Any, int] = {}
    ok = True
    for i, item in enumerate(items):
        try:
            key = item if type(item) is str else canonicalize(item)  # JSON equality: 1 == 1.0
        except CanonicalizationError:
            continue  # already reported as a field error
        if key in first:
            errs.append((prefix + str(i), f"repeats item {first[key]} / 与第 {first[key]} 项重复"))
            ok = False
        else:
            first[key] = i
    return ok


def _free_form_checker(key_pattern: re.Pattern[str] | None) -> _Check:
    def check(value: Any, path: str, errs: _Errors) -> bool:
        return _check_json(value, path, errs, key_pattern, 1)

    return check


def _check_json(value: Any, path: str, errs: _Errors, keys: re.Pattern[str] | None, depth: int) -> bool:
    """Free-form content: JSON types only, the string and number rules, and the key pattern if any."""
    problem: str | None = None
    if isinstance(value, str):
        problem = _string_problem(value)
    elif value is None or isinstance(value, bool):
        pass
    elif isinstance(value, int | float):
        problem = _number_problem(value)
    elif isinstance(value, dict | list | tuple):
        if depth > MAX_EXTENSIONS_DEPTH:
            problem = f"is nested more than {MAX_EXTENSIONS_DEPTH} levels deep / 嵌套层数过多"
        elif isinstance(value, dict):
            return _check_json_object(value, path, errs, keys, depth)
        else:
            ok = True
            for i, item in enumerate(value):
                ok = _check_json(item, f"{path}.{i}", errs, keys, depth + 1) and ok
            return ok
    else:
        problem = f"must be a JSON value, not {_json_type(value)}"
    if problem is None:
        return True
    errs.append((path, problem))
    return False


def _check_json_object(
    value: dict[Any, Any], path: str, errs: _Errors, keys: re.Pattern[str] | None, depth: int
) -> bool:
    ok = True
    prefix = path + "."
    for key, item in value.items():
        ok = _check_json_member(key, item, prefix, errs, keys, depth + 1) and ok
    return ok


def _check_json_member(
    key: Any, item: Any, prefix: str, errs: _Errors, keys: re.Pattern[str] | None, depth: int
) -> bool:
    if not isinstance(key, str):
        errs.append((f"{prefix}{key}", "object keys must be strings / 字段名必须是字符串"))
        return False
    if keys is not None and keys.fullmatch(key) is None:
        message = (
            f"key {_show(key)} must be 1-64 lower-case letters, digits or _, starting with a letter / "
            "扩展字段名只能用小写字母、数字和下划线，以字母开头"
        )
        errs.append((prefix + key, message))
        return False
    return _check_json(item, prefix + key, errs, keys, depth)
