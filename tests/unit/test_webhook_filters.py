"""Event filters of webhook endpoints (functions/webhooks/logic/filters.py): the shapes a filter may
take, and which bodies pass."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from functions.webhooks.logic.filter_model import Filter, parse_filters
from functions.webhooks.logic.filters import MAX_FILTERS, evaluate

BODY: dict[str, Any] = {
    "type": "payment.succeeded",
    "timestamp": "2026-11-22T12:00:00.000Z",
    "data": {
        "amount": "10.50",
        "fee": 0.1,
        "count": 3,
        "currency": "EUR",
        "reference": "007",
        "flagged": False,
        "note": None,
        "tags": ["a", "b"],
        "items": [{"sku": "X-1", "qty": 2}, {"sku": "Y-2", "qty": 1}],
        "payer": {"iban": "DE89370400440532013000", "country": "DE"},
    },
}


def passes(field: str, op: str, value: Any = None, body: dict[str, Any] | None = None, **extra: Any) -> bool:
    raw: dict[str, Any] = {"field": field, "op": op, **extra}
    if op != "exists" or value is not None:
        raw["value"] = value
    model = Filter.model_validate(raw)
    stored = json.loads(json.dumps(model.model_dump(mode="json")))  # as the endpoint store keeps it
    target = BODY if body is None else body
    result = evaluate([model], target)
    assert evaluate([stored], target) is result  # models and stored dicts decide alike
    return result


# -- evaluation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("type", "eq", "payment.succeeded", True),
        ("type", "eq", "payment.failed", False),
        ("type", "prefix", "payment.", True),
        ("type", "prefix", "key.", False),
        ("data.currency", "in", ["EUR", "USD"], True),
        ("data.currency", "in", ["GBP"], False),
        ("data.currency", "not_in", ["GBP"], True),
        ("data.currency", "not_in", ["EUR"], False),
        ("data.currency", "ne", "EUR", False),
        ("data.currency", "ne", "eur", True),  # text is compared exactly
        ("data.payer.country", "eq", "DE", True),
        ("data.items.0.sku", "eq", "X-1", True),
        ("data.items.1.qty", "gte", 1, True),
        ("data.items.2.sku", "eq", "Z", False),  # no such item
        ("data.items.01.sku", "eq", "Y-2", False),  # an index is written without leading zeros
        ("data.tags", "eq", ["a", "b"], True),
        ("data.tags", "eq", ["b", "a"], False),
        ("data.payer", "eq", {"country": "DE", "iban": "DE89370400440532013000"}, True),
        ("data.flagged", "eq", False, True),
        ("data.flagged", "eq", 0, False),  # true/false are not numbers
        ("data.count", "eq", True, False),
        ("data.note", "eq", None, True),
        ("data.note", "ne", None, False),
        ("data.currency", "eq", None, False),
        ("data.reference", "eq", "7", False),  # "007" is not JSON number syntax: text
        ("data.reference", "eq", 7, False),
        ("data.reference", "prefix", "00", True),
        ("data.count", "prefix", "3", False),  # prefix is for strings only
    ],
)
def test_conditions(field: str, op: str, value: Any, expected: bool) -> None:
    assert passes(field, op, value) is expected


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        # A decimal string and a number are both numbers: compared as Decimal.
        ("data.amount", "eq", "10.5", True),
        ("data.amount", "eq", 10.5, True),
        ("data.amount", "eq", "1.05e1", True),
        ("data.amount", "ne", 10.5, False),
        ("data.amount", "in", [1, "10.500"], True),
        ("data.amount", "not_in", [10.5], False),
        ("data.amount", "gt", 10, True),
        ("data.amount", "gt", "10.50", False),
        ("data.amount", "gte", "10.50", True),
        ("data.amount", "lt", 10.51, True),
        ("data.amount", "lte", "10.49", False),
        ("data.amount", "gt", "9.99", True),  # numbers, not text ("10.50" < "9.99" as text)
        ("data.count", "eq", "3", True),
        ("data.count", "eq", "3.0", True),
        ("data.count", "gt", 2.9999999, True),
        # 0.1 is read as written, not as the double 0.1000000000000000055...
        ("data.fee", "gt", "0.1", False),
        ("data.fee", "eq", "0.1", True),
        ("data.fee", "lt", 0.3, True),
        # Ordering needs a number on the body's side too.
        ("data.currency", "gt", 0, False),
        ("data.flagged", "lt", 1, False),
        ("data.note", "lt", 1, False),
        ("data.reference", "gt", 6, False),  # "007" is text
        ("timestamp", "gt", 0, False),
    ],
)
def test_numbers_compare_as_decimals(field: str, op: str, value: Any, expected: bool) -> None:
    assert passes(field, op, value) is expected


def test_amounts_beyond_a_doubles_precision_compare_exactly() -> None:
    # As doubles both are 12345678901234568.0; as Decimals they differ by a cent.
    body = {"type": "t.x", "timestamp": "", "data": {"total": "12345678901234567.01"}}
    assert passes("data.total", "eq", "12345678901234567.02", body=body) is False
    assert passes("data.total", "lt", "12345678901234567.02", body=body) is True
    assert passes("data.total", "gte", "12345678901234567.010", body=body) is True


def test_decimal_values_in_bodies_compare_as_numbers() -> None:
    body = {"type": "t.x", "timestamp": "", "data": {"amount": Decimal("100.00")}}
    assert passes("data.amount", "eq", 100, body=body) is True
    assert passes("data.amount", "gte", "100.01", body=body) is False


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "x", False),
        ("in", ["x"], False),
        ("gt", 0, False),
        ("gte", 0, False),
        ("lt", 0, False),
        ("lte", 0, False),
        ("prefix", "x", False),
        ("exists", True, False),
        ("ne", "x", True),
        ("not_in", ["x"], True),
        ("exists", False, True),
    ],
)
def test_a_missing_member_fails_all_but_ne_not_in_and_exists_false(op: str, value: Any, expected: bool) -> None:
    for path in ("data.missing", "data.currency.deeper", "data.tags.5", "data.tags.x", "data.missing.a.b"):
        assert passes(path, op, value) is expected, path


def test_exists_defaults_to_true_and_null_is_a_value() -> None:
    assert passes("data.note", "exists") is True
    assert passes("data.note", "exists", False) is False
    assert passes("data.nothing", "exists") is False
    assert Filter.model_validate({"field": "data.x", "op": "exists"}).value is True
    assert evaluate([{"field": "data.note", "op": "exists"}], BODY) is True  # stored without a value


def test_every_filter_must_hold() -> None:
    filters = parse_filters(
        [
            {"field": "type", "op": "prefix", "value": "payment."},
            {"field": "data.amount", "op": "gte", "value": "10"},
            {"field": "data.currency", "op": "in", "value": ["EUR"]},
        ]
    )
    assert evaluate(filters, BODY) is True
    assert evaluate([*filters, Filter(field="data.flagged", op="eq", value=True)], BODY) is False
    assert evaluate([], BODY) is True


def test_a_stored_filter_with_an_unknown_operator_delivers_nothing() -> None:
    assert evaluate([{"field": "type", "op": "matches", "value": ".*"}], BODY) is False
    assert evaluate([{"op": "eq", "value": "x"}], BODY) is False


# -- validation -----------------------------------------------------------------------------------


def test_a_valid_filter_round_trips_through_its_stored_form() -> None:
    model = Filter.model_validate({"field": "data.amount", "op": "in", "value": [Decimal("1.50"), "2", None]})
    stored = model.model_dump(mode="json")
    assert Filter.model_validate(json.loads(json.dumps(stored))).op == "in"
    assert evaluate([stored], {"data": {"amount": "1.5"}}) is True


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"field": "data.a", "op": "eq"}, "'eq' needs a value"),
        ({"field": "data.a", "op": "prefix"}, "'prefix' needs a value"),
        ({"field": "data.a", "op": "like", "value": "x"}, "Input should be 'eq'"),
        ({"field": "data.a", "op": "eq", "value": 1, "extra": 1}, "Extra inputs are not permitted"),
        ({"field": 5, "op": "eq", "value": 1}, "Input should be a valid string"),
        ({"field": "", "op": "eq", "value": 1}, "at least 1 character"),
        ({"field": "data." + "a" * 200, "op": "eq", "value": 1}, "at most 200 characters"),
        ({"field": "data" + ".a" * 10, "op": "eq", "value": 1}, "at most 10 segments"),
        ({"field": "data..a", "op": "eq", "value": 1}, "single dots"),
        ({"field": "data.a.", "op": "eq", "value": 1}, "single dots"),
        ({"field": "amount", "op": "eq", "value": 1}, "starts with a member of the webhook body"),
        ({"field": "data.a", "op": "in", "value": "EUR"}, "takes a list of 1 to 100 values"),
        ({"field": "data.a", "op": "in", "value": []}, "takes a list of 1 to 100 values"),
        ({"field": "data.a", "op": "not_in", "value": list(range(101))}, "takes a list of 1 to 100 values"),
        ({"field": "data.a", "op": "gt", "value": "ten"}, "compares numbers"),
        ({"field": "data.a", "op": "gt", "value": "007"}, "compares numbers"),
        ({"field": "data.a", "op": "gt", "value": " 1"}, "compares numbers"),
        ({"field": "data.a", "op": "gt", "value": "1_000"}, "compares numbers"),
        ({"field": "data.a", "op": "lte", "value": True}, "compares numbers"),
        ({"field": "data.a", "op": "lt", "value": None}, "compares numbers"),
        ({"field": "data.a", "op": "gte", "value": float("nan")}, "a number is finite"),
        ({"field": "data.a", "op": "gte", "value": Decimal("Infinity")}, "a number is finite"),
        ({"field": "data.a", "op": "exists", "value": "yes"}, "'exists' takes true or false"),
        ({"field": "data.a", "op": "exists", "value": None}, "'exists' takes true or false"),
        ({"field": "data.a", "op": "prefix", "value": ""}, "'prefix' takes a non-empty string"),
        ({"field": "data.a", "op": "prefix", "value": 1}, "'prefix' takes a non-empty string"),
        ({"field": "data.a", "op": "eq", "value": {1: "x"}}, "object keys are strings"),
        ({"field": "data.a", "op": "eq", "value": {"x"}}, "not a JSON value"),
        ({"field": "data.a", "op": "eq", "value": [[[[[[[[[[[1]]]]]]]]]]]}, "nested at most 10 levels"),
    ],
)
def test_invalid_filters_are_refused(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Filter.model_validate(raw)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    "raw",
    [
        {"field": "type", "op": "eq", "value": "key.created"},
        {"field": "timestamp", "op": "prefix", "value": "2026-"},
        {"field": "data" + ".a" * 9, "op": "exists"},
        {"field": "data.a", "op": "eq", "value": None},
        {"field": "data.a", "op": "ne", "value": {"k": [1, 2.5, "x", None, True]}},
        {"field": "data.a", "op": "in", "value": list(range(100))},
        {"field": "data.a", "op": "gt", "value": "-1.5e3"},
        {"field": "data.a", "op": "lt", "value": 0},
        {"field": "data.a", "op": "exists", "value": False},
    ],
)
def test_valid_filters_are_accepted(raw: dict[str, Any]) -> None:
    Filter.model_validate(raw)


def test_at_most_twenty_filters() -> None:
    one = {"field": "type", "op": "exists"}
    assert len(parse_filters([one] * MAX_FILTERS)) == MAX_FILTERS
    with pytest.raises(ValidationError, match="at most 20 items"):
        parse_filters([one] * (MAX_FILTERS + 1))


def test_filters_are_strict() -> None:
    # Strict: no coercion of the op or the path, and the list must be a list.
    with pytest.raises(ValidationError):
        Filter.model_validate({"field": b"data.a", "op": "eq", "value": 1})
    with pytest.raises(ValidationError):
        parse_filters({"field": "type", "op": "exists"})
