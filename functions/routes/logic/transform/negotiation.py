"""Rendering the answers the gateway renders itself (transformed JSON, SOAP and GraphQL results)
as the negotiated JSON, XML or CSV (the choice itself is accept.py), and the caller's body,
parsed only when a template or protocol bridge needs it. Imported at first use by the proxy."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape, quoteattr

from functions.routes.logic.transform.accept import CSV, JSON, RENDERED, XML, negotiate
from functions.routes.logic.transform.jsonio import dumps_json, loads_json
from functions.routes.logic.transform.soap import xml_text
from functions.routes.logic.transform.templates import to_text

_XML_NAME_START = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_XML_NAME = _XML_NAME_START | set("0123456789.-")
# Spreadsheets run cells starting with these as formulas (CSV injection); a leading quote stops it.
_FORMULA = ("=", "+", "@", "\t", "\r")

__all__ = ["CSV", "JSON", "RENDERED", "XML", "negotiate", "parse_body", "render"]


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
