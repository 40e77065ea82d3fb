"""In-memory stand-ins for what the proxy (functions/routes/logic/proxy.py) is given, and builders
for routes, versions and requests. Each fake subclasses the real class it replaces (without its
AWS or network set-up) so the proxy's signature is met as it stands."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from functions.routes.dal.request_log_store import RequestLogStore
from functions.routes.dal.response_cache import CachedAnswer, ResponseCache
from functions.routes.dal.serving_cache import ClientLimits, ServingCache
from functions.routes.dal.upstream import UpstreamAnswer, UpstreamClient
from functions.routes.logic.gateways import GatewaySpec, GatewayVersion
from functions.routes.logic.proxy import Proxy, ProxyCaller, ProxyRequest, ProxyResponse
from functions.routes.logic.request_log import RequestRecord
from functions.routes.logic.route_spec import Route
from functions.routes.logic.serving import CompiledVersion, ServingGateway
from gateway_core.deployed import DeployedVersion, Deployment
from gateway_core.ratelimit.limiter import Decision, RateLimiter, ScopedPlan
from gateway_core.ratelimit.plan import PolicyStatus

GATEWAY_ID = "gw_1"
TARGET_A = "https://upstream-a.example"
TARGET_B = "https://upstream-b.example"
STAMP = "2026-01-01T00:00:00.000Z"
NOW = 1_780_000_000.0  # 2026-05-28, a fixed wall clock for the proxy, the cache and the log
CLIENT = ProxyCaller(client_id="cl_1", scopes=("banking:read",), tier="basic", credential_kind="api_key")
ANONYMOUS = ProxyCaller(client_id=None)
SOURCE_IP = "203.0.113.7"


# -- builders -----------------------------------------------------------------------------------


def make_route(**overrides: Any) -> Route:
    """A stored route (the SSRF check of admin input does not apply); GET /orders/{id} to TARGET_A."""
    values: dict[str, Any] = {
        "route_id": "rt_orders",
        "version": 1,
        "created_at": STAMP,
        "updated_at": STAMP,
        "created_by": "admin-1",
        "gateway_id": GATEWAY_ID,
        "name": "orders",
        "method": "GET",
        "path": "/orders/{id}",
        "targets": [{"url": TARGET_A}],
        "auth_required": True,
    }
    values.update(overrides)
    return Route.stored(values)


def make_version(
    routes: Sequence[Route],
    *,
    version: int = 1,
    gateway_id: str = GATEWAY_ID,
    created_at: str = STAMP,
    **settings: Any,
) -> GatewayVersion:
    return GatewayVersion(
        gateway_id=gateway_id,
        version=version,
        created_at=created_at,
        created_by="admin-1",
        settings=GatewaySpec.model_validate({"name": gateway_id, **settings}),
        routes=list(routes),
    )


def serving_gateway(
    gateway_id: str = GATEWAY_ID,
    base_path: str = "",
    *,
    active: int | None = 1,
    canary: int | None = None,
    percent: int = 0,
    status: str = "active",
) -> ServingGateway:
    latest = max(v for v in (active or 0, canary or 0, 1))
    return ServingGateway(
        gateway_id=gateway_id,
        base_path=base_path,
        status=status,
        deployment=Deployment(
            latest_version=latest, active_version=active, canary_version=canary, canary_percent=percent
        ),
    )


def make_request(
    method: str = "GET",
    path: str = "/orders/42",
    *,
    query: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    caller: ProxyCaller = CLIENT,
    source_ip: str = SOURCE_IP,
    request_id: str = "req-1",
    deadline_at: float | None = None,
) -> ProxyRequest:
    return ProxyRequest(
        method=method,
        path=path,
        query=query or {},
        headers={k.lower(): v for k, v in (headers or {}).items()},
        body=body,
        source_ip=source_ip,
        request_id=request_id,
        caller=caller,
        deadline_at=deadline_at,
    )


def answer(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> UpstreamAnswer:
    """An upstream answer; a dict or list body is sent as JSON."""
    if isinstance(body, dict | list):
        raw = json.dumps(body).encode()
        all_headers = {"content-type": "application/json", **(headers or {})}
    else:
        raw = body if isinstance(body, bytes) else (body or "").encode()
        all_headers = dict(headers or {})
    return UpstreamAnswer(status, list(all_headers.items()), raw)


def policy(name: str = "minute", quota: int = 300, remaining: int = 299, reset: int = 1) -> PolicyStatus:
    return PolicyStatus(name=name, quota=quota, window=60, remaining=remaining, reset=reset)


# -- fakes --------------------------------------------------------------------------------------


class FakeServing(ServingCache):
    """The deployments index, target health, compiled versions and client limits, as given."""

    def __init__(
        self,
        gateways: list[ServingGateway],
        versions: list[GatewayVersion],
        *,
        health: dict[str, str] | None = None,
        limits: dict[str, ClientLimits] | None = None,
    ) -> None:
        self._gateways = gateways
        self._health = dict(health or {})
        # Versions reach the proxy as they are stored: the deployed model's JSON, read back.
        self._versions_by_key = {
            (v.gateway_id, v.version): CompiledVersion.compile(DeployedVersion.from_json(v.model_dump(mode="json")))
            for v in versions
        }
        self._limits = dict(limits or {})
        self.reads = 0

    def gateways(self) -> list[ServingGateway]:
        return self._gateways

    def health(self) -> dict[str, str]:
        return self._health

    def version(self, gateway_id: str, version: int) -> CompiledVersion | None:
        return self._versions_by_key.get((gateway_id, version))

    def client_limits(self, client_id: str) -> ClientLimits | None:
        return self._limits.get(client_id)


class FakeLimiter(RateLimiter):
    """Admits every request (with one policy for the headers) unless a decision is queued."""

    def __init__(self, *decisions: Decision) -> None:
        self.queued = list(decisions)
        self.checked: list[list[ScopedPlan]] = []

    def check(self, scopes: Sequence[ScopedPlan], cost: int = 1) -> Decision:
        self.checked.append(list(scopes))
        if self.queued:
            return self.queued.pop(0)
        return Decision(admitted=True, policies=[policy()])


@dataclass(frozen=True)
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float


Scripted = UpstreamAnswer | BaseException | Callable[[Sent], UpstreamAnswer]


class FakeUpstream(UpstreamClient):
    """Records every attempt; answers from `script` in order (an exception is raised), then
    `default`. `by_target` scripts one target (a URL prefix) on its own."""

    def __init__(
        self,
        *script: Scripted,
        default: UpstreamAnswer | None = None,
        by_target: dict[str, list[Scripted]] | None = None,
    ) -> None:
        self.script = list(script)
        self.default = default or answer(200, {"ok": True})
        self.by_target = {k: list(v) for k, v in (by_target or {}).items()}
        self.calls: list[Sent] = []

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float) -> UpstreamAnswer:
        sent = Sent(method, url, dict(headers), body, timeout)
        self.calls.append(sent)
        queue = next((q for prefix, q in self.by_target.items() if url.startswith(prefix)), self.script)
        step: Scripted = queue.pop(0) if queue else self.default
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return step(sent)
        return step

    def urls(self) -> list[str]:
        return [c.url for c in self.calls]


class FakeCache(ResponseCache):
    """Cached answers in a dict; expiry checked on read, as the real cache does."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.entries: dict[tuple[str, str], CachedAnswer] = {}
        self.puts = 0

    def get(self, route_id: str, key: str) -> CachedAnswer | None:
        hit = self.entries.get((route_id, key))
        return hit if hit is not None and hit.expires_at > self.clock() else None

    def put(self, route_id: str, key: str, answer: CachedAnswer) -> bool:
        self.entries[(route_id, key)] = answer
        self.puts += 1
        return True


class FakeLogs(RequestLogStore):
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def put(self, record: RequestRecord) -> None:
        self.records.append(record)


class FailingLogs(RequestLogStore):
    def __init__(self) -> None:
        self.attempts = 0

    def put(self, record: RequestRecord) -> None:
        self.attempts += 1
        raise RuntimeError("DynamoDB is throttling")


@dataclass
class FakeClock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeSleep:
    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@dataclass
class Harness:
    proxy: Proxy
    serving: FakeServing
    limiter: FakeLimiter
    upstream: FakeUpstream
    cache: FakeCache
    logs: FakeLogs
    clock: FakeClock
    sleep: FakeSleep

    def call(self, method: str = "GET", path: str = "/orders/42", **request: Any) -> ProxyResponse:
        return self.proxy.handle(make_request(method, path, **request))

    def record(self) -> RequestRecord:
        assert self.logs.records, "no request log record was written"
        return self.logs.records[-1]


def harness(
    routes: Sequence[Route] | None = None,
    *,
    upstream: FakeUpstream | None = None,
    limiter: FakeLimiter | None = None,
    versions: list[GatewayVersion] | None = None,
    gateways: list[ServingGateway] | None = None,
    health: dict[str, str] | None = None,
    limits: dict[str, ClientLimits] | None = None,
    global_per_second: int = 0,
    **settings: Any,
) -> Harness:
    """A proxy over one gateway (root base path, version 1 active) serving `routes`, or over the
    given versions and gateways."""
    clock = FakeClock()
    sleep = FakeSleep()
    serving = FakeServing(
        gateways if gateways is not None else [serving_gateway()],
        versions if versions is not None else [make_version(routes or [make_route()], **settings)],
        health=health,
        limits=limits,
    )
    limiter = limiter or FakeLimiter()
    upstream = upstream or FakeUpstream()
    cache = FakeCache(clock)
    logs = FakeLogs()
    proxy = Proxy(
        serving=serving,
        limiter=limiter,
        upstream=upstream,
        cache=cache,
        logs=logs,
        global_per_second=global_per_second,
        clock=clock,
        sleep=sleep,
        rng=random.Random(7),
    )
    return Harness(proxy, serving, limiter, upstream, cache, logs, clock, sleep)
