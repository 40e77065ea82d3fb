"""Header and query parameter rules: `{"remove": [...], "rename": {old: new}, "add": {name: template}}`,
applied in that order (so `add` can set a header that `remove` took away). Names compare without
case for headers; values of `add` are templates rendered as text, and one that renders empty
(a missing value with no `default`) sets nothing."""

from __future__ import annotations

import re
from typing import Any

from functions.routes.logic.transform import templates
from functions.routes.logic.transform.templates import TemplateError, render_text, validate_template
from gateway_core import fields
from gateway_core.errors import BadRequest

_OPERATIONS = frozenset({"add", "remove", "rename"})
_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
MAX_RULES = 50


def validate_rules(rules: dict[str, Any] | None) -> None:
    if rules is None:
        return
    unknown = set(rules) - _OPERATIONS
    if unknown:
        raise TemplateError(f"unknown rule operations: {sorted(unknown)} (known: add, remove, rename)")
    remove, rename, add = rules.get("remove", []), rules.get("rename", {}), rules.get("add", {})
    if not isinstance(remove, list) or not all(isinstance(n, str) for n in remove):
        raise TemplateError("'remove' is a list of names")
    if not isinstance(rename, dict) or not all(isinstance(v, str) for v in rename.values()):
        raise TemplateError("'rename' maps names to names")
    if not isinstance(add, dict) or not all(isinstance(v, str) for v in add.values()):
        raise TemplateError("'add' maps names to text templates")
    names = [*remove, *rename, *rename.values(), *add]
    if len(names) > MAX_RULES:
        raise TemplateError(f"at most {MAX_RULES} rules")
    bad = [n for n in names if not _NAME.fullmatch(n)]
    if bad:
        raise TemplateError(f"not valid names: {bad}")
    for value in add.values():
        validate_template(value)


def secret_references(rules: dict[str, Any] | None) -> frozenset[str]:
    """The secrets the `add` templates of (validated) rules use."""
    return templates.secret_references(list((rules or {}).get("add", {}).values()))


def validate_header_values(rules: dict[str, Any] | None) -> None:
    """Header rules whose text can be a header: an `add` template holding a character no header
    can carry (CR, LF, other controls, past Latin-1 such as U+2028) would render a value that
    splits a header or fails the answer. Query rules may hold any text (it is percent-encoded)."""
    add = rules.get("add") if isinstance(rules, dict) else None
    for name, template in add.items() if isinstance(add, dict) else ():
        if isinstance(template, str) and not fields.VALUE.fullmatch(template):
            raise TemplateError(f"the value for header {name[:60]!r} holds characters a header cannot carry")


def apply_header_rules(
    headers: dict[str, str], rules: dict[str, Any] | None, context: dict[str, Any]
) -> dict[str, str]:
    """Headers (lower-case names) after the rules; a rendered value that could split a header
    (CR, LF, control characters, e.g. from the caller's body) is refused."""
    if not rules:
        return headers
    out = dict(headers)
    for name in rules.get("remove", []):
        out.pop(name.lower(), None)
    for old, new in rules.get("rename", {}).items():
        if old.lower() in out:
            out[new.lower()] = out.pop(old.lower())
    for name, template in rules.get("add", {}).items():
        value = render_text(template, context)
        if _BAD_VALUE.search(value):
            raise BadRequest(f"The value for header {name} would contain control characters.", code="invalid_header")
        if value:
            out[name.lower()] = value
    return out


def apply_query_rules(
    query: dict[str, list[str]], rules: dict[str, Any] | None, context: dict[str, Any]
) -> dict[str, list[str]]:
    if not rules:
        return query
    out = {k: list(v) for k, v in query.items()}
    for name in rules.get("remove", []):
        out.pop(name, None)
    for old, new in rules.get("rename", {}).items():
        if old in out:
            out[new] = out.pop(old)
    for name, template in rules.get("add", {}).items():
        value = render_text(template, context)
        if value:
            out[name] = [value]
    return out
