"""What the proxy is given (ports): the serving state, upstream calls, the response cache and the
request log, with the values they exchange (named tuples: on the data plane's cold path they
cost less to define than dataclasses), and the failures an upstream call reports (so the logic
never knows the HTTP library). The adapters live in dal/ (DynamoDB, urllib3) and are built by
functions/routes/proxy_bootstrap.py; tests give in-memory ones. The rate limiter comes from
gateway_core.ratelimit, over its own store port."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from functions.routes.logic.request_log import RequestRecord
    from functions.routes.logic.serving import CompiledVersion, ServingGateway


class UpstreamAnswer(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class UpstreamCallFailed(Exception):
    """An attempt that got no answer. The adapter raises one of the subclasses below."""


class UpstreamTimedOut(UpstreamCallFailed):
    """No (whole) answer within the attempt's budget: connecting, waiting or reading."""


class UpstreamConnectFailed(UpstreamCallFailed):
    """No connection was made (the name did not resolve, the connection or TLS was refused):
    nothing reached the upstream."""


class UpstreamRequestInvalid(UpstreamCallFailed):
    """Our request could not be written as HTTP/1.1 (e.g. a header value it cannot carry): the
    caller's doing, never the upstream's failure."""


class UpstreamTransportFailed(UpstreamCallFailed):
    """The connection failed after it was made (reset, closed early, a broken answer)."""


class CachedAnswer(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    expires_at: float


class ClientLimits(NamedTuple):
    tier: str
    per_minute: int | None
    per_hour: int | None
    per_day: int | None
    burst: int | None
    monthly_quota: int | None
    overridden: bool  # False: the tier's defaults apply


class Serving(Protocol):
    """What serves (the deployments index), the targets' health, deployed versions compiled for
    matching, and a client's own limits (None for a subject that is not one of our clients)."""

    def gateways(self) -> list[ServingGateway]: ...

    def health(self) -> dict[str, str]: ...

    def version(self, gateway_id: str, version: int) -> CompiledVersion | None: ...

    def client_limits(self, client_id: str) -> ClientLimits | None: ...


class Upstream(Protocol):
    def send(self, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float) -> UpstreamAnswer:
        """One attempt. Raises UpstreamTimedOut, UpstreamConnectFailed, UpstreamRequestInvalid,
        UpstreamTransportFailed, gateway_core.ssrf.BlockedDestination or an UpstreamError (e.g.
        upstream_too_large); an answer of any status is returned."""
        ...


class AnswerCache(Protocol):
    def get(self, route_id: str, key: str) -> CachedAnswer | None: ...

    def put(self, route_id: str, key: str, answer: CachedAnswer) -> bool: ...


class RequestLogs(Protocol):
    def put(self, record: RequestRecord) -> None: ...
