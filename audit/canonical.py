"""Canonical JSON (RFC 8785, JSON Canonicalization Scheme) for audit entries.

The bytes of an audit entry are what the Merkle tree commits to, so one value must
have exactly one encoding: object keys sorted by their UTF-16 code units, no
insignificant whitespace, strings with the minimal escaping of ECMAScript's
JSON.stringify, numbers in ECMAScript's shortest round-trip form (1.0 -> "1",
1e21 -> "1e+21"), UTF-8 output. Anything JSON cannot represent faithfully is refused
instead of being coerced: non-string keys, NaN/Infinity, lone surrogates, integers
beyond IEEE-754 double precision (which other languages' parsers would round),
and types other than dict/list/tuple/str/int/float/bool/None.

No Django imports: the offline verifier uses this module.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal

MAX_SAFE_INTEGER = 2**53 - 1
_encode_string = json.encoder.encode_basestring  # minimal escaping, like JSON.stringify


class CanonicalJSONError(ValueError):
    """A value has no canonical JSON form."""


def _number(value: float) -> str:
    """ECMAScript Number::toString (ES2019 7.1.12.1) from repr()'s shortest digits."""
    if not math.isfinite(value):
        raise CanonicalJSONError(f"{value!r} is not a JSON number")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple))  # no leading zeros for a non-zero Decimal
    exponent += len(digits) - len(digits.rstrip("0"))
    digits = digits.rstrip("0")
    k = len(digits)
    n = k + exponent  # value = 0.d1...dk * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{head}e{'+' if e >= 0 else '-'}{abs(e)}"


def _string(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalJSONError("string contains a lone surrogate") from None
    return _encode_string(value)


def _write(value, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalJSONError(f"integer {value} exceeds 2**53 - 1; store it as a string")
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise CanonicalJSONError(f"object key {key!r} is not a string")
        out.append("{")
        for i, key in enumerate(
            sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
        ):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise CanonicalJSONError(
            f"{type(value).__name__} is not JSON (convert it to str, int or a dict first)"
        )


def canonical_string(value: str) -> str:
    """The canonical JSON of one string (quotes and minimal escaping)."""
    if not isinstance(value, str):
        raise CanonicalJSONError(f"{type(value).__name__} is not a string")
    return _string(value)


def canonical_text(value) -> str:
    out: list[str] = []
    _write(value, out)
    return "".join(out)


def is_canonical(text: str) -> bool:
    """True when `text` is exactly the canonical form of the JSON it holds."""
    try:
        return canonical_text(json.loads(text)) == text
    except (ValueError, CanonicalJSONError):
        return False
