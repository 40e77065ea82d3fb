"""Which names hold secrets, and where their values stand in a text: the one definition behind the
literal credentials a route may not hold (functions/routes/logic/redaction.py: refused on write,
masked on read) and the values a log line never shows (gateway_core/logs.py), so the two cannot
drift apart (tests/unit/test_secret_names.py holds them to each other).

A name (a header, a query parameter, a JSON member, an XML element, the name of `name=value`) is
read as words: percent-escapes decoded, split at `-`, `_`, `.`, spaces and camelCase humps, lower
case (`X-Api-Key`, `api%5Fkey` and `apiKey` all end in `api`, `key`). Its LAST word decides, so a
name that describes a secret is not one (`token_type`, `key_id`, `secret_name`,
`signature_method`, `tokens_used`), nor is a word that merely contains one (`monkey`, `keyword`,
`author`, `bypass`). It names a secret when

* its last word is in SECRET_WORDS (`access_token`, `X-Client-Secret`, `dbPassword`, `pwd`,
  `pass`, `X-Amz-Signature`, `sig`, `Proxy-Authorization`, `Set-Cookie`, `client_assertion`),
  except `token` after a word of PAGING (`next_token`, `page_token` are places in a list);
* its last word is `key`/`keys` after any word but those of NOT_SECRET_KEYS (`api_key`,
  `X-Api-Key`, `private_key`, `aws_secret_access_key`; not `idempotency_key`, `public_key`,
  `sort_key`, `partition_key`, `cache_key`);
* its last word is `code` after a word of SECRET_CODES (`auth_code`, `authorization_code`,
  `security_code`; not `country_code`, `currency_code`, `error_code`, `sort_code`);
* it is `session_id` (a session identifier is the session's credential);
* it is `key` or `code` alone, as a parameter or a header (`?key=` is Google's API key, `?code=`
  OAuth's authorization code and Azure Functions' function key), but not as a JSON member, an XML
  element or a GraphQL argument (`member=True`): there they name look-ups, currencies, countries
  and errors far more often than credentials.

Personal data (card numbers, IBANs, PINs) is not in this list: what the request log keeps of a
caller's request is masked by a wider rule of its own (functions/routes/logic/request_log.py).
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote

SECRET_WORDS = frozenset(
    {
        "token",
        "secret",
        "secrets",
        "password",
        "passwords",
        "passwd",
        "passphrase",
        "passcode",
        "pwd",
        "pass",
        "otp",
        "signature",
        "sig",
        "hmac",
        "credential",
        "credentials",
        "authorization",
        "auth",
        "bearer",
        "cookie",
        "apikey",
        "sessionid",
        "assertion",
        "jwt",
    }
)
PAGING = frozenset({"next", "page", "pagination", "continuation", "cursor"})
NOT_SECRET_KEYS = frozenset(
    {
        "public",
        "idempotency",
        "sort",
        "partition",
        "primary",
        "foreign",
        "hash",
        "range",
        "row",
        "cache",
        "routing",
        "dedup",
        "deduplication",
        "lookup",
        "object",
        "group",
        "correlation",
        "composite",
        "natural",
        "surrogate",
        "unique",
    }
)
SECRET_CODES = frozenset(
    {"auth", "authorization", "verification", "otp", "mfa", "security", "access", "activation", "recovery"}
)
PARAMETER_ONLY = frozenset({"key", "code"})

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


@lru_cache(maxsize=4096)
def words(name: str) -> tuple[str, ...]:
    """The name's words in lower case (`X-Api-Key` -> x, api, key; `APIKey` -> api, key)."""
    return tuple(w.lower() for w in _WORDS.findall(unquote(name)))


@lru_cache(maxsize=4096)
def is_secret_name(name: str, *, member: bool = False) -> bool:
    """Whether `name` holds a secret (module docstring); `member`: a JSON member, an XML element
    or a GraphQL argument rather than a header or a parameter."""
    parts = words(name)
    if not parts:
        return False
    last, before = parts[-1], parts[-2] if len(parts) > 1 else None
    if last in SECRET_WORDS:
        return not (last == "token" and before in PAGING)
    if last in ("key", "keys"):
        return before not in NOT_SECRET_KEYS if before else not member
    if last == "code":
        return before in SECRET_CODES if before else not member
    return last == "id" and before == "session"


# `name=value`, where the name starts a word (after `?`, `&`, `;`, a space, a quote, a bracket...).
# Found without consuming what follows, so `url=https://h/?token=x` finds `token` too.
_PARAMETER = re.compile(r"(?<![\w.%-])([A-Za-z][\w.%-]{0,63})=")
# A value runs to the next separator of a query or of the text around it; or is quoted.
_UNQUOTED = re.compile(r"[^&#\s\"'<>;,)\]}]*")
_QUOTED = re.compile(r"\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'")
# `"name": "value"` (JSON) or `'name': 'value'` (a Python dict's repr).
_MEMBER = re.compile(r"([\"'])([A-Za-z_][\w.-]{0,63})\1\s*:\s*(?:\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)')")
# `<ns:Name attr="...">value</`: an element holding text only.
_ELEMENT = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]{0,63})(?:\s[^<>]*)?>([^<]*)</")


def secret_spans(text: str) -> list[tuple[int, int]]:
    """Where the values of secret-named `name=value` pairs, JSON or dict members
    (`"name": "value"`) and XML elements (`<Name>value</Name>`) stand in `text`: (start, end) of
    each non-empty value, in order, none overlapping."""
    found: list[tuple[int, int]] = []
    if "=" in text:
        done = 0  # the end of the last value found: a name inside it is part of the value
        for match in _PARAMETER.finditer(text):
            if match.start() < done or not is_secret_name(match.group(1)):
                continue
            quoted = _QUOTED.match(text, match.end())
            if quoted:
                group = 1 if quoted.group(1) is not None else 2
                found.append((quoted.start(group), quoted.end(group)))
            else:
                # Unquoted, or a quote that is never closed (a cut line): up to a separator.
                start = match.end() + (text[match.end() : match.end() + 1] in ("'", '"'))
                value = _UNQUOTED.match(text, start)
                found.append((start, value.end() if value else start))
            done = found[-1][1]
    if ":" in text:
        for match in _MEMBER.finditer(text):
            if is_secret_name(match.group(2), member=True):
                group = 3 if match.group(3) is not None else 4
                found.append((match.start(group), match.end(group)))
    if "</" in text:
        for match in _ELEMENT.finditer(text):
            if is_secret_name(match.group(1), member=True):
                found.append((match.start(2), match.end(2)))
    spans: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if end > start and (not spans or start >= spans[-1][1]):
            spans.append((start, end))
    return spans
