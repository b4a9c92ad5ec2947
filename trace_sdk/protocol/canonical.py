"""RFC 8785 JSON Canonicalization Scheme (JCS): one byte string per JSON value."""

from __future__ import annotations

from json.encoder import encode_basestring as _quote  # C accelerated; escapes exactly as JCS requires
from typing import Any

from trace_sdk.exceptions import CanonicalizationError

__all__ = ["canonicalize", "format_number"]

# Integers of this size are exact IEEE 754 doubles whose ECMAScript form is their decimal digits.
_MAX_SAFE_INT = 2**53
_float_repr = float.__repr__


def canonicalize(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON value (dict/list/tuple/str/int/float/bool/None)."""
    try:
        return _serialize(value).encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalizationError("a string contains an unpaired surrogate (not valid Unicode)") from None
    except RecursionError:
        raise CanonicalizationError("the value is nested too deeply") from None


def _serialize(value: Any) -> str:
    # Exact-type checks are the fast path; bool is tested by identity before int can see it.
    t = type(value)
    if t is str:
        return _quote(value)
    if t is dict:
        return _serialize_object(value)
    if t is list or t is tuple:
        return "[" + ",".join([_quote(x) if type(x) is str else _serialize(x) for x in value]) + "]"
    if t is float:
        return format_number(value)
    if t is int:
        return str(value) if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT else _format_big_int(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _serialize_subclass(value)


def _serialize_object(obj: dict[Any, Any]) -> str:
    if not obj:
        return "{}"
    try:
        keys = "".join(obj)
    except TypeError:
        bad = next(k for k in obj if not isinstance(k, str))
        raise CanonicalizationError(f"object keys must be strings, got {type(bad).__name__}") from None
    # Code-point order equals the UTF-16 code-unit order JCS requires unless a key holds U+E000..U+FFFF.
    ordered = sorted(obj) if keys.isascii() or max(keys) < "\ue000" else sorted(obj, key=_utf16_key)
    parts = []
    append = parts.append
    for k in ordered:
        v = obj[k]
        append(_quote(k) + ":" + (_quote(v) if type(v) is str else _serialize(v)))
    return "{" + ",".join(parts) + "}"


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be")


def _serialize_subclass(value: Any) -> str:
    # Subclasses of the JSON types (str/int/float enums, OrderedDict...) take this slower path.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int):
        return _serialize(int(value))
    if isinstance(value, float):
        return format_number(float(value))
    if isinstance(value, dict):
        return _serialize_object(dict(value))
    if isinstance(value, list | tuple):
        return "[" + ",".join([_serialize(item) for item in value]) + "]"
    raise CanonicalizationError(f"{type(value).__name__} is not a JSON type")


def _format_big_int(value: int) -> str:
    try:
        as_float = float(value)
    except OverflowError:
        raise CanonicalizationError(f"integer {value} is outside the IEEE 754 double range") from None
    if int(as_float) != value:
        raise CanonicalizationError(f"integer {value} is not exactly representable as an IEEE 754 double")
    return format_number(as_float)


def format_number(value: float) -> str:
    """Serialise a finite double as ECMAScript's Number.prototype.toString does (RFC 8785 3.2.2.3)."""
    r = _float_repr(value)  # shortest round-trip digits, as ECMAScript picks them
    if "e" in r:
        return _format_exponent(r)
    if r[-2:] == ".0":
        return "0" if r == "-0.0" else r[:-2]
    if r[-1] in "nf":  # 'nan', 'inf', '-inf'
        raise CanonicalizationError(f"{r} is not allowed in JSON (numbers must be finite)")
    return r  # plain decimal with a fraction: Python and ECMAScript agree


def _format_exponent(r: str) -> str:
    # repr gave d[.ddd]e±XX; rebuild it with ECMAScript's rules (k digits, value = 0.digits * 10**n).
    mantissa, _, exp = r.partition("e")
    sign = ""
    if mantissa[0] == "-":
        sign, mantissa = "-", mantissa[1:]
    digits = mantissa.replace(".", "")
    k = len(digits)
    n = int(exp) + 1
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    head = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{head}e{'+' if e > 0 else '-'}{abs(e)}"
