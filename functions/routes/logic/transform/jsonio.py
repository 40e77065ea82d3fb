"""JSON that keeps numbers exact: decimals are read as Decimal and written back as they were
(`1234.50` stays `1234.50`, never `1234.5` or a float's approximation)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from gateway_core.errors import BadRequest

MAX_DEPTH = 64


MAX_EXPONENT = 1000  # `1E+999999999` is nine bytes that would print as a gigabyte of digits


def _decimal(text: str) -> Decimal:
    value = Decimal(text)
    if abs(value.adjusted()) > MAX_EXPONENT:
        raise BadRequest(f"The number {text[:40]} is out of range.", code="invalid_json")
    return value


def _constant(name: str) -> Any:
    raise BadRequest(f"{name} is not a JSON number.", code="invalid_json")


def loads_json(data: bytes | str) -> Any:
    """Parse JSON with Decimal numbers; BadRequest says what is wrong."""
    try:
        value = json.loads(data, parse_float=_decimal, parse_constant=_constant)
    except RecursionError as error:
        raise BadRequest("The JSON is nested too deeply.", code="invalid_json") from error
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"The body is not valid JSON: {error}", code="invalid_json") from error
    if _depth(value) > MAX_DEPTH:
        raise BadRequest(f"The JSON is nested deeper than {MAX_DEPTH} levels.", code="invalid_json")
    return value


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("JSON has no NaN or Infinity")
        out.append(str(value))
    elif isinstance(value, float):
        # Only from code that should not exist here; json's repr is the best a float can do.
        out.append(json.dumps(value, allow_nan=False))
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        out.append(json.dumps(str(value), ensure_ascii=False))


def dumps_json(value: Any) -> bytes:
    """Compact JSON, UTF-8, Decimal written as its exact decimal string."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode()
