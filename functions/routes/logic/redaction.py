"""Credentials written into a route, and their mask on every read.

Upstream credentials belong in the gateway's secrets (logic/secrets.py: KMS-encrypted, never
returned) and reach a route by reference, `{{ secrets.<name> }}`. A credential written into a route
itself would be returned to every reader of routes, versions and audit hashes, so:

* a header or query rule is a *literal credential* when its name looks like one (Authorization,
  X-Api-Key, Cookie, anything with token, secret, key, password, signature, auth, ...) or its value
  reads like one (`Bearer ...`, `Basic ...`), and its value is not made of references alone: text
  other than one leading scheme word (`Bearer {{ secrets.t }}`) and punctuation, or an expression
  that carries a literal (`{{ "abc" }}`, `default("abc")`), is a literal;
* writing one is refused (422, with the rule's name and never its value), and so is the mask
  itself, so a route read (masked) and written back cannot replace a stored value with asterisks;
* reads mask them for every reader, admins included (an admin never needs the literal back: it
  should move into a secret), and mask credentials in upstream URLs (user:password@, secret-looking
  query values), which the SSRF guard refuses on write but older routes may hold.

Masking is what a route's JSON *is* (route_spec.py serializes through it); only storage asks for
the stored values (`UNMASKED`), so a new read of routes cannot forget it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from functions.routes.logic.transform.templates import TemplateError, holds_literal, text_parts

MASK = "********"
# The serialization context of the stored (unmasked) form: dal/ writes and publishes with it.
UNMASKED: dict[str, Any] = {"unmasked": True}
CREDENTIAL_NAME = re.compile(
    r"auth|token|secret|key|passw|pwd|signature|cookie|credential|session|bearer|private", re.I
)
# A value that reads like an HTTP credential whatever its header is called.
_CREDENTIAL_VALUE = re.compile(r"^\s*(bearer|basic|digest|token|apikey|hmac|negotiate|ntlm|ssws)\s+\S", re.I)
_SCHEME = re.compile(r"^\s*[A-Za-z][A-Za-z0-9._~+/-]*\s+$")
_ALPHANUMERIC = re.compile(r"[A-Za-z0-9]")


def unmasked(context: Any) -> bool:
    """Whether a serialization asked for the stored values (`UNMASKED`)."""
    return isinstance(context, dict) and bool(context.get("unmasked"))


def _references_only(template: str) -> bool:
    texts, expressions = text_parts(template)
    if not expressions:
        return False
    try:
        if any(holds_literal(source) for source in expressions):
            return False
    except TemplateError:
        return False  # not a template that compiles: its own check says so
    first = texts[0]
    if _SCHEME.match(first):
        first = ""  # `Bearer {{ ... }}`: the scheme word is not the credential
    return not _ALPHANUMERIC.search(first + "".join(texts[1:]))


def literal_credential(name: str, template: str) -> bool:
    """Whether a rule `name: template` sends a credential written into the route (or its mask)."""
    if MASK in template:
        return True
    if not template.strip():
        return False  # renders empty: sets nothing
    if not (CREDENTIAL_NAME.search(name) or _CREDENTIAL_VALUE.match(template)):
        return False
    return not _references_only(template)


def literal_credentials(rules: dict[str, Any] | None) -> list[str]:
    """The names of the `add` rules that hold a literal credential."""
    added = (rules or {}).get("add")
    if not isinstance(added, dict):
        return []
    return [name for name, value in added.items() if isinstance(value, str) and literal_credential(name, value)]


def refuse_literal_credentials(places: dict[str, dict[str, Any] | None]) -> None:
    """A ValueError (422 at the API) naming each rule that holds one, never its value; `places`
    maps where rules are (e.g. `request_transform.headers`) to the rules."""
    found = [f"{where}: {', '.join(names)}" for where, rules in places.items() if (names := literal_credentials(rules))]
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
    """The URL with its user information and secret-looking query values masked."""
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
        if any(CREDENTIAL_NAME.search(k) for k, _ in pairs):
            query = urlencode([(k, MASK if CREDENTIAL_NAME.search(k) else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
