"""Exact-decimal JSON of the transformations: functions.routes.logic.transform.jsonio."""

from __future__ import annotations

from decimal import Decimal

import pytest

from functions.routes.logic.transform.jsonio import MAX_DEPTH, dumps_json, loads_json
from gateway_core.errors import BadRequest


def test_given_a_decimal_amount_when_round_tripped_then_its_spelling_is_kept() -> None:
    # Given a body whose amount has a trailing zero
    raw = b'{"amount":1234.50,"rate":0.10,"count":3,"tiny":0.000001}'
    # When
    value = loads_json(raw)
    # Then numbers are exact: Decimal for fractions, int for whole numbers, spelling kept
    assert value == {"amount": Decimal("1234.50"), "rate": Decimal("0.10"), "count": 3, "tiny": Decimal("0.000001")}
    assert isinstance(value["amount"], Decimal)
    assert str(value["amount"]) == "1234.50"
    assert type(value["count"]) is int
    assert dumps_json(value) == raw


def test_given_a_str_input_when_loading_then_it_parses_like_bytes() -> None:
    assert loads_json('{"a":[1,2.5,"x",null,true,false]}') == {"a": [1, Decimal("2.5"), "x", None, True, False]}


def test_given_values_when_dumping_then_the_output_is_compact_utf8_and_exact() -> None:
    # Given every JSON kind, a non-ASCII string and a tuple
    value = {"s": "Zürich €", "n": None, "t": True, "f": False, "i": -7, "d": Decimal("-0.50"), "l": (1, "a")}
    # When
    out = dumps_json(value)
    # Then
    assert out == '{"s":"Zürich €","n":null,"t":true,"f":false,"i":-7,"d":-0.50,"l":[1,"a"]}'.encode()


def test_given_exponent_decimals_when_dumping_then_the_output_is_still_valid_json() -> None:
    out = dumps_json([Decimal("1E+2"), Decimal("1.5E-7")])
    assert out == b"[1E+2,1.5E-7]"
    assert loads_json(out) == [Decimal("100"), Decimal("1.5E-7")]


def test_given_strings_needing_escapes_when_dumping_then_they_are_escaped() -> None:
    assert dumps_json({'q"uote': 'line\nbreak\t"\\'}) == b'{"q\\"uote":"line\\nbreak\\t\\"\\\\"}'


def test_given_non_string_keys_and_unknown_objects_when_dumping_then_they_become_strings() -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing"

    assert dumps_json({1: Thing()}) == b'{"1":"thing"}'


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), float("nan")])
def test_given_a_non_finite_number_when_dumping_then_it_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"NaN|Infinity|JSON compliant"):
        dumps_json({"amount": value})


def test_given_a_float_when_dumping_then_it_is_written_as_json_writes_it() -> None:
    assert dumps_json([0.5, 2.0]) == b"[0.5,2.0]"


@pytest.mark.parametrize("raw", ['{"amount": NaN}', "[Infinity]", "[-Infinity]"])
def test_given_nan_or_infinity_literals_when_loading_then_they_are_refused_as_invalid_json(raw: str) -> None:
    # Given literals that are not JSON (RFC 8259) but that Python's json accepts by default
    # When / Then the reader refuses them; today they come back as float nan/inf, which
    # dumps_json then cannot write (a 500 later instead of a 400 now).
    with pytest.raises(BadRequest) as caught:
        loads_json(raw)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_json"


@pytest.mark.parametrize("raw", [b"", b"{", b"{'a': 1}", b"[1,]", b"\xff\xfe\x00", b'{"a":1} trailing'])
def test_given_malformed_json_when_loading_then_400_invalid_json(raw: bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        loads_json(raw)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_json"
    assert "not valid JSON" in caught.value.detail


def test_given_nesting_at_the_limit_when_loading_then_it_is_accepted() -> None:
    raw = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    value = loads_json(raw)
    assert isinstance(value, list)
    assert MAX_DEPTH == 64


@pytest.mark.parametrize("raw", ["[" * 65 + "]" * 65, '{"a":' * 65 + "1" + "}" * 65])
def test_given_nesting_past_the_limit_when_loading_then_400_invalid_json(raw: str) -> None:
    with pytest.raises(BadRequest) as caught:
        loads_json(raw)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_json"
    assert "deeper than 64" in caught.value.detail


def test_given_nesting_deep_enough_to_overflow_the_parser_when_loading_then_400_invalid_json() -> None:
    with pytest.raises(BadRequest) as caught:
        loads_json("[" * 200_000 + "]" * 200_000)
    assert caught.value.code == "invalid_json"
    assert "nested too deeply" in caught.value.detail


def test_given_an_integer_longer_than_python_converts_when_loading_then_400_invalid_json() -> None:
    with pytest.raises(BadRequest) as caught:
        loads_json("1" * 5000)
    assert caught.value.code == "invalid_json"
