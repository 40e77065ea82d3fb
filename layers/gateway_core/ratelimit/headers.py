"""RateLimit-Policy, RateLimit and Retry-After (draft-ietf-httpapi-ratelimit-headers, structured
fields): every policy that applied, its quota `q` per window `w` seconds, and for each its
remaining units `r` and seconds `t` until it is full again. The most restrictive policy comes
first in `RateLimit` (fewest remaining units), so a client reading only the first item reads the
one that will stop it first."""

from __future__ import annotations

from collections.abc import Sequence

from gateway_core.ratelimit.plan import PolicyStatus


def _name(name: str) -> str:
    # A structured-field string: the names are ours (letters, digits, '-', ':'), quoted.
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rate_limit_headers(policies: Sequence[PolicyStatus], retry_after: int | None = None) -> dict[str, str]:
    if not policies:
        return {}
    ordered = sorted(policies, key=lambda p: (p.remaining, -p.reset))
    headers = {
        "RateLimit-Policy": ", ".join(f"{_name(p.name)};q={p.quota};w={p.window}" for p in policies),
        "RateLimit": ", ".join(f"{_name(p.name)};r={p.remaining};t={p.reset}" for p in ordered),
    }
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return headers
