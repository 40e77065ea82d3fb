"""Content negotiation on `Accept` for answers the gateway renders itself (transformed JSON,
SOAP and GraphQL results): JSON, XML or CSV, by the caller's q-values (RFC 9110 12.5.1; the most
specific range that matches a type gives its q; ties go to JSON, then XML, then CSV).

Apart from the rendering (negotiation.py) because the proxy decides on every request whether it
can answer at all, while most answers pass through and are never rendered."""

from __future__ import annotations

import math

JSON, XML, CSV = "application/json", "application/xml", "text/csv"
RENDERED = (JSON, XML, CSV)  # in the order ties are broken


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
