"""Content negotiation on `Accept` for answers the gateway renders itself (transformed JSON,
SOAP and GraphQL results): JSON, XML or CSV, by the caller's q-values (RFC 9110 12.5.1; the most
specific range that matches a type gives its q; ties go to JSON, then XML, then CSV). And the
caller's body, parsed only when a template or protocol bridge needs it."""

from __future__ import annotations

import csv
import io
import math
import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape, quoteattr

from functions.routes.logic.transform.jsonio import dumps_json, loads_json
from functions.routes.logic.transform.soap import xml_text
from functions.routes.logic.transform.templates import to_text

JSON, XML, CSV = "application/json", "application/xml", "text/csv"
RENDERED = (JSON, XML, CSV)  # in the order ties are broken
_XML_NAME_START = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_XML_NAME = _XML_NAME_START | set("0123456789.-")
# Spreadsheets run cells starting with these as formulas (CSV injection); a leading quote stops it.
_FORMULA = ("=", "+", "@", "\t", "\r")


def parse_body(content_type: str | None, body: bytes) -> Any:
    """JSON (exact numbers), a form as an object of first values, text as a string; None for an
    empty or binary body."""
    if not body:
        return None
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json") or not media:
        return loads_json(body)
    if media == "application/x-www-form-urlencoded":
        return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    if media.startswith("text/") or media.endswith(("/xml", "+xml")):
        return body.decode("utf-8", "replace")
    return None


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    out: list[tuple[str, str, float]] = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        kind, _, sub = fields[0].lower().partition("/")
        if not kind or not sub:
            continue
        q = 1.0
        for parameter in fields[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                q = 0.0 if math.isnan(q) else max(0.0, min(1.0, q))
        out.append((kind, sub, q))
    return out


def negotiate(accept: str | None) -> str | None:
    """The media type to render, or None when the caller accepts none of them (406)."""
    if not accept or not accept.strip():
        return JSON
    ranges = _ranges(accept)
    if not ranges:
        return JSON
    best: tuple[float, str] | None = None
    for media in RENDERED:
        kind, sub = media.split("/")
        # Most specific first: type/subtype, then type/*, then */*.
        q = next((r[2] for r in ranges if (r[0], r[1]) == (kind, sub)), None)
        if q is None:
            q = next((r[2] for r in ranges if (r[0], r[1]) == (kind, "*")), None)
        if q is None:
            q = next((r[2] for r in ranges if (r[0], r[1]) == ("*", "*")), 0.0)
        if q > 0 and (best is None or q > best[0]):
            best = (q, media)
    return best[1] if best else None


def _xml_name(name: str) -> str:
    if name and name[0] in _XML_NAME_START and all(c in _XML_NAME for c in name) and not name.lower().startswith("xml"):
        return name
    return ""


def _xml(name: str, value: Any, out: list[str]) -> None:
    tag = _xml_name(name)
    open_tag = f"<{tag}>" if tag else f"<field name={quoteattr(xml_text(name))}>"
    close_tag = f"</{tag}>" if tag else "</field>"
    if isinstance(value, list):
        out.append(open_tag)
        for item in value:
            _xml("item", item, out)
        out.append(close_tag)
    elif isinstance(value, dict):
        out.append(open_tag)
        for key, item in value.items():
            _xml(str(key), item, out)
        out.append(close_tag)
    elif value is None:
        out.append(open_tag[:-1] + "/>")
    else:
        out.append(open_tag + escape(xml_text(_cell(value))) + close_tag)


def _cell(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    return to_text(value)


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}.{index}" if prefix else str(index), out)
    else:
        text = _cell(value) if not isinstance(value, list) else ";".join(_cell(v) for v in value)
        out[prefix or "value"] = text


def _rows(value: Any) -> list[Any]:
    """A list of records: the value if it is a list, the one list inside a one-member object
    (`{"items": [...]}`), else the value as one record."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (inner,) = value.values()
        if isinstance(inner, list):
            return inner
    return [value]


_NEGATIVE_NUMBER = re.compile(r"-\d+(\.\d+)?")


def _safe_cell(text: str) -> str:
    if text.startswith(_FORMULA) or (text.startswith("-") and not _NEGATIVE_NUMBER.fullmatch(text)):
        return "'" + text
    return text


def render(value: Any, media: str) -> bytes:
    if media == XML:
        out: list[str] = ['<?xml version="1.0" encoding="utf-8"?>']
        _xml("response", value, out)
        return "".join(out).encode()
    if media == CSV:
        records: list[dict[str, str]] = []
        for row in _rows(value):
            flat: dict[str, str] = {}
            _flatten(row, "", flat)
            records.append(flat)
        columns = list(dict.fromkeys(k for record in records for k in record))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
        writer.writerow([_safe_cell(c) for c in columns])
        for record in records:
            writer.writerow([_safe_cell(record.get(c, "")) for c in columns])
        return buffer.getvalue().encode()
    return dumps_json(value)
