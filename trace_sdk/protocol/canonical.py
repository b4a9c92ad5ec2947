"""RFC 8785 JSON Canonicalization Scheme (JCS): one byte string per JSON value.

`canonicalize` writes a value with orjson when every part of it is one orjson writes exactly as JCS does
(see `_orjson_form`), and with the reference serialiser below otherwise; both give the same bytes.
"""

from __future__ import annotations

from json.encoder import encode_basestring as _quote  # C accelerated; escapes exactly as JCS requires
from types import NoneType
from typing import Any

import orjson

from trace_sdk.exceptions import CanonicalizationError

__all__ = ["canonicalize", "format_number"]

# Integers of this size are exact IEEE 754 doubles whose ECMAScript form is their decimal digits.
_MAX_SAFE_INT = 2**53
_float_repr = float.__repr__

# orjson's fast path (see `_orjson_form`). Sorted keys; OPT_STRICT_INTEGER makes orjson refuse integers beyond
# +-(2**53 - 1), whose JCS form may be a double's (the reference writes those).
_ORJSON_JCS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_ORJSON_SCALARS = frozenset({str, int, bool, NoneType})
_orjson_dumps = orjson.dumps


def canonicalize(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON value (dict/list/tuple/str/int/float/bool/None)."""
    try:
        form = _orjson_form(value)
        if form is not _NOT_ORJSON:
            return _orjson_dumps(form, option=_ORJSON_JCS)
    except (TypeError, RecursionError):  # orjson.JSONEncodeError is a TypeError
        pass  # a surrogate, an integer beyond 2**53, a non-str key, very deep nesting...: the reference decides
    return _canonicalize_reference(value)


def _canonicalize_reference(value: Any) -> bytes:
    """`canonicalize` without the orjson fast path (the reference the fast path is tested against)."""
    try:
        return _serialize(value).encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalizationError("a string contains an unpaired surrogate (not valid Unicode)") from None
    except RecursionError:
        raise CanonicalizationError("the value is nested too deeply") from None


# ---------------------------------------------------------------------------------------------- fast path

_NOT_ORJSON = object()


def _orjson_form(value: Any) -> Any:
    """``value``, or a copy of it with the same JCS form, if orjson (`_ORJSON_JCS`) writes it exactly as JCS
    (when it writes it at all); else `_NOT_ORJSON`.

    orjson writes JCS for exact dicts, lists and tuples over exact str, int, bool, None and the floats of
    `_float_form`, when no object has a key at or above U+E000 (below it, orjson's UTF-8 key order is JCS's
    UTF-16 order). It escapes strings exactly as JCS (checked for every code point in
    tests/protocol/test_canonical.py) and refuses unpaired surrogates; integers beyond 2**53 - 1
    (OPT_STRICT_INTEGER), keys that are not exactly str and nesting deeper than its limit make it raise,
    and the caller falls back to the reference. Containers holding a float that `_float_form` replaces are
    copied (the caller's value is never changed). May raise TypeError (a key that is not a string) or
    RecursionError.
    """
    t = type(value)
    if t is dict or t is list or t is tuple:
        if t is dict:
            keys = "".join(value)
            if not (keys.isascii() or max(keys) < "\ue000"):
                return _NOT_ORJSON
            entries: Any = value.items()
        else:
            entries = enumerate(value)
        copy: Any = None
        for slot, item in entries:
            kind = type(item)
            if kind is str or kind is int or kind is bool or item is None:
                continue
            form = _orjson_form(item) if kind is not float else _float_form(item)
            if form is not item:
                if form is _NOT_ORJSON:
                    return _NOT_ORJSON
                if copy is None:
                    copy = dict(value) if t is dict else list(value)
                copy[slot] = form
        return value if copy is None else copy
    if t is float:
        return _float_form(value)
    return value if t in _ORJSON_SCALARS else _NOT_ORJSON


def _float_form(value: float) -> Any:
    """What orjson writes as the JCS form of the double ``value``: the float itself when its shortest form
    has a fraction and no exponent (`format_number` returns it as it is) and orjson writes those same
    characters; the int of an integral one below 1e16 (JCS writes its digits); else `_NOT_ORJSON`."""
    r = _float_repr(value)
    if "e" in r:
        return _NOT_ORJSON
    if r[-2:] == ".0":  # integral (-0.0 too: int(-0.0) is 0, JCS "0"); beyond 2**53 - 1 orjson raises
        return int(value)
    return value if _orjson_dumps(value) == r.encode() else _NOT_ORJSON  # nan, inf: orjson writes null


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
