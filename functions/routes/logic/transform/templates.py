"""Templates for transformation rules: JSON documents whose strings may hold `{{ expression }}`.

An expression is a path into the request context (`body.amount`, `path.id`, `query.ccy`,
`headers.x-partner`, `client.id`, `request.id`, `body.items[0].sku`) or a literal (`"EUR"`, `12`,
`true`, `null`), followed by filters: `default(x)`, `upper`, `lower`, `trim`, `string`, `number`,
`int`, `first`, `json`. A string that is exactly one expression becomes the value itself, with its
type (a Decimal stays a number, an object stays an object); an expression inside other text is
rendered as text. Nothing is evaluated beyond this: no attribute access on Python objects, no
calls, no loops, so an admin's template cannot run code.

`secrets.<name>` is one of the gateway's upstream secrets (logic/secrets.py): the proxy puts them
only into the context of what goes upstream, and a route may name them only there.

Why not Jinja2: it renders text, and a body mapping must keep types (money as exact numbers,
objects as objects); its sandbox is also far more surface than these few paths and filters need.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from functions.routes.logic.transform.jsonio import MAX_EXPONENT, dumps_json

ROOTS = frozenset({"body", "path", "query", "headers", "client", "request", "secrets"})
# A secret's name, as `PUT .../secrets/{name}` takes it and `{{ secrets.<name> }}` refers to it.
SECRET_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_WHOLE = re.compile(r"^\s*\{\{(.*?)\}\}\s*$", re.S)
_INLINE = re.compile(r"\{\{(.*?)\}\}", re.S)
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
      | (?P<punct>[.\[\]|(),])
    )""",
    re.X,
)
MAX_TEMPLATE_DEPTH = 20


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class _Filter:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class _Expression:
    literal: Any
    path: tuple[str | int, ...] | None  # None: a literal
    filters: tuple[_Filter, ...]


_FILTERS = {"default": 1, "upper": 0, "lower": 0, "trim": 0, "string": 0, "number": 0, "int": 0, "first": 0, "json": 0}


def _tokens(source: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    source = source.rstrip()
    while position < len(source):
        match = _TOKEN.match(source, position)
        if not match or match.end() == position:
            raise TemplateError(f"cannot read the expression at '{source[position:].strip()[:20]}'")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


def _literal(kind: str, text: str) -> Any:
    if kind == "string":
        try:
            value = ast.literal_eval(text)  # only ever a string token matched by _TOKEN
        except (SyntaxError, ValueError) as error:
            raise TemplateError(f"cannot read the string {text[:40]}") from error
        return str(value)
    if kind == "number":
        return Decimal(text) if "." in text else int(text)
    return {"true": True, "false": False, "null": None}[text]


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> _Expression:
    """Parse one expression (the text between `{{` and `}}`); TemplateError says what is wrong."""
    tokens = _tokens(source)
    if not tokens:
        raise TemplateError("an empty {{ }}")
    i = 0

    def take(kind: str | None = None, text: str | None = None) -> tuple[str, str]:
        nonlocal i
        if i >= len(tokens):
            raise TemplateError(f"the expression '{source.strip()}' ends too early")
        token = tokens[i]
        if (kind and token[0] != kind) or (text and token[1] != text):
            raise TemplateError(f"unexpected '{token[1]}' in '{source.strip()}'")
        i += 1
        return token

    def literal_arg() -> Any:
        kind, text = take()
        if kind in ("string", "number") or (kind == "name" and text in ("true", "false", "null")):
            return _literal(kind, text)
        raise TemplateError(f"filter arguments are literals, not '{text}'")

    kind, text = take()
    literal: Any = None
    path: tuple[str | int, ...] | None = None
    if kind in ("string", "number") or (kind == "name" and text in ("true", "false", "null")):
        literal = _literal(kind, text)
    elif kind == "name":
        if text not in ROOTS:
            raise TemplateError(f"'{text}' is not one of {', '.join(sorted(ROOTS))}")
        parts: list[str | int] = [text]
        while i < len(tokens) and tokens[i][1] in (".", "["):
            if take()[1] == ".":
                parts.append(take("name")[1])
            else:
                index_kind, index = take()
                if index_kind == "number" and "." not in index:
                    parts.append(int(index))
                elif index_kind == "string":
                    parts.append(str(_literal(index_kind, index)))
                else:
                    raise TemplateError(f"an index is a whole number or a string, not '{index}'")
                take("punct", "]")
        path = tuple(parts)
        if text == "secrets" and not (
            len(parts) == 2 and isinstance(parts[1], str) and SECRET_NAME.fullmatch(parts[1])
        ):
            raise TemplateError(
                "a secret is referred to as secrets.<name> (lower-case letters, digits, '_' and '-', "
                "starting with a letter)"
            )
    else:
        raise TemplateError(f"unexpected '{text}' in '{source.strip()}'")
    filters: list[_Filter] = []
    while i < len(tokens):
        take("punct", "|")
        name = take("name")[1]
        if name not in _FILTERS:
            raise TemplateError(f"unknown filter '{name}' (known: {', '.join(sorted(_FILTERS))})")
        args: list[Any] = []
        if i < len(tokens) and tokens[i][1] == "(":
            take()
            while tokens[i:] and tokens[i][1] != ")":
                args.append(literal_arg())
                if tokens[i:] and tokens[i][1] == ",":
                    take()
            take("punct", ")")
        if len(args) != _FILTERS[name]:
            raise TemplateError(f"filter '{name}' takes {_FILTERS[name]} argument(s)")
        filters.append(_Filter(name, tuple(args)))
    return _Expression(literal, path, tuple(filters))


def _lookup(context: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    value: Any = context
    for index, part in enumerate(path):
        if isinstance(value, dict):
            key = part.lower() if index == 1 and path[0] == "headers" and isinstance(part, str) else part
            value = value.get(key) if isinstance(key, str) else None
        elif isinstance(value, list) and isinstance(part, int):
            value = value[part] if -len(value) <= part < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def _apply(value: Any, item: _Filter) -> Any:
    name = item.name
    if name == "default":
        return item.args[0] if value is None or value == "" else value
    if value is None:
        return None
    if name in ("upper", "lower", "trim"):
        text = to_text(value)
        return text.upper() if name == "upper" else text.lower() if name == "lower" else text.strip()
    if name == "string":
        return to_text(value)
    if name in ("number", "int"):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        if not number.is_finite() or abs(number.adjusted()) > MAX_EXPONENT:
            return None  # not a number we can use (and `int` of 1e3000000 would take minutes)
        return int(number) if name == "int" else number
    if name == "first":
        return value[0] if isinstance(value, list) and value else value
    return dumps_json(value).decode()  # json


def evaluate(source: str, context: dict[str, Any]) -> Any:
    expression = compile_expression(source)
    value = expression.literal if expression.path is None else _lookup(context, expression.path)
    for item in expression.filters:
        value = _apply(value, item)
    return value


def to_text(value: Any) -> str:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return dumps_json(value).decode()
    return str(value)


def render_text(template: str, context: dict[str, Any]) -> str:
    return _INLINE.sub(lambda m: to_text(evaluate(m.group(1), context)), template)


def render(template: Any, context: dict[str, Any]) -> Any:
    """The template with every expression replaced by its value (see the module docstring)."""
    if isinstance(template, str):
        whole = _WHOLE.match(template)
        if whole and "{{" not in whole.group(1):
            return evaluate(whole.group(1), context)
        return render_text(template, context) if "{{" in template else template
    if isinstance(template, dict):
        return {key: render(value, context) for key, value in template.items()}
    if isinstance(template, list):
        return [render(value, context) for value in template]
    return template


def validate_template(template: Any, depth: int = 0) -> None:
    """TemplateError (a ValueError: 422 at the API) for any expression that does not compile."""
    if depth > MAX_TEMPLATE_DEPTH:
        raise TemplateError(f"templates are nested at most {MAX_TEMPLATE_DEPTH} levels")
    if isinstance(template, str):
        if template.count("{{") != template.count("}}"):
            raise TemplateError(f"unbalanced braces in '{template[:60]}'")
        for match in _INLINE.finditer(template):
            compile_expression(match.group(1))
    elif isinstance(template, dict):
        for key, value in template.items():
            if not isinstance(key, str):
                raise TemplateError("object keys in templates are strings")
            validate_template(value, depth + 1)
    elif isinstance(template, list):
        for value in template:
            validate_template(value, depth + 1)
    elif template is not None and not isinstance(template, bool | int | float | Decimal):
        raise TemplateError("a template is JSON")


def _expressions(template: Any, depth: int = 0) -> list[_Expression]:
    if depth > MAX_TEMPLATE_DEPTH:
        raise TemplateError(f"templates are nested at most {MAX_TEMPLATE_DEPTH} levels")
    if isinstance(template, str):
        return [compile_expression(m.group(1)) for m in _INLINE.finditer(template)]
    if isinstance(template, dict):
        return [e for value in template.values() for e in _expressions(value, depth + 1)]
    if isinstance(template, list):
        return [e for value in template for e in _expressions(value, depth + 1)]
    return []


def secret_references(template: Any) -> frozenset[str]:
    """The names of the secrets a template uses (`{{ secrets.<name> }}`)."""
    return frozenset(str(e.path[1]) for e in _expressions(template) if e.path is not None and e.path[0] == "secrets")


def body_reads(template: Any) -> list[tuple[str | int, ...]]:
    """The fields of the request body a template needs (paths below `body`; `()` for the whole
    body), in order: every `body` expression without a `default` filter, which is how a template
    says a field is optional."""
    found: list[tuple[str | int, ...]] = []
    for expression in _expressions(template):
        path = expression.path
        optional = any(f.name == "default" for f in expression.filters)
        if path and path[0] == "body" and not optional and path[1:] not in found:
            found.append(path[1:])
    return found


def missing_fields(body: Any, reads: list[tuple[str | int, ...]]) -> list[str]:
    """The JSON paths (`$.payee.iban`, `$.items[0].sku`) of the fields in `reads` the body lacks.
    A member sent as null is there: the caller said so."""
    missing: list[str] = []
    for path in reads:
        value: Any = body
        for part in path:
            in_object = isinstance(value, dict) and isinstance(part, str) and part in value
            in_array = isinstance(value, list) and isinstance(part, int) and -len(value) <= part < len(value)
            if in_object or in_array:
                value = value[part]
            else:
                missing.append(json_path(path))
                break
    return missing


def json_path(path: tuple[str | int, ...]) -> str:
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f".{part}"
        else:
            out += "[" + dumps_json(part).decode() + "]"
    return out


def holds_literal(source: str) -> bool:
    """Whether an expression carries a value written into it: a literal (`{{ "abc" }}`) or a
    filter argument (`default("abc")`), rather than only a path into the context."""
    expression = compile_expression(source)
    return expression.path is None or any(f.args for f in expression.filters)


def text_parts(template: str) -> tuple[list[str], list[str]]:
    """A text template split into its literal text (one more piece than expressions: before,
    between and after them) and the sources of its expressions."""
    pieces = _INLINE.split(template)
    return pieces[0::2], pieces[1::2]
