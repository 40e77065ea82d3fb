"""The `{{ expr | filter }}` template language: functions.routes.logic.transform.templates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from functions.routes.logic.transform.templates import (
    MAX_TEMPLATE_DEPTH,
    TemplateError,
    compile_expression,
    evaluate,
    holds_literal,
    render,
    render_text,
    secret_references,
    text_parts,
    to_text,
    validate_template,
)


class _Secret:
    """An object in the context: templates must never reach its attributes."""

    token = "s3cr3t"

    def __str__(self) -> str:
        return "secret-object"


def _context() -> dict[str, Any]:
    return {
        "body": {
            "amount": Decimal("1234.50"),
            "currency": "eur",
            "payer": {"name": "  Ada Lovelace  ", "iban": "DE89370400440532013000"},
            "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
            "tags": ["vip", "new"],
            "empty": "",
            "zero": 0,
            "no": False,
            "odd key": "spaced",
            "text_amount": " 12.50 ",
        },
        "path": {"id": "acc-42"},
        "query": {"ccy": "EUR"},
        "headers": {"x-partner": "p-1", "content-type": "application/json"},
        "client": {"id": "client-7", "secret": _Secret()},
        "request": {"id": "req-1"},
    }


# --- whole-expression values keep their type ---------------------------------------------------


def test_given_a_whole_expression_when_rendering_then_the_value_keeps_its_type() -> None:
    # Given a template whose strings are exactly one expression each
    template = {
        "amount": "{{ body.amount }}",
        "payer": "{{ body.payer }}",
        "items": "{{ body.items }}",
        "flag": "  {{ body.no }}  ",
        "count": "{{ body.zero }}",
    }
    # When
    out = render(template, _context())
    # Then the Decimal stays a Decimal (same spelling), objects stay objects
    assert out == {
        "amount": Decimal("1234.50"),
        "payer": {"name": "  Ada Lovelace  ", "iban": "DE89370400440532013000"},
        "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
        "flag": False,
        "count": 0,
    }
    assert str(out["amount"]) == "1234.50"


def test_given_expressions_inside_text_when_rendering_then_they_are_interpolated_as_text() -> None:
    context = _context()
    assert render("Pay {{ body.amount }} {{ query.ccy }} to {{ path.id }}", context) == "Pay 1234.50 EUR to acc-42"
    assert render("flag={{ body.no }} n={{ body.missing }}.", context) == "flag=false n=."
    assert render("tags={{ body.tags }}", context) == 'tags=["vip","new"]'
    assert render("{{ body.zero }}{{ body.zero }}", context) == "00"


def test_given_nested_containers_and_plain_values_when_rendering_then_only_strings_are_templated() -> None:
    template = {"a": ["{{ request.id }}", 5, None, True, Decimal("1.10")], "b": {"c": "plain"}}
    assert render(template, _context()) == {"a": ["req-1", 5, None, True, Decimal("1.10")], "b": {"c": "plain"}}


def test_given_text_without_braces_when_rendering_then_it_is_returned_unchanged() -> None:
    assert render("no expressions here", _context()) == "no expressions here"


# --- paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("body.items[0].sku", "A-1"),
        ("body.items[1].qty", 1),
        ("body.items[-1].sku", "B-2"),
        ("body.items[2]", None),
        ("body.items[-3]", None),
        ("body.tags[0]", "vip"),
        ('body["odd key"]', "spaced"),
        ("body['payer']['name']", "  Ada Lovelace  "),
        ("headers.x-partner", "p-1"),
        ("headers.X-Partner", "p-1"),
        ('headers["Content-Type"]', "application/json"),
        ("client.id", "client-7"),
        ("request.id", "req-1"),
        ("query.ccy", "EUR"),
        ("path.id", "acc-42"),
    ],
)
def test_given_a_path_when_evaluating_then_it_finds_the_value(source: str, expected: Any) -> None:
    assert evaluate(source, _context()) == expected


@pytest.mark.parametrize(
    "source",
    [
        "body.missing",
        "body.missing.deeper",
        "body.currency.length",  # a string has no members
        "body.items.sku",  # a list has no named members
        "body.payer[0]",  # an object has no numbered members
        "body.tags[0][0]",  # nor has a string
        "path.ID",  # only header names ignore case
        "query.CCY",
    ],
)
def test_given_a_path_to_nothing_when_evaluating_then_none_and_empty_text(source: str) -> None:
    assert evaluate(source, _context()) is None
    assert render_text("[{{ " + source + " }}]", _context()) == "[]"


def test_given_a_context_without_the_root_when_evaluating_then_none() -> None:
    assert evaluate("body.amount", {}) is None
    assert evaluate("headers.x-partner", {"headers": None}) is None


# --- no way into Python internals -------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "body.__class__",
        "body.__class__.__mro__",
        "body.__dict__",
        "body.items",  # dict.items must not be reached as a method
        "body.keys",
        "body.get",
        "body.currency.upper",
        "body.currency.__class__",
        "body.tags.__len__",
        "client.secret.token",
        "client.secret.__init__",
        "request.__globals__",
    ],
)
def test_given_an_attribute_like_path_when_rendering_then_python_internals_are_unreachable(source: str) -> None:
    context = _context()
    context["body"].pop("items")  # so `body.items` can only be the dict method
    # When evaluated as a value and as text
    value = evaluate(source, context)
    text = render_text("{{ " + source + " }}", context)
    # Then nothing but None / empty text comes out (no class, method or attribute value)
    assert value is None
    assert text == ""


def test_given_an_object_in_the_context_when_reaching_it_whole_then_it_is_only_the_object_itself() -> None:
    # The object itself can be returned (it is a context value), but never its attributes.
    value = evaluate("client.secret", _context())
    assert isinstance(value, _Secret)
    assert render_text("{{ client.secret }}", _context()) == "secret-object"
    assert "s3cr3t" not in render_text("{{ client.secret | json }}{{ client.secret | string }}", _context())


@pytest.mark.parametrize("source", ["__import__", "os.environ", "self", "globals", "context.body", "Body.amount"])
def test_given_an_unknown_root_when_compiling_then_template_error(source: str) -> None:
    with pytest.raises(TemplateError, match="is not one of body, client, headers, path, query, request"):
        compile_expression(source)


# --- literals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('"EUR"', "EUR"),
        ("'single'", "single"),
        ('"with \\"quote\\""', 'with "quote"'),
        ('"a\\nb"', "a\nb"),
        ("12", 12),
        ("-5", -5),
        ("1.50", Decimal("1.50")),
        ("-0.10", Decimal("-0.10")),
        ("true", True),
        ("false", False),
        ("null", None),
    ],
)
def test_given_a_literal_when_evaluating_then_it_has_its_json_type(source: str, expected: Any) -> None:
    value = evaluate(source, {})
    assert value == expected
    assert type(value) is type(expected)


def test_given_a_decimal_literal_when_evaluating_then_its_spelling_is_kept() -> None:
    assert str(evaluate("1.50", {})) == "1.50"


# --- filters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # default: for missing and empty values only
        ('body.missing | default("n/a")', "n/a"),
        ('body.empty | default("n/a")', "n/a"),
        ("body.zero | default(9)", 0),
        ("body.no | default(true)", False),
        ("body.missing | default(1.20)", Decimal("1.20")),
        ("body.missing | default(null)", None),
        ('body.currency | default("x")', "eur"),
        # upper / lower / trim
        ("body.currency | upper", "EUR"),
        ("query.ccy | lower", "eur"),
        ("body.payer.name | trim", "Ada Lovelace"),
        ("body.amount | upper", "1234.50"),
        # string
        ("body.amount | string", "1234.50"),
        ("body.no | string", "false"),
        ("body.tags | string", '["vip","new"]'),
        ("body.zero | string", "0"),
        # number / int
        ("body.text_amount | number", Decimal("12.50")),
        ('"1e3" | number', Decimal("1E+3")),
        ("body.zero | number", Decimal("0")),
        ('"abc" | number', None),
        ('"NaN" | number', None),
        ('"Infinity" | number', None),
        ("body.payer | number", None),
        ('"12.99" | int', 12),
        ('"-3.7" | int', -3),
        ("body.amount | int", 1234),
        ('"x" | int', None),
        # first
        ("body.tags | first", "vip"),
        ("body.items | first", {"sku": "A-1", "qty": 2}),
        ("body.currency | first", "eur"),
        # json
        ("body.payer | json", '{"name":"  Ada Lovelace  ","iban":"DE89370400440532013000"}'),
        ("body.amount | json", "1234.50"),
        ("body.currency | json", '"eur"'),
        ("body.no | json", "false"),
    ],
)
def test_given_a_filter_when_evaluating_then_it_transforms_the_value(source: str, expected: Any) -> None:
    value = evaluate(source, _context())
    assert value == expected
    assert type(value) is type(expected)


def test_given_number_filter_when_evaluating_then_the_decimal_keeps_its_spelling() -> None:
    assert str(evaluate("body.text_amount | number", _context())) == "12.50"


def test_given_first_on_an_empty_list_when_evaluating_then_the_empty_list_comes_back() -> None:
    assert evaluate("body.list | first", {"body": {"list": []}}) == []


@pytest.mark.parametrize("name", ["upper", "lower", "trim", "string", "number", "int", "first", "json"])
def test_given_a_missing_value_when_filtering_then_every_filter_but_default_keeps_none(name: str) -> None:
    assert evaluate(f"body.missing | {name}", _context()) is None


def test_given_a_filter_chain_when_evaluating_then_filters_apply_left_to_right() -> None:
    context = _context()
    assert evaluate('body.missing | default(" usd ") | trim | upper', context) == "USD"
    assert evaluate('body.missing | upper | default("X")', context) == "X"
    assert evaluate("body.tags | first | upper", context) == "VIP"
    assert render("id={{ body.missing | default('none') | upper }}", context) == "id=NONE"


def test_given_whitespace_and_no_whitespace_around_tokens_when_evaluating_then_both_read_the_same() -> None:
    assert evaluate("body.currency|upper", _context()) == "EUR"
    assert evaluate("  body . currency  |  upper  ", _context()) == "EUR"


def test_given_a_huge_exponent_with_int_when_rendering_as_text_then_it_does_not_crash() -> None:
    # Given a caller-controlled string that is a tiny number with a huge exponent
    context = {"body": {"x": "1e5000"}}
    # When / Then: `int` must not build an integer too large to be written (str() raises
    # ValueError past 4300 digits; and `1e3000000` takes minutes of CPU just in int()).
    # Unusable numbers give None, as NaN and Infinity already do.
    assert evaluate("body.x | int", context) is None
    assert render_text("{{ body.x | int }}", context) == ""


# --- validation -----------------------------------------------------------------------------------


def test_given_a_valid_template_when_validating_then_it_passes() -> None:
    template = {
        "amount": "{{ body.amount | number }}",
        "ref": "{{ path.id }}-{{ request.id }}",
        "ccy": '{{ query.ccy | default("EUR") | upper }}',
        "list": ["{{ body.items[0].sku }}", 1, 2.5, Decimal("1.0"), True, None],
        "nested": {"h": "{{ headers.X-Partner | lower }}"},
    }
    validate_template(template)  # no TemplateError
    validate_template(None)  # no TemplateError


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ config.key }}", "is not one of"),
        ("{{ body.a | shout }}", "unknown filter 'shout'"),
        ("{{ body.a | upper(1) }}", "filter 'upper' takes 0 argument"),
        ("{{ body.a | default }}", "filter 'default' takes 1 argument"),
        ("{{ body.a | default() }}", "filter 'default' takes 1 argument"),
        ("{{ body.a | default(1, 2) }}", "filter 'default' takes 1 argument"),
        ("{{ body.a | default(body.b) }}", "filter arguments are literals"),
        ("{{ body.a | default(1 }}", "ends too early"),
        ("{{ body.a", "unbalanced braces"),
        ("{{ body.a }} }}", "unbalanced braces"),
        ("text {{ body.a }} and {{ body.b", "unbalanced braces"),
        ("{{ }}", "an empty"),
        ("{{ body. }}", "ends too early"),
        ("{{ body.0 }}", "unexpected '0'"),
        ("{{ body[1.5] }}", "an index is a whole number or a string"),
        ("{{ body[x] }}", "an index is a whole number or a string"),
        ("{{ body.a b }}", "unexpected 'b'"),
        ("{{ body.a ; rm }}", "cannot read the expression"),
        ("{{ body.a | }}", "ends too early"),
        ("{{ | upper }}", "unexpected '|'"),
        ("{{ body.a + 1 }}", "cannot read the expression"),
        ("{{ body.a() }}", "unexpected '('"),
    ],
)
def test_given_a_bad_expression_when_validating_then_template_error(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_template({"field": template})


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", object(), ("a", "tuple"), 1j])
def test_given_a_value_that_is_not_json_when_validating_then_template_error(value: Any) -> None:
    with pytest.raises(TemplateError, match="a template is JSON"):
        validate_template({"field": value})


def test_given_a_non_string_key_when_validating_then_template_error() -> None:
    with pytest.raises(TemplateError, match="object keys in templates are strings"):
        validate_template({1: "x"})


def test_given_templates_nested_past_the_limit_when_validating_then_template_error() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_TEMPLATE_DEPTH):
        deep = [deep]
    validate_template(deep)  # exactly at the limit
    with pytest.raises(TemplateError, match=f"nested at most {MAX_TEMPLATE_DEPTH} levels"):
        validate_template({"x": deep})


@pytest.mark.parametrize("literal", ['"\\x"', "'\\N{no such name}'", '"\\u12"', '"line\nbreak"'])
def test_given_a_string_literal_python_cannot_read_when_validating_then_template_error(literal: str) -> None:
    # Given string tokens the tokenizer accepts but ast.literal_eval refuses with SyntaxError
    # When / Then validation says TemplateError (a ValueError: 422), never a SyntaxError (500)
    with pytest.raises(TemplateError):
        validate_template({"field": "{{ " + literal + " }}"})


# --- to_text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (Decimal("1.50"), "1.50"),
        (7, "7"),
        ("x", "x"),
        ({"a": Decimal("1.0")}, '{"a":1.0}'),
        ([1, "b"], '[1,"b"]'),
    ],
)
def test_given_a_value_when_writing_it_as_text_then_json_spellings_are_used(value: Any, expected: str) -> None:
    assert to_text(value) == expected


# --- secrets ------------------------------------------------------------------------------------


def test_given_secret_references_anywhere_in_a_template_when_listed_then_each_name_once() -> None:
    template = {
        "auth": "Bearer {{ secrets.orders_token }}",
        "nested": [{"key": "{{ secrets.api-key | trim }}"}, "{{ secrets['orders_token'] }}"],
        "plain": "{{ client.id }}",
        "number": 7,
    }
    assert secret_references(template) == {"orders_token", "api-key"}
    assert secret_references("no {{ headers.x }} secret") == frozenset()


def test_given_secrets_in_the_context_when_rendered_then_the_value_is_used() -> None:
    context = {**_context(), "secrets": {"orders_token": "tok-1"}}
    assert render_text("Bearer {{ secrets.orders_token }}", context) == "Bearer tok-1"
    # A context without secrets (every one but what goes upstream) renders nothing for them.
    assert render_text("Bearer {{ secrets.orders_token }}", _context()) == "Bearer "


@pytest.mark.parametrize(
    "source",
    [
        "secrets",  # the whole collection
        "secrets.a.b",  # below a secret
        "secrets[0]",  # by position
        "secrets.Upper",  # names are lower case
        "secrets._x",  # and start with a letter
        "secrets." + "a" * 65,  # at most 64 characters
    ],
)
def test_given_a_reference_that_is_not_one_secret_by_name_when_compiled_then_template_error(source: str) -> None:
    with pytest.raises(TemplateError, match=r"secrets\.<name>"):
        compile_expression(source)


@pytest.mark.parametrize(
    ("source", "literal"),
    [
        ("secrets.x", False),
        ("headers.x-token | trim", False),
        ('"abc"', True),
        ("12", True),
        ('headers.x | default("abc")', True),
        ("null", True),
    ],
)
def test_given_an_expression_when_asked_then_it_holds_a_literal_only_when_a_value_is_written_in(
    source: str, literal: bool
) -> None:
    assert holds_literal(source) is literal


def test_given_a_text_template_when_split_then_texts_surround_the_expressions() -> None:
    assert text_parts("Bearer {{ secrets.t }}") == (["Bearer ", ""], [" secrets.t "])
    assert text_parts("plain") == (["plain"], [])
