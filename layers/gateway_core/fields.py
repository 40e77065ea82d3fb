"""HTTP header fields that can be written: a name is a token, a value is visible ASCII, obs-text
(0x80-0xFF), spaces and tabs (RFC 9110 sections 5.1 and 5.5). Anything else (CR or LF, which
split a header; NUL and other controls; a character past Latin-1 such as U+2028, which has no
byte on the wire) makes API Gateway fail the answer or the connection. Stdlib only."""

from __future__ import annotations

import re
from collections.abc import Mapping

NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def writable(name: str, value: str) -> bool:
    return bool(NAME.fullmatch(name)) and bool(VALUE.fullmatch(value))


def writable_headers(headers: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The headers that can be written, and the names of those that cannot (left out)."""
    kept: dict[str, str] = {}
    dropped: list[str] = []
    for name, value in headers.items():
        if writable(str(name), str(value)):
            kept[name] = value
        else:
            dropped.append(str(name))
    return kept, dropped
