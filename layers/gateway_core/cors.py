"""Browser access (CORS) for the API, from the environment the stack sets (context
`corsAllowOrigins` and friends): which origins may read our answers, and the headers that say so.

One reading of the settings for both kinds of entry point: the powertools resolver
(`gateway_core.http`) and the resolver-free functions (`gateway_core.endpoints`), so an answer
carries the same headers whichever function gave it. Stdlib only: the data plane imports this.
"""

from __future__ import annotations

import os
from typing import NamedTuple

# What every preflight allows besides the configured headers (as powertools' CORSConfig does).
REQUIRED_HEADERS = ("Authorization", "Content-Type", "X-Amz-Date", "X-Api-Key", "X-Amz-Security-Token")


def _csv(name: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in os.environ.get(name, "").split(",") if v.strip())


class Cors(NamedTuple):
    origins: tuple[str, ...]
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int = 600

    @classmethod
    def from_env(cls) -> Cors | None:
        """None when no origin is allowed (CORS off)."""
        origins = _csv("CORS_ALLOW_ORIGINS")
        if not origins:
            return None
        return cls(
            origins=origins,
            allow_headers=_csv("CORS_ALLOW_HEADERS"),
            expose_headers=_csv("CORS_EXPOSE_HEADERS"),
            max_age=int(os.environ.get("CORS_MAX_AGE_SECONDS", "600")),
        )

    def allows(self, origin: str | None) -> bool:
        return bool(origin) and (origin in self.origins or "*" in self.origins)

    def headers(self, origin: str | None) -> dict[str, str]:
        """The headers an answer to a request from `origin` carries; none for an origin not on the
        list. The allowed origin depends on the request's Origin, so caches must key on it."""
        if not self.allows(origin):
            return {}
        assert origin is not None
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Headers": ",".join(sorted({*REQUIRED_HEADERS, *self.allow_headers})),
            "Vary": "Origin",
        }
        if self.expose_headers:
            headers["Access-Control-Expose-Headers"] = ",".join(self.expose_headers)
        headers["Access-Control-Max-Age"] = str(self.max_age)
        return headers
