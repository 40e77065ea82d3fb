"""Header and query rules (remove, rename, add): functions.routes.logic.transform.rules."""

from __future__ import annotations

from typing import Any

import pytest

from functions.routes.logic.transform.rules import (
    MAX_RULES,
    apply_header_rules,
    apply_query_rules,
    validate_rules,
)
from functions.routes.logic.transform.templates import TemplateError
from gateway_core.errors import BadRequest


def _context(**body: Any) -> dict[str, Any]:
    return {
        "body": body,
        "client": {"id": "client-7"},
        "request": {"id": "req-1"},
        "headers": {"x-partner": "p-1"},
        "path": {},
        "query": {},
    }


# --- headers --------------------------------------------------------------------------------------


def test_given_all_operations_when_applying_header_rules_then_remove_rename_add_run_in_that_order() -> None:
    # Given a header that is removed, one renamed onto the removed name, and one added
    headers = {"x-old": "1", "x-legacy": "2", "keep": "k"}
    rules = {
        "remove": ["X-Old"],
        "rename": {"X-Legacy": "X-Old"},
        "add": {"X-Client": "{{ client.id }}", "X-Ref": "ref-{{ request.id }}"},
    }
    # When
    out = apply_header_rules(headers, rules, _context())
    # Then the renamed value survives the earlier remove, names are lower-case
    assert out == {"keep": "k", "x-old": "2", "x-client": "client-7", "x-ref": "ref-req-1"}


def test_given_add_for_a_removed_header_when_applying_then_add_sets_it_again() -> None:
    headers = {"x-partner": "spoofed-by-caller"}
    rules = {"remove": ["x-partner"], "add": {"X-Partner": "{{ client.id }}"}}
    assert apply_header_rules(headers, rules, _context()) == {"x-partner": "client-7"}


def test_given_rename_after_remove_of_the_source_when_applying_then_nothing_is_renamed() -> None:
    headers = {"x-a": "1"}
    rules = {"remove": ["X-A"], "rename": {"X-A": "X-B"}}
    assert apply_header_rules(headers, rules, _context()) == {}


def test_given_rules_in_mixed_case_when_applying_then_header_names_compare_without_case() -> None:
    headers = {"authorization": "Bearer x", "x-trace": "t"}
    rules = {"remove": ["AUTHORIZATION"], "rename": {"X-TRACE": "X-Upstream-Trace"}}
    assert apply_header_rules(headers, rules, _context()) == {"x-upstream-trace": "t"}


def test_given_add_for_an_existing_header_when_applying_then_the_value_is_replaced() -> None:
    out = apply_header_rules({"x-partner": "old"}, {"add": {"X-PARTNER": "new"}}, _context())
    assert out == {"x-partner": "new"}


def test_given_a_template_rendering_empty_when_adding_then_no_empty_header_is_set() -> None:
    out = apply_header_rules({}, {"add": {"X-Missing": "{{ body.missing }}"}}, _context())
    assert out == {}


def test_given_a_typed_value_when_adding_then_it_is_rendered_as_text() -> None:
    out = apply_header_rules(
        {}, {"add": {"X-Flag": "{{ body.flag }}", "X-Obj": "{{ body.obj }}"}}, _context(flag=True, obj={"a": 1})
    )
    assert out == {"x-flag": "true", "x-obj": '{"a":1}'}


def test_given_rules_when_applying_then_the_input_headers_are_not_mutated() -> None:
    headers = {"x-a": "1"}
    apply_header_rules(headers, {"remove": ["x-a"], "add": {"x-b": "2"}}, _context())
    assert headers == {"x-a": "1"}


@pytest.mark.parametrize("rules", [None, {}])
def test_given_no_rules_when_applying_then_the_headers_come_back_unchanged(rules: Any) -> None:
    headers = {"x-a": "1"}
    assert apply_header_rules(headers, rules, _context()) == {"x-a": "1"}


@pytest.mark.parametrize(
    "evil",
    ["ok\r\nX-Evil: 1", "ok\nX-Evil: 1", "ok\rX-Evil: 1", "nul\x00byte", "del\x7f", "bell\x07", "esc\x1b[0m"],
)
def test_given_a_body_value_with_control_characters_when_adding_a_header_then_400_invalid_header(evil: str) -> None:
    # Given a header template fed by the caller's body
    rules = {"add": {"X-Memo": "memo: {{ body.memo }}"}}
    # When / Then the header cannot be split or smuggled
    with pytest.raises(BadRequest) as caught:
        apply_header_rules({}, rules, _context(memo=evil))
    assert caught.value.status == 400
    assert caught.value.code == "invalid_header"
    assert "X-Memo" in caught.value.detail


def test_given_a_tab_in_a_value_when_adding_a_header_then_it_is_allowed() -> None:
    out = apply_header_rules({}, {"add": {"X-Memo": "{{ body.memo }}"}}, _context(memo="a\tb"))
    assert out == {"x-memo": "a\tb"}


# --- query ----------------------------------------------------------------------------------------


def test_given_all_operations_when_applying_query_rules_then_remove_rename_add_run_in_that_order() -> None:
    query = {"debug": ["1"], "ccy": ["EUR", "USD"], "page": ["2"]}
    rules = {"remove": ["debug"], "rename": {"ccy": "currency"}, "add": {"debug": "off", "client": "{{ client.id }}"}}
    out = apply_query_rules(query, rules, _context())
    assert out == {"page": ["2"], "currency": ["EUR", "USD"], "debug": ["off"], "client": ["client-7"]}


def test_given_query_names_when_applying_rules_then_they_compare_with_case() -> None:
    query = {"CCY": ["EUR"]}
    out = apply_query_rules(query, {"remove": ["ccy"], "rename": {"ccy": "currency"}}, _context())
    assert out == {"CCY": ["EUR"]}


def test_given_add_for_an_existing_parameter_when_applying_then_it_replaces_all_its_values() -> None:
    out = apply_query_rules({"ccy": ["EUR", "USD"]}, {"add": {"ccy": "GBP"}}, _context())
    assert out == {"ccy": ["GBP"]}


def test_given_query_rules_when_applying_then_the_input_lists_are_not_mutated() -> None:
    query = {"ccy": ["EUR"]}
    out = apply_query_rules(query, {"rename": {"ccy": "c"}}, _context())
    out["c"].append("X")
    assert query == {"ccy": ["EUR"]}


def test_given_a_query_template_rendering_empty_when_adding_then_no_parameter_is_set() -> None:
    assert apply_query_rules({}, {"add": {"x": "{{ body.nothing }}"}}, _context()) == {}


@pytest.mark.parametrize("rules", [None, {}])
def test_given_no_query_rules_when_applying_then_the_query_comes_back_unchanged(rules: Any) -> None:
    assert apply_query_rules({"a": ["1"]}, rules, _context()) == {"a": ["1"]}


# --- validation -----------------------------------------------------------------------------------


def test_given_valid_rules_when_validating_then_they_pass() -> None:
    rules = {
        "remove": ["Authorization", "x-debug"],
        "rename": {"X-Old": "X-New"},
        "add": {"X-Client": "{{ client.id }}", "X-Static": "v1", "x~weird!#$%&'*+.^_`|": "ok"},
    }
    validate_rules(rules)  # no TemplateError
    validate_rules(None)  # no TemplateError
    validate_rules({})  # no TemplateError


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"delete": ["x"]}, "unknown rule operations: \\['delete'\\]"),
        ({"add": {}, "set": {}, "drop": []}, "unknown rule operations: \\['drop', 'set'\\]"),
        ({"remove": "x-a"}, "'remove' is a list of names"),
        ({"remove": ["x-a", 1]}, "'remove' is a list of names"),
        ({"rename": ["x-a"]}, "'rename' maps names to names"),
        ({"rename": {"x-a": 1}}, "'rename' maps names to names"),
        ({"add": ["x-a"]}, "'add' maps names to text templates"),
        ({"add": {"x-a": {"nested": "x"}}}, "'add' maps names to text templates"),
        ({"add": {"x-a": 5}}, "'add' maps names to text templates"),
        ({"remove": ["bad name"]}, "not valid names"),
        ({"remove": [""]}, "not valid names"),
        ({"rename": {"x-a": "x:b"}}, "not valid names"),
        ({"rename": {"x(a)": "x-b"}}, "not valid names"),
        ({"add": {"X-Évil": "1"}}, "not valid names"),
        ({"add": {"x" * 129: "1"}}, "not valid names"),
        ({"add": {"X-Evil\r\nX-Other": "1"}}, "not valid names"),
        ({"add": {"X-A": "{{ body.a | nope }}"}}, "unknown filter 'nope'"),
        ({"add": {"X-A": "{{ os.environ }}"}}, "is not one of"),
        ({"add": {"X-A": "{{ body.a"}}, "unbalanced braces"),
    ],
)
def test_given_bad_rules_when_validating_then_template_error(rules: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        validate_rules(rules)


def test_given_a_name_of_exactly_128_characters_when_validating_then_it_passes() -> None:
    validate_rules({"add": {"x" * 128: "1"}})  # no TemplateError


@pytest.mark.parametrize("name", ["X-Evil\n", "x-evil\n"])
def test_given_a_name_ending_in_a_newline_when_validating_then_template_error(name: str) -> None:
    # Given a header/parameter name with a trailing LF: `$` in the name pattern matches before it
    # When / Then it is refused like any other name with a control character
    with pytest.raises(TemplateError, match="not valid names"):
        validate_rules({"add": {name: "1"}})
    with pytest.raises(TemplateError, match="not valid names"):
        validate_rules({"remove": [name]})


def test_given_more_than_the_maximum_rules_when_validating_then_template_error() -> None:
    at_limit = {"remove": [f"x-{i}" for i in range(MAX_RULES)]}
    validate_rules(at_limit)  # no TemplateError
    # rename counts twice (old and new name)
    over = {"remove": [f"x-{i}" for i in range(MAX_RULES - 1)], "rename": {"a": "b"}}
    with pytest.raises(TemplateError, match=f"at most {MAX_RULES} rules"):
        validate_rules(over)
