"""The one reader of JSON request bodies: every endpoint that takes a body (the management API's
resolver, `gateway_core.http`, and the resolver-free functions, `gateway_core.endpoints`) gets its
value from `read_json`, so no endpoint can parse a body by laxer rules than another.

What a body may be (RFC 8259 with the ambiguities closed): `application/json` or a `+json` type,
charset UTF-8 if one is named, no content coding, at most `limit` bytes, UTF-8 without a byte
order mark, nesting at most MAX_DEPTH deep, numbers at most MAX_NUMBER_CHARS long and finite
(no NaN/Infinity literals, no float that overflows to infinity), each name once per object, no
unpaired surrogate escapes (they cannot be stored or encoded again). Anything else is a 4xx
problem that says which rule was broken: 413 `payload_too_large`, 415 `unsupported_media_type`,
400 `invalid_body` with an `errors` list in the validation errors' form. What the body means
is the models' to judge (422). Stdlib only: the data plane imports this on its cold path.
"""

from __future__ import annotations

import json
from typing import Any

from gateway_core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 64
# Longer than any amount, limit or count has reason to be; Python refuses ints past 4,300 digits
# (with a ValueError), and the time to convert grows with the square of the length below that.
MAX_NUMBER_CHARS = 100
# The byte order marks of UTF-8, UTF-16 and UTF-32 (RFC 8259 §8.1: JSON text must not carry one).
_BOMS = (b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe")
ACCEPTED = "application/json"


class _Refused(Exception):
    def __init__(self, kind: str, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.position = position


def _malformed(kind: str, message: str, position: int | None = None) -> BadRequest:
    loc: list[str] = ["body"] if position is None else ["body", str(position)]
    return BadRequest(
        f"The body is not well-formed JSON: {message}.",
        code="invalid_body",
        extensions={"errors": [{"loc": loc, "msg": message, "type": kind}]},
    )


# RFC 9110 §15.5.16: a 415 may say which media types would have been taken.
_ACCEPT = {"Accept": ACCEPTED}


def _media_type(content_type: str | None) -> None:
    """415 unless the body is labelled JSON (or not labelled at all) in UTF-8."""
    if content_type is None or not content_type.strip():
        return  # unlabelled: taken as JSON, as the API document says every body is
    media, _, parameters = content_type.partition(";")
    media = media.strip().lower()
    if media != ACCEPTED and not (media.startswith("application/") and media.endswith("+json")):
        raise UnsupportedMediaType(
            f"The body must be {ACCEPTED}, not {media[:100] or 'an empty media type'}.",
            extensions={"accepted": [ACCEPTED]},
            headers=_ACCEPT,
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(
                f"JSON is read as UTF-8 only, not {value.strip()[:40]}.",
                extensions={"accepted": [ACCEPTED]},
                headers=_ACCEPT,
            )


def _number(text: str) -> None:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused("number_too_long", f"a number is longer than {MAX_NUMBER_CHARS} characters")


def _int(text: str) -> int:
    _number(text)
    return int(text)


def _float(text: str) -> float:
    _number(text)
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Refused("number_out_of_range", f"the number {text[:40]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise _Refused("number_not_finite", f"{name} is not a JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        # Parsers disagree on which of two values wins; a body that means different things to
        # different readers (a WAF, a log, us) is refused.
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _Refused("duplicate_name", f"the name {name[:40]!r} appears twice in one object")
            seen.add(name)
    return value


def _check_tree(value: Any) -> None:
    """Depth and strings of a parsed document, iteratively (a recursive walk would be the crash
    this guards against)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise _Refused("too_deep", f"the JSON is nested deeper than {MAX_DEPTH} levels")
            for name, inner in item.items():
                _check_string(name)
                stack.append((inner, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise _Refused("too_deep", f"the JSON is nested deeper than {MAX_DEPTH} levels")
            stack.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, str):
            _check_string(item)


def _check_string(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise _Refused("invalid_unicode", "a string holds an unpaired surrogate escape") from error


def read_json(
    body: bytes,
    content_type: str | None,
    *,
    content_encoding: str | None = None,
    limit: int = MAX_BODY_BYTES,
) -> Any:
    """The value of a JSON body, or None when there is no body (the models say whether one is
    required). Raises the problem the body deserves."""
    if len(body) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes.", extensions={"limit_bytes": limit})
    if not body:
        return None
    if content_encoding and content_encoding.strip().lower() not in ("identity", ""):
        raise UnsupportedMediaType(
            "Request bodies are accepted without a content coding.",
            extensions={"accepted": [ACCEPTED]},
            headers={"Accept-Encoding": "identity"},  # RFC 7694 §3
        )
    _media_type(content_type)
    if body.startswith(_BOMS):
        raise _malformed("byte_order_mark", "JSON text must not start with a byte order mark", 0)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _malformed("not_utf8", "the body is not UTF-8", error.start) from error
    try:
        value = json.loads(
            text, parse_int=_int, parse_float=_float, parse_constant=_constant, object_pairs_hook=_object
        )
        _check_tree(value)
    except _Refused as refused:
        raise _malformed(refused.kind, refused.message) from refused
    except json.JSONDecodeError as error:
        raise _malformed("json_invalid", error.msg, error.pos) from error
    except RecursionError as error:
        raise _malformed("too_deep", f"the JSON is nested deeper than {MAX_DEPTH} levels") from error
    return value
