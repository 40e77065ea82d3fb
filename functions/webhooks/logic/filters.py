"""Event filters of a webhook endpoint (evaluated here, without pydantic: the fan-out's path;
filter_model.py validates them when they are written): conditions on the webhook body, all of which must hold for
an event to be delivered (after its type matched the endpoint's subscription).

A filter names a member of the body (`{"type", "timestamp", "data"}`) by a dot path (a list item
by its index: `data.items.0.sku`), an operator and a value:

* `eq`, `ne`: equal (JSON equality: `true` is not `1`, `"a"` is not `["a"]`);
* `in`, `not_in`: equal to one of / none of a list of values;
* `gt`, `gte`, `lt`, `lte`: numeric comparison;
* `exists`: the member is there (`"value": false`: it is not; null is a value, so it exists);
* `prefix`: a string that starts with the value.

Numbers are compared as Decimal, never as floats: a JSON number, or a string holding a number in
JSON's syntax (`"10.50"`, money as the product writes it), equals another when both are numbers
(`"10.50"` eq `10.5`); other strings compare as text (`"007"` is not `"7"`). A number sent as a JSON
number is read at the precision of a double; send it as a string to compare more digits.

A member that is not there fails every condition but `ne`, `not_in` and `exists: false`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

Op = Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "prefix"]
MAX_FILTERS = 20
MAX_PATH_LENGTH = 200
MAX_PATH_SEGMENTS = 10
MAX_LIST_VALUES = 100
MAX_VALUE_DEPTH = 10
# The members of a webhook body (Standard Webhooks): a path starts with one of them.
BODY_MEMBERS = ("type", "timestamp", "data")

_ORDERING = frozenset({"gt", "gte", "lt", "lte"})
# A number in JSON's syntax: no sign but '-', no leading zeros, no bare '.', no spaces.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_MAX_NUMBER_TEXT = 100
_INDEX = re.compile(r"0|[1-9][0-9]{0,8}")


def _check_json(value: Any, depth: int) -> None:
    if depth > MAX_VALUE_DEPTH:
        raise ValueError(f"a value is nested at most {MAX_VALUE_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a number is finite")
        return
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("a number is finite")
        return
    if isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("object keys are strings")
            _check_json(item, depth + 1)
        return
    raise ValueError(f"not a JSON value: {type(value).__name__}")


def _number(value: Any) -> Decimal | None:
    """The value as a Decimal when it is a number or a string in JSON number syntax."""
    if isinstance(value, bool):  # a bool is an int to Python, never a number to JSON
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # repr: the shortest text that reads back as this double, i.e. what the JSON said.
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and len(value) <= _MAX_NUMBER_TEXT and _JSON_NUMBER.fullmatch(value):
        return Decimal(value)
    return None


def _same(a: Any, b: Any) -> bool:
    """JSON equality: bools are not numbers, numbers equal by value, containers member by member
    (by the rule of `_equal`, so `{"a": "1.0"}` equals `{"a": 1}` as `"1.0"` equals `1`)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, (int, float, Decimal)) and isinstance(b, (int, float, Decimal)):
        return _number(a) == _number(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if type(a) is not type(b) and not (isinstance(a, str) and isinstance(b, str)):
        return False
    return bool(a == b)


def _equal(actual: Any, expected: Any) -> bool:
    left, right = _number(actual), _number(expected)
    if left is not None and right is not None:
        return left == right
    return _same(actual, expected)


_MISSING = object()


def _resolve(body: Any, path: str) -> Any:
    current = body
    for segment in path.split("."):
        if isinstance(current, Mapping):
            if segment not in current:
                return _MISSING
            current = current[segment]
        elif isinstance(current, list) and _INDEX.fullmatch(segment) and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return _MISSING
    return current


def _holds(op: str, actual: Any, expected: Any) -> bool:
    if op == "exists":
        wanted = True if expected is None else expected
        return (actual is not _MISSING) is wanted
    if actual is _MISSING:
        return op in ("ne", "not_in")
    if op == "eq":
        return _equal(actual, expected)
    if op == "ne":
        return not _equal(actual, expected)
    if op == "in":
        return isinstance(expected, list) and any(_equal(actual, v) for v in expected)
    if op == "not_in":
        return isinstance(expected, list) and not any(_equal(actual, v) for v in expected)
    if op == "prefix":
        return isinstance(actual, str) and isinstance(expected, str) and actual.startswith(expected)
    if op in _ORDERING:
        left, right = _number(actual), _number(expected)
        if left is None or right is None:
            return False
        if op == "gt":
            return left > right
        if op == "gte":
            return left >= right
        if op == "lt":
            return left < right
        return left <= right
    return False  # an operator this code does not know delivers nothing rather than everything


def evaluate(filters: Sequence[Any], body: Mapping[str, Any]) -> bool:
    """Whether the webhook `body` passes every filter (no filters: it does). Filters come as models
    (filter_model.Filter) or as stored (validated when written: `Filter.model_dump(mode="json")`)."""
    for item in filters:
        path: str
        op: str
        if not isinstance(item, Mapping):
            path, op, expected = item.field, item.op, item.value
        else:
            path, op, expected = str(item.get("field", "")), str(item.get("op", "")), item.get("value")
        if not _holds(op, _resolve(body, path), expected):
            return False
    return True
