"""Credentials written into a route, and their mask on every read.

Upstream credentials belong in the gateway's secrets (logic/secrets.py: KMS-encrypted, never
returned) and reach a route by reference, `{{ secrets.<name> }}`. A credential written into a route
itself would be returned to every reader of routes, versions and audit hashes, so everything a
route sends upstream is checked: header and query rules, the request body template (a SOAP
route's XML elements are its members), GraphQL variables and the GraphQL document.

* A text is a *literal credential* when, and its value is not made of references alone,
  - its name is a secret name (gateway_core.secret_names, the list log lines are redacted by:
    Authorization, X-Api-Key, Cookie, client_secret, password, pwd, sig, ...; a header or query
    rule's name, or the JSON member holding the text, a list's items taking their member's name),
  - or it reads like an HTTP credential whatever its name (`Bearer ...`, `Basic ...`),
  - or it holds a secret-named value inside it: `client_secret=abc` (a form or query written as
    text), `<wsse:Password>abc</wsse:Password>`, `"apiKey": "abc"`;
  a number under a secret name is one too. Made of references alone: text other than one
  leading scheme word (`Bearer {{ secrets.t }}`) and punctuation, or an expression that carries
  a literal (`{{ "abc" }}`, `default("abc")`), is a literal. In the GraphQL document (not a
  template: it cannot refer to secrets), every string given to a secret-named argument, input
  field or variable default is one.
* Writing one is refused (422, naming where it is, never its value), and so is the mask itself,
  so a route read (masked) and written back cannot replace a stored value with asterisks.
* Reads mask them (the whole text) for every reader, admins included (an admin never needs the
  literal back: it should move into a secret), and mask credentials in upstream URLs
  (user:password@, secret-named query values), which the SSRF guard refuses on write but older
  routes may hold.

Masking is what a route's JSON *is* (route_spec.py serializes through it); only storage asks for
the stored values (`UNMASKED`), so a new read of routes cannot forget it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from functions.routes.logic.transform.templates import TemplateError, holds_literal, text_parts
from gateway_core.secret_names import is_secret_name, secret_spans

MASK = "********"
# The serialization context of the stored (unmasked) form: dal/ writes and publishes with it.
UNMASKED: dict[str, Any] = {"unmasked": True}
# A value that reads like an HTTP credential whatever its header is called.
_CREDENTIAL_VALUE = re.compile(r"^\s*(bearer|basic|digest|token|apikey|hmac|negotiate|ntlm|ssws)\s+\S", re.I)
_SCHEME = re.compile(r"^\s*[A-Za-z][A-Za-z0-9._~+/-]*\s+$")
_ALPHANUMERIC = re.compile(r"[A-Za-z0-9]")
# Stands for an expression while a text is searched for `name=value` pairs and elements: a
# character no template holds (the private use area), so an expression's own text is never read.
_EXPRESSION = "\ue000"
# Templates are at most 20 deep when written (templates.MAX_TEMPLATE_DEPTH); a stored one deeper
# than this is masked whole rather than walked.
_MAX_DEPTH = 64
# GraphQL: `name: "string"` (an argument or input field) and `$name: Type = "string"` (a
# variable's default), strings plain or block.
_GRAPHQL_STRING = r"(\"\"\"(?:[^\"\\]|\\.|\"(?!\"\"))*\"\"\"|\"(?:[^\"\\\n]|\\.)*\")"
_GRAPHQL_LITERALS = re.compile(
    r"(?<![\w$])([_A-Za-z][_0-9A-Za-z]*)\s*:\s*"
    + _GRAPHQL_STRING
    + r"|\$([_A-Za-z][_0-9A-Za-z]*)\s*:\s*[_A-Za-z0-9!\[\]\s]+?=\s*"
    + _GRAPHQL_STRING
)


def unmasked(context: Any) -> bool:
    """Whether a serialization asked for the stored values (`UNMASKED`)."""
    return isinstance(context, dict) and bool(context.get("unmasked"))


def _references_only(template: str, scheme: bool = True) -> bool:
    texts, expressions = text_parts(template)
    if not expressions:
        return False
    try:
        if any(holds_literal(source) for source in expressions):
            return False
    except TemplateError:
        return False  # not a template that compiles: its own check says so
    first = texts[0]
    if scheme and _SCHEME.match(first):
        first = ""  # `Bearer {{ ... }}`: the scheme word is not the credential
    return not _ALPHANUMERIC.search(first + "".join(texts[1:]))


def _literal_inside(template: str) -> bool:
    """Whether the text holds a secret-named value written into it (`client_secret=abc`,
    `<Password>abc</Password>`), expressions aside (`client_secret={{ secrets.cs }}` is none)."""
    texts, expressions = text_parts(template)
    marked = _EXPRESSION.join(t.replace(_EXPRESSION, "\ufffd") for t in texts)
    for start, end in secret_spans(marked):
        fragment = marked[start:end]
        if not fragment.strip():
            continue
        first = marked.count(_EXPRESSION, 0, start)
        pieces = fragment.split(_EXPRESSION)
        sources = expressions[first : first + len(pieces) - 1]
        rebuilt = pieces[0] + "".join("{{" + s + "}}" + p for s, p in zip(sources, pieces[1:], strict=True))
        if not _references_only(rebuilt, scheme=False):
            return True
    return False


def literal_credential(name: str | None, template: str, *, member: bool = False) -> bool:
    """Whether a text sends a credential written into the route (or its mask): a rule
    `name: template`, or a template string under the JSON member `name` (`member=True`)."""
    if MASK in template:
        return True
    if not template.strip():
        return False  # renders empty: sets nothing
    named = (name is not None and is_secret_name(name, member=member)) or _CREDENTIAL_VALUE.match(template)
    return bool(named and not _references_only(template)) or _literal_inside(template)


def _literal_scalar(name: str | None, value: Any) -> bool:
    if isinstance(value, str):
        return literal_credential(name, value, member=True)
    if isinstance(value, bool) or value is None:
        return False
    return isinstance(value, int | float | Decimal) and name is not None and is_secret_name(name, member=True)


def _walk(template: Any, name: str | None, path: str, depth: int, visit: Callable[[str, Any], Any]) -> Any:
    """The template rebuilt with `visit(path, value)` in place of each literal credential."""
    if depth > _MAX_DEPTH:
        return visit(path, template)
    if isinstance(template, dict):
        return {
            key: _walk(value, str(key), f"{path}.{key}" if path else str(key), depth + 1, visit)
            for key, value in template.items()
        }
    if isinstance(template, list):
        # A list's items are its member's: `"api_keys": ["k1", "k2"]`.
        return [_walk(value, name, f"{path}[{i}]", depth + 1, visit) for i, value in enumerate(template)]
    return visit(path, template) if _literal_scalar(name, template) else template


def template_literals(template: Any) -> list[str]:
    """Where a body template or GraphQL variables hold a literal credential (`auth.password`,
    `api_keys[0]`; `(the template)` for a template that is one text)."""
    found: list[str] = []

    def note(path: str, value: Any) -> Any:
        found.append(path or "(the template)")
        return value

    _walk(template, None, "", 0, note)
    return found


def mask_template(template: Any) -> Any:
    """The template with each literal credential replaced by the mask (the original left alone)."""
    if template is None or not template_literals(template):
        return template
    return _walk(template, None, "", 0, lambda _path, _value: MASK)


def _graphql_literals(document: str) -> list[tuple[str, int, int]]:
    """(name, start, end) of each string written into the document for a secret-named argument,
    input field or variable default (the span inside the quotes)."""
    found = []
    for match in _GRAPHQL_LITERALS.finditer(document):
        name, group = (match.group(1), 2) if match.group(1) is not None else (match.group(3), 4)
        quotes = 3 if match.group(group).startswith('"""') else 1
        start, end = match.start(group) + quotes, match.end(group) - quotes
        if is_secret_name(name, member=True) and document[start:end].strip():
            found.append((name, start, end))
    return found


def graphql_literals(document: str) -> list[str]:
    """The secret-named arguments, input fields and variables given a string in the document."""
    names = [name for name, _, _ in _graphql_literals(document)]
    return [*names, "(the mask)"] if MASK in document and not names else names


def mask_graphql(document: str) -> str:
    found = _graphql_literals(document)
    for _, start, end in reversed(found):
        document = document[:start] + MASK + document[end:]
    return document


def literal_credentials(rules: dict[str, Any] | None) -> list[str]:
    """The names of the `add` rules that hold a literal credential."""
    added = (rules or {}).get("add")
    if not isinstance(added, dict):
        return []
    return [name for name, value in added.items() if isinstance(value, str) and literal_credential(name, value)]


def refuse_literal_credentials(places: dict[str, list[str]]) -> None:
    """A ValueError (422 at the API) naming where each literal credential is, never its value;
    `places` maps a part of the route (e.g. `request_transform.headers`) to what
    literal_credentials, template_literals or graphql_literals found there."""
    found = [f"{where}: {', '.join(names)}" for where, names in places.items() if names]
    if found:
        raise ValueError(
            f"credentials are written into the route ({'; '.join(found)}); set them as secrets of the "
            "gateway (PUT /api/v1/gateways/{id}/secrets/{name}) and refer to them, e.g. "
            "'Bearer {{ secrets.<name> }}'"
        )


def mask_rules(rules: dict[str, Any] | None) -> dict[str, Any] | None:
    """The rules with each literal credential's value replaced by the mask."""
    found = literal_credentials(rules)
    if rules is None or not found:
        return rules
    added = {name: (MASK if name in found else value) for name, value in rules["add"].items()}
    return {**rules, "add": added}


def mask_url(url: str) -> str:
    """The URL with its user information and secret-named query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK  # not a URL we can read: nothing of it is shown
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_name(k) for k, _ in pairs):
            query = urlencode([(k, MASK if is_secret_name(k) else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
