"""The dynamic proxy: one request through a deployed route.

Order (each step can end the request with a problem+json answer):
 1. the gateway (longest base path) and its version (active, or the canary for this caller);
 2. a CORS preflight for the gateway's origins is answered here, before credentials and limits;
 3. the route (literal beats parameter beats greedy; 405 with Allow when only other methods match);
 4. credentials and scopes (a route may allow anonymous callers; scopes are checked every time);
 5. rate limits (one conditional write per scope; RateLimit headers on every answer);
 6. the response cache (GET/HEAD routes with a TTL);
 7. the request transformation (headers, query, body template; SOAP or GraphQL);
 8. the upstream call: balanced over healthy targets whose circuit is closed, retried with
    backoff (idempotent methods or an Idempotency-Key; a refused connection fails over for any
    method, because nothing was sent), all inside API Gateway's 29 s;
 9. the response transformation and content negotiation, then our headers;
10. one request log record, whatever happened.

The logic works over ports (proxy_ports.py); the data plane's function builds the adapters
(proxy_bootstrap.py). Transformations most routes never use (templates, header and query rules,
SOAP, GraphQL, XML and CSV rendering, parsing the caller's body) are imported where they are first
needed, so a cold start that serves a plain pass-through route does not pay for them.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, NamedTuple
from urllib.parse import urlencode

from functions.routes.logic import paths, traffic
from functions.routes.logic.proxy_ports import (
    AnswerCache,
    CachedAnswer,
    RequestLogs,
    Serving,
    Upstream,
    UpstreamAnswer,
    UpstreamConnectFailed,
    UpstreamRequestInvalid,
    UpstreamTimedOut,
    UpstreamTransportFailed,
)
from functions.routes.logic.request_log import RequestRecord, body_sample, safe_headers, safe_query
from functions.routes.logic.resilience import (
    CircuitBreakers,
    Deadline,
    RetryPolicy,
    may_retry,
    next_delay,
    plan_attempt,
    retryable_status,
)
from functions.routes.logic.secret_values import SecretUnavailable, SecretValues, referenced
from functions.routes.logic.serving import CompiledVersion, select_gateway, select_version
from functions.routes.logic.transform import accept, jsonio
from gateway_core.clock import iso
from gateway_core.deployed import DeployedRoute, GatewaySettings
from gateway_core.errors import (
    PROBLEM_CONTENT_TYPE,
    BadRequest,
    DependencyUnavailable,
    Forbidden,
    GatewayError,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    TooManyRequests,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
    problem_from_error,
    problem_json,
)
from gateway_core.ratelimit.headers import rate_limit_headers
from gateway_core.ratelimit.limiter import RateLimiter
from gateway_core.ssrf import BlockedDestination, points_inside

# API Gateway gives up at 29 s; the proxy must answer before, with time to write its log.
DEADLINE_SECONDS = 27.0
_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# The caller's headers that reach an upstream: an allowlist (content negotiation, what describes
# the body, conditional and range requests, caching, preferences, retries, tracing, the client's
# software), so no header an upstream might trust for the client's address, the original host,
# scheme, path or method (X-Forwarded-*, Forwarded, X-Real-IP, X-Original-URL,
# X-HTTP-Method-Override, ...), nor a credential, hop-by-hop field or header only the gateway may
# set ever passes, however it is spelled. A route passes others by naming them in its header rules.
_FORWARDED = frozenset(
    {
        "accept",
        "accept-charset",
        "accept-language",
        "content-type",
        "content-encoding",
        "content-language",
        "content-disposition",
        "content-digest",
        "repr-digest",
        "digest",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "if-range",
        "range",
        "cache-control",
        "pragma",
        "prefer",
        "idempotency-key",
        "traceparent",
        "tracestate",
        "user-agent",
        "soapaction",
    }
)
# Never passed, even when a route's rules name them: hop-by-hop fields and the caller's credentials.
_NEVER_FORWARDED = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "cookie",
    }
)
_NOT_RETURNED = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "set-cookie",
        "trailer",
        # API Gateway writes its own Date (one per answer); the upstream's Server names software
        # callers have no business knowing (and would be a second Server beside the front's).
        "date",
        "server",
        # Ours describe the gateway's limits; an upstream's own would contradict them.
        "ratelimit",
        "ratelimit-policy",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    }
)
# A Lambda answer is at most 6 MB (6,291,456 bytes) once written, headers included.
MAX_LAMBDA_BODY_BYTES = 6_000_000
_OURS = ("x-gateway-", "x-amz", "x-amzn-", "x-forwarded-")
# Only what the upstream adapter (urllib3, without brotli or zstandard) decodes: the caller's own
# Accept-Encoding (br, zstd) would come back as bytes the gateway cannot read, transform or cache.
_UPSTREAM_ACCEPT_ENCODING = "gzip, deflate"
_HEADER_VALUE = re.compile(r"^[\x20-\x7e\t]*$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,256}$")
# Loops (a route whose upstream is this gateway, or a chain of gateways that comes back): every
# upstream request names the gateways it passed in X-Gateway-Hop, this one last; a request that
# names this one, or too many, is refused before anything runs (508 Loop Detected, RFC 5842).
HOP_HEADER = "x-gateway-hop"
HOP_TOKEN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_HOPS = 8


class LoopDetected(GatewayError):
    status, code, title = 508, "loop_detected", "Loop Detected"


def hop_token(seed: str) -> str:
    """A deployment's hop (from its table's name): one for all its containers, another for every
    other deployment, and nothing of the name it comes from."""
    return "gw-" + hashlib.sha256(seed.encode()).hexdigest()[:16]


def hops_passed(headers: dict[str, str], own: str) -> list[str]:
    """The gateways a request passed (X-Gateway-Hop, tokens only); LoopDetected when this one is
    among them or there are MAX_HOPS already."""
    hops = [t for t in (part.strip() for part in headers.get(HOP_HEADER, "").split(",")) if HOP_TOKEN.fullmatch(t)]
    if own in hops:
        raise LoopDetected("This request came back to the gateway through one of its routes; it is not sent again.")
    if len(hops) >= MAX_HOPS:
        raise LoopDetected(f"This request has passed {len(hops)} gateways already.")
    return hops


class ProxyCaller(NamedTuple):
    client_id: str | None  # None: no credential
    scopes: tuple[str, ...] = ()
    tier: str = "free"
    credential_kind: str = "none"
    credential_id: str = ""
    key_limits: traffic.Limits | None = None  # an API key's own limits, when it has them
    key_lineage: str = ""  # its rotations share the key's own limits ("": the credential id)


class ProxyRequest(NamedTuple):
    method: str
    path: str  # below /gw
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    source_ip: str
    request_id: str
    caller: ProxyCaller
    deadline_at: float | None = None  # time.monotonic() by which to answer (a batch's share of 29 s)


class ProxyResponse(NamedTuple):
    status: int
    headers: dict[str, str]  # one value per name: the first (or only) one
    body: bytes
    # Further values of names in `headers`, in the order the upstream sent them (two `Link`s, two
    # `Vary`s): they reach the caller as multi-value headers.
    more_headers: tuple[tuple[str, str], ...] = ()


def header_values(response: ProxyResponse) -> dict[str, list[str]]:
    """Every header of an answer with all its values, in order."""
    out = {name: [value] for name, value in response.headers.items()}
    for name, value in response.more_headers:
        if name in out:
            out[name].append(value)
    return out


def _split_values(pairs: list[tuple[str, str]]) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """Header pairs as `headers` (first value per name) and `more_headers` (the rest)."""
    first: dict[str, str] = {}
    more: list[tuple[str, str]] = []
    for name, value in pairs:
        if name in first:
            more.append((name, value))
        else:
            first[name] = value
    return first, tuple(more)


class _Exchange:
    """What one request gathered on its way, for the answer's headers and the log record."""

    __slots__ = ("correlation", "cors", "headers", "hops", "record")

    def __init__(self, correlation: str, record: RequestRecord) -> None:
        self.correlation = correlation
        self.record = record
        self.headers: dict[str, str] = {}
        self.cors: dict[str, str] = {}
        self.hops: list[str] = []


class Proxy:
    def __init__(
        self,
        *,
        serving: Serving,
        limiter: RateLimiter,
        upstream: Upstream,
        cache: AnswerCache,
        logs: RequestLogs,
        global_per_second: int = 0,
        hop_id: str = "",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        on_log_failure: Callable[[Exception], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        secrets: SecretValues | None = None,
    ) -> None:
        self.serving = serving
        self.secrets = secrets
        self.limiter = limiter
        self.upstream = upstream
        self.cache = cache
        self.logs = logs
        self._breakers: dict[tuple[int, float], CircuitBreakers] = {}
        self.global_per_second = global_per_second
        self.hop_id = hop_id or hop_token("")
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.on_log_failure = on_log_failure
        self.on_error = on_error

    def handle(self, request: ProxyRequest) -> ProxyResponse:
        started = time.monotonic()
        offered = request.headers.get("x-request-id", "")
        exchange = _Exchange(
            correlation=offered if _CORRELATION.fullmatch(offered) else request.request_id,
            record=RequestRecord(
                request_id=request.request_id,
                correlation_id=offered if _CORRELATION.fullmatch(offered) else "",
                at=iso(datetime.fromtimestamp(self.clock(), UTC)),
                method=request.method,
                path=request.path,
                client_id=request.caller.client_id or f"anonymous:{request.source_ip}",
                client_ip=request.source_ip,
                user_agent=request.headers.get("user-agent", "")[:512],
                query_params=safe_query(request.query),
                request_headers=safe_headers(request.headers),
                request_body_size=len(request.body),
                request_body_sample=body_sample(request.body, request.headers.get("content-type")),
            ),
        )
        try:
            response = self._serve(request, exchange)
        except GatewayError as error:
            response = self._problem(error, request, exchange)
            exchange.record.error_code = error.code
            exchange.record.error_message = error.detail[:300]
        except Exception as error:  # noqa: BLE001 - a bug of ours: a 500 problem, still logged
            if self.on_error:
                self.on_error(error)
            response = self._problem(GatewayError("The gateway failed on this request."), request, exchange)
            exchange.record.error_code = "internal_error"
        response.headers.update(exchange.headers)
        vary = exchange.cors.pop("Vary", None)
        response.headers.update(exchange.cors)
        response.headers["X-Request-Id"] = exchange.correlation
        # A header the gateway sets replaces every value the upstream gave it.
        ours = {*exchange.headers, *exchange.cors, "X-Request-Id"}
        more = tuple((k, v) for k, v in response.more_headers if k not in ours)
        if vary:
            listed = {
                v.strip().lower()
                for value in [response.headers.get("Vary", ""), *(v for k, v in more if k == "Vary")]
                for v in value.split(",")
            }
            if vary.lower() not in listed:
                if "Vary" in response.headers:
                    more += (("Vary", vary),)
                else:
                    response.headers["Vary"] = vary
        response = response._replace(more_headers=more)
        record = exchange.record
        record.status_code = response.status
        record.response_size = len(response.body)
        record.response_time_ms = int((time.monotonic() - started) * 1000)
        try:
            self.logs.put(record)
        except Exception as error:  # noqa: BLE001 - a lost log line must not fail the caller's request
            if self.on_log_failure:
                self.on_log_failure(error)
        return response

    # -- the steps ----------------------------------------------------------------------------

    def _serve(self, request: ProxyRequest, exchange: _Exchange) -> ProxyResponse:
        exchange.hops = hops_passed(request.headers, self.hop_id)
        caller_key = request.caller.client_id or f"ip:{request.source_ip}"
        selected = select_gateway(self.serving.gateways(), request.path)
        if selected is None:
            raise NotFound(f"No deployed route serves {request.path}.", code="route_not_found")
        gateway, subpath = selected
        version_number = select_version(gateway, caller_key)
        compiled = self.serving.version(gateway.gateway_id, version_number)
        if compiled is None:
            raise DependencyUnavailable("The deployed version could not be read; try again.")
        exchange.record.gateway_id = gateway.gateway_id
        exchange.record.gateway_version = version_number
        settings = compiled.version.settings
        exchange.cors = _cors_headers(settings, request.headers.get("origin"))
        if request.method == "OPTIONS" and "access-control-request-method" in request.headers and settings.cors:
            return _preflight(settings, request.headers.get("origin"))
        route, params = self._match(compiled, request.method, subpath)
        exchange.record.route_id = route.route_id
        if route.deprecated:
            exchange.headers.update(_deprecation_headers(route, compiled))
        upstream_params = _upstream_values(route, params)  # refused here, before credentials and limits are spent
        self._authorize(route, request.caller, exchange)
        if _renders(route) and accept.negotiate(request.headers.get("accept")) is None:
            # Refused before the upstream runs: a mutation must not happen for an answer we cannot give.
            raise _not_acceptable()
        self._limit(route, request, caller_key, exchange)
        cache_key = (
            f"v{version_number}|" + self._cache_key(route, request, subpath, params)
            if _cacheable(route, request.method)
            else None
        )
        if cache_key is not None:
            try:
                hit = self.cache.get(route.route_id, cache_key)
            except Exception as error:  # noqa: BLE001 - a cache that cannot be read is a miss
                if self.on_error:
                    self.on_error(error)
                hit = None
            exchange.record.cache = "hit" if hit else "miss"
            if hit is not None:
                exchange.headers["X-Cache"] = "HIT"
                exchange.headers["Age"] = str(max(0, int(route.cache_ttl_seconds - (hit.expires_at - self.clock()))))
                first, more = _split_values(hit.headers)
                return ProxyResponse(hit.status, first, hit.body, more)
            exchange.headers["X-Cache"] = "MISS"
        context = _context(request, params, exchange.correlation)
        answer, target = self._call(route, settings, compiled, request, upstream_params, context, exchange, caller_key)
        exchange.record.upstream_service = target
        response = _respond(route, request, answer, context)
        if not _fits_lambda(response.body):
            raise UpstreamError(
                "The upstream's answer is larger than API Gateway can return from a function (6 MB).",
                code="upstream_too_large",
            )
        if cache_key is not None and response.status == 200 and _storable(answer):
            try:
                self.cache.put(
                    route.route_id,
                    cache_key,
                    CachedAnswer(
                        response.status,
                        [*response.headers.items(), *response.more_headers],
                        response.body,
                        self.clock() + route.cache_ttl_seconds,
                    ),
                )
            except Exception as error:  # noqa: BLE001 - a failed cache write must not lose the answer
                if self.on_error:
                    self.on_error(error)
        return response

    def breakers(self, failure_threshold: int, reset_timeout: float) -> CircuitBreakers:
        """One registry per circuit-breaker setting: gateways may configure different ones."""
        key = (failure_threshold, reset_timeout)
        found = self._breakers.get(key)
        if found is None:
            found = self._breakers.setdefault(
                key, CircuitBreakers(failure_threshold=failure_threshold, reset_timeout=reset_timeout, clock=self.clock)
            )
        return found

    def _match(self, compiled: CompiledVersion, method: str, subpath: str) -> tuple[DeployedRoute, dict[str, str]]:
        try:
            found = compiled.match(method, subpath)
        except paths.MethodNotAllowedHere as error:
            raise MethodNotAllowed(
                f"{method} is not served on {subpath}.", headers={"Allow": ", ".join(error.allowed)}
            ) from error
        if found is None:
            raise NotFound(f"No deployed route serves {method} {subpath}.", code="route_not_found")
        return found.value, found.params

    def _authorize(self, route: DeployedRoute, caller: ProxyCaller, exchange: _Exchange) -> None:
        if not route.auth_required:
            return
        if caller.client_id is None:
            exchange.record.auth_failed = True
            raise Unauthorized(
                "This route needs a credential: an API key, a bearer token or a client certificate.",
                code="credential_required",
                headers={"WWW-Authenticate": 'Bearer realm="gateway", ApiKey realm="gateway", header="x-api-key"'},
            )
        missing = sorted(set(route.required_scopes) - set(caller.scopes))
        if missing:
            exchange.record.auth_failed = True
            raise Forbidden(
                f"This route needs the scopes: {', '.join(missing)}.",
                code="insufficient_scope",
                extensions={"required_scopes": route.required_scopes},
            )

    def _limit(self, route: DeployedRoute, request: ProxyRequest, caller_key: str, exchange: _Exchange) -> None:
        caller = request.caller
        if caller.client_id is None:
            per_minute, per_hour, per_day = traffic.ANONYMOUS
            limits, quota, tier = traffic.Limits(per_minute, per_hour, per_day), None, "free"
            key = f"IP#{request.source_ip}"
        else:
            own = self.serving.client_limits(caller.client_id)
            tier = own.tier if own else caller.tier
            override = (
                traffic.Limits(own.per_minute, own.per_hour, own.per_day, own.burst) if own and own.overridden else None
            )
            limits = traffic.client_limits(tier, override)
            quota = traffic.monthly_quota(tier, own.monthly_quota if own else None)
            key = f"CLIENT#{caller.client_id}"
        plans = traffic.request_plans(
            caller_key=key,
            limits=limits,
            quota=quota,
            key_scope=(caller.key_lineage or caller.credential_id, caller.key_limits) if caller.key_limits else None,
            route_id=route.route_id,
            route_limits=_limits(route.rate_limits),
            route_total=_limits(route.total_rate_limits),
            tier=tier,
            global_per_second=self.global_per_second,
        )
        decision = self.limiter.check(plans)
        exchange.headers.update(rate_limit_headers(decision.policies, decision.retry_after))
        if decision.admitted:
            return
        exchange.record.rate_limited = True
        if decision.refused_by == "GLOBAL":
            raise DependencyUnavailable(
                "The gateway is at capacity and serves higher tiers first; retry later.",
                code="capacity_exceeded",
                extensions={"retry_after": decision.retry_after},
            )
        raise TooManyRequests(
            f"Rate limit reached; retry in {decision.retry_after} s.",
            extensions={"retry_after": decision.retry_after, "scope": _scope_name(decision.refused_by or "")},
        )

    def _cache_key(self, route: DeployedRoute, request: ProxyRequest, subpath: str, params: dict[str, str]) -> str:
        if route.cache_key_template:
            from functions.routes.logic.transform.templates import render_text

            context = _resolved(_context(request, params, request.request_id))
            return route.route_id + "|" + render_text(route.cache_key_template, context)
        query = urlencode(sorted((k, v) for k, vs in request.query.items() for v in vs))
        accept = request.headers.get("accept", "")
        # Per caller by default: an upstream answer may be specific to who asked.
        return f"{request.method} {subpath}?{query}|{accept}|{request.caller.client_id or 'anonymous'}"

    def _with_secrets(self, route: DeployedRoute, context: dict[str, Any]) -> dict[str, Any]:
        """The upstream request's template context with the gateway's secrets the route uses."""
        names = referenced(route.request_transform, route.graphql)
        if not names:
            return context
        if self.secrets is None:
            raise SecretUnavailable("This route's upstream credentials cannot be read on this deployment.")
        return {**context, "secrets": self.secrets.values(route.gateway_id, names)}

    def _call(
        self,
        route: DeployedRoute,
        settings: GatewaySettings,
        compiled: CompiledVersion,
        request: ProxyRequest,
        upstream_params: dict[str, str],
        context: dict[str, Any],
        exchange: _Exchange,
        caller_key: str,
    ) -> tuple[UpstreamAnswer, str]:
        """`upstream_params`: the path parameters as `_upstream_values` checked and encoded them."""
        context = self._with_secrets(route, context)  # only what goes upstream sees them
        method, headers, body = _upstream_request(route, request, context, exchange.correlation)
        headers[HOP_HEADER] = ", ".join([*exchange.hops, self.hop_id])
        upstream_path = paths.render(route.upstream_path or route.path, upstream_params)
        query = request.query
        if route.request_transform is not None and route.request_transform.query:
            from functions.routes.logic.transform.rules import apply_query_rules

            query = apply_query_rules(query, route.request_transform.query, context)
        query_string = urlencode([(k, v) for k, vs in query.items() for v in vs])
        balancer = compiled.balancers[route.route_id]
        health = self.serving.health()
        breaker_settings = settings.circuit_breaker
        breakers = self.breakers(breaker_settings.failure_threshold, breaker_settings.reset_timeout_seconds)
        order = balancer.order(caller_key, lambda t: health.get(t.url) != "down" and breakers.available(t.url))
        if not order:
            # Every target failed its health check: fail open (as load balancers do) rather than
            # refuse everything on the word of a probe; open circuits still keep traffic away.
            order = balancer.order(caller_key, lambda t: breakers.available(t.url))
        if not order:
            soonest = min(breakers.get(t.url).retry_after() for t in balancer.targets)
            raise DependencyUnavailable(
                "No healthy upstream target is available for this route; retry later.",
                code="upstream_unavailable",
                headers={"Retry-After": str(max(1, math.ceil(soonest)))},
            )
        retry = route.retry or settings.retry
        policy = RetryPolicy(retry.max_attempts, retry.initial_delay, retry.max_delay, retry.multiplier)
        idempotent = may_retry(request.method, "idempotency-key" in request.headers)
        timeout = route.timeout_seconds or settings.default_timeout_seconds
        deadline = Deadline(DEADLINE_SECONDS)
        if request.deadline_at is not None:
            deadline.ends = min(deadline.ends, request.deadline_at)
        failure: GatewayError | None = None
        last: tuple[UpstreamAnswer, str] | None = None
        attempt = 0
        while attempt < policy.max_attempts:
            target = order[attempt % len(order)]
            attempt += 1
            exchange.record.attempts = attempt
            breaker = breakers.get(target.url)
            budget = plan_attempt(deadline, timeout)
            if budget is None:
                if attempt == 1:
                    raise UpstreamTimeout("No time was left to call the upstream.", code="deadline_exceeded")
                break
            if not breaker.allow():
                if last is not None or failure is not None:
                    continue  # keep what the upstream last said or did; it is more telling
                failure = DependencyUnavailable(
                    "The upstream's circuit is open; retry later.",
                    code="upstream_unavailable",
                    headers={"Retry-After": str(max(1, int(breaker.retry_after())))},
                )
                continue
            url = target.url + upstream_path + (f"?{query_string}" if query_string else "")
            sent = True
            try:
                with balancer.in_flight(target):
                    answer = self.upstream.send(method, url, headers, body, budget)
            except BlockedDestination:
                breaker.record_failure()
                raise
            except UpstreamTimedOut:
                breaker.record_failure()
                failure = UpstreamTimeout(f"The upstream did not answer within {budget:.1f} s.")
            except UpstreamConnectFailed:
                breaker.record_failure()
                sent = False  # never reached the upstream: safe to try another target for any method
                failure = UpstreamError("The upstream could not be reached.", code="upstream_unreachable")
            except UpstreamRequestInvalid as error:
                breaker.release()  # our request could not be written: not the upstream's failure
                raise BadRequest(
                    "The request could not be sent upstream as HTTP/1.1.", code="invalid_request"
                ) from error
            except UpstreamTransportFailed:
                breaker.record_failure()
                failure = UpstreamError("The connection to the upstream failed.", code="upstream_unreachable")
            except BaseException:
                breaker.release()  # e.g. an answer too large: a half-open probe must not stay taken
                raise
            else:
                if answer.status >= 500:
                    breaker.record_failure()
                else:
                    breaker.record_success()
                if not (retryable_status(answer.status) and idempotent and attempt < policy.max_attempts):
                    return answer, target.url
                failure, last = None, (answer, target.url)
            if not (idempotent or not sent) or attempt >= policy.max_attempts:
                break
            delay = next_delay(policy, attempt, deadline, self.rng)
            if delay is None:
                break
            self.sleep(delay)
        if failure is None and last is not None:
            return last  # the upstream's own last answer (a 5xx after the retries) goes back as it is
        raise failure or UpstreamTimeout("The upstream did not answer in time.")

    def _problem(self, error: GatewayError, request: ProxyRequest, exchange: _Exchange) -> ProxyResponse:
        body = problem_from_error(error, request_id=request.request_id, instance="/gw" + request.path)
        headers = {"Content-Type": PROBLEM_CONTENT_TYPE, **error.headers}
        if error.status in (429, 503) and "Retry-After" not in headers:
            retry_after = error.extensions.get("retry_after")
            if retry_after:
                headers["Retry-After"] = str(retry_after)
        return ProxyResponse(error.status, headers, problem_json(body).encode())


# -- helpers (pure) ---------------------------------------------------------------------------


def _limits(spec: Any) -> traffic.Limits | None:
    if spec is None:
        return None
    return traffic.Limits(spec.per_minute, spec.per_hour, spec.per_day, spec.burst)


def _scope_name(key: str) -> str:
    return {"CLIENT": "client", "ROUTE": "route", "IP": "address", "GLOBAL": "global"}.get(key.split("#", 1)[0], key)


def _not_acceptable() -> NotAcceptable:
    return NotAcceptable(
        "This route answers application/json, application/xml or text/csv.",
        extensions={"available": list(accept.RENDERED)},
    )


def _renders(route: DeployedRoute) -> bool:
    """Whether the gateway renders this route's answer itself (so Accept must be one of ours)."""
    transform = route.response_transform
    return route.protocol != "rest" or (transform is not None and transform.body is not None)


def _upstream_values(route: DeployedRoute, params: dict[str, str]) -> dict[str, str]:
    """The path parameters, checked and percent-encoded for the upstream path (paths.upstream_values):
    none may climb out of it in any encoding; a 400 `invalid_path` otherwise, before anything runs."""
    try:
        return paths.upstream_values(route.path, params)
    except paths.InvalidPath as error:
        raise BadRequest(str(error), code="invalid_path") from error


# Request headers an upstream may vary its answer on that the cache key already holds.
_KEYED_VARY = frozenset({"accept", "accept-encoding", "origin"})


def _storable(answer: UpstreamAnswer) -> bool:
    """Whether the upstream lets a shared cache keep this answer (RFC 9111): not `private`,
    `no-store` or `no-cache`, no cookie, and no `Vary` on request headers the key does not hold."""
    headers = {k.lower(): v for k, v in answer.headers}
    directives = {d.strip().split("=", 1)[0].lower() for d in headers.get("cache-control", "").split(",")}
    if directives & {"private", "no-store", "no-cache"} or "set-cookie" in headers:
        return False
    varied = {v.strip().lower() for v in headers.get("vary", "").split(",") if v.strip()}
    return not (varied - _KEYED_VARY)


def _fits_lambda(body: bytes) -> bool:
    """Whether the body fits a Lambda proxy answer as it is written: text JSON-escaped (ASCII
    only, up to 6 bytes a character), binary base64-encoded."""
    if len(body) * 6 < MAX_LAMBDA_BODY_BYTES:
        return True
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return (len(body) + 2) // 3 * 4 < MAX_LAMBDA_BODY_BYTES
    return len(json.dumps(text)) < MAX_LAMBDA_BODY_BYTES


def _cacheable(route: DeployedRoute, method: str) -> bool:
    return route.cache_ttl_seconds > 0 and method in ("GET", "HEAD")


def _context(request: ProxyRequest, params: dict[str, str], correlation: str) -> dict[str, Any]:
    return {
        "query": {k: (v[0] if len(v) == 1 else v) for k, v in request.query.items()},
        "path": params,
        "headers": request.headers,
        "client": {"id": request.caller.client_id or "", "tier": request.caller.tier},
        "request": {"id": correlation, "method": request.method},
        "body": _LazyBody(request),
    }


class _LazyBody:
    """The request body, parsed only when a template or protocol needs it."""

    def __init__(self, request: ProxyRequest) -> None:
        self.request = request
        self._value: Any = None
        self._parsed = False

    def value(self) -> Any:
        if not self._parsed:
            from functions.routes.logic.transform.negotiation import parse_body

            self._value = parse_body(self.request.headers.get("content-type"), self.request.body)
            self._parsed = True
        return self._value


def _resolved(context: dict[str, Any]) -> dict[str, Any]:
    body = context.get("body")
    return {**context, "body": body.value() if isinstance(body, _LazyBody) else body}


def _upstream_request(
    route: DeployedRoute, request: ProxyRequest, context: dict[str, Any], correlation: str
) -> tuple[str, dict[str, str], bytes]:
    transform = route.request_transform
    forwardable = _forwardable(transform)
    headers = {k: v for k, v in request.headers.items() if k in forwardable}
    # Headers the caller's Connection header names are hop-by-hop too (RFC 9110 7.6.1).
    for name in request.headers.get("connection", "").split(","):
        headers.pop(name.strip().lower(), None)
    needs_body = route.protocol != "rest" or (transform is not None and transform.body is not None)
    _require_body(_body_templates(route), request, context)
    full = _resolved(context) if needs_body or _mentions_body(transform) else {**context, "body": None}
    if transform is not None and transform.headers:
        from functions.routes.logic.transform.rules import apply_header_rules

        headers = apply_header_rules(headers, transform.headers, full)
    method = request.method
    body = request.body
    if route.protocol == "soap" and route.soap is not None:
        from functions.routes.logic.transform import soap

        payload = _render(transform.body, full) if transform and transform.body is not None else full["body"]
        body, extra = soap.soap_request(payload, route.soap.config())
        headers = {k: v for k, v in headers.items() if k not in ("content-type", "soapaction")}
        headers.update(extra)
        method = "POST"
    elif route.protocol == "graphql" and route.graphql is not None:
        from functions.routes.logic.transform import graphql

        if route.graphql.variables is not None:
            variables = _render(route.graphql.variables, full)
        else:
            variables = full["body"] if isinstance(full["body"], dict) else {}
        body = graphql.graphql_request(variables, route.graphql.config())
        headers["content-type"] = "application/json"
        headers["accept"] = "application/json"
        method = "POST"
    elif transform is not None and transform.body is not None:
        body = jsonio.dumps_json(_render(transform.body, full))
        headers["content-type"] = "application/json"
    for name, value in headers.items():
        # Refused here, with the header named, rather than by the HTTP client mid-call.
        if not (_HEADER_NAME.fullmatch(name) and _HEADER_VALUE.fullmatch(value)):
            raise BadRequest(
                f"The header {name[:60]!r} cannot be forwarded: header names are tokens and values printable ASCII.",
                code="invalid_header",
            )
    headers["accept-encoding"] = _UPSTREAM_ACCEPT_ENCODING
    headers["x-request-id"] = correlation
    headers["x-forwarded-for"] = request.source_ip
    headers["x-gateway-client"] = request.caller.client_id or "anonymous"
    headers["x-gateway-route"] = route.route_id
    return method, headers, body


def _body_templates(route: DeployedRoute) -> list[Any]:
    """The templates that build what goes upstream from the caller's body."""
    if route.protocol == "graphql":
        return [route.graphql.variables] if route.graphql is not None and route.graphql.variables is not None else []
    transform = route.request_transform
    return [transform.body] if transform is not None and transform.body is not None else []


_BODY_MEDIA = ("", "application/json", "application/x-www-form-urlencoded")


def _require_body(templates: list[Any], request: ProxyRequest, context: dict[str, Any]) -> None:
    """A 400 before anything is sent when the body lacks what the templates read (fields without
    a `default`): `invalid_body` for no body or one that is not JSON (or a form), `missing_field`
    naming the JSON path of every field it lacks. Otherwise upstream would get nulls."""
    if not templates:
        return  # a pass-through route: no template module to import on its cold start
    from functions.routes.logic.transform.templates import body_reads, json_path, missing_fields

    reads = [read for template in templates for read in body_reads(template)]
    if not reads:
        return
    wanted = ", ".join(json_path(read) for read in reads)
    if not request.body:
        raise BadRequest(f"This route reads {wanted} from a JSON body; none was sent.", code="invalid_body")
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media not in _BODY_MEDIA and not media.endswith("+json"):
        raise BadRequest(f"This route reads {wanted} from a JSON body, not {media[:80]}.", code="invalid_body")
    lazy = context.get("body")
    try:
        body = lazy.value() if isinstance(lazy, _LazyBody) else lazy
    except GatewayError as error:
        raise BadRequest(f"This route reads {wanted} from a JSON body: {error.detail}", code="invalid_body") from error
    if any(read and isinstance(read[0], str) for read in reads) and not isinstance(body, dict):
        raise BadRequest(
            f"This route reads {wanted} from a JSON object; the body is {_json_kind(body)}.", code="invalid_body"
        )
    missing = missing_fields(body, reads)
    if missing:
        raise BadRequest(f"The body lacks {', '.join(missing)}.", code="missing_field", extensions={"missing": missing})


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _forwardable(transform: Any) -> frozenset[str]:
    """The allowlist, and the caller's headers the route's rules rename (the route named them)."""
    renamed = (transform.headers or {}).get("rename") if transform is not None else None
    if not renamed:
        return _FORWARDED
    return _FORWARDED | (frozenset(name.lower() for name in renamed) - _NEVER_FORWARDED)


def _mentions_body(transform: Any) -> bool:
    return transform is not None and "body." in str(transform.headers or "") + str(transform.query or "")


def _respond(
    route: DeployedRoute, request: ProxyRequest, answer: UpstreamAnswer, context: dict[str, Any]
) -> ProxyResponse:
    upstream_headers = {k.lower(): v for k, v in answer.headers}
    content_type = upstream_headers.get("content-type", "")
    value: Any = _NOTHING
    if route.protocol == "soap" and route.soap is not None:
        from functions.routes.logic.transform import soap

        value = soap.soap_response(answer.status, content_type, answer.body, route.soap.config())
        status = 200
    elif route.protocol == "graphql":
        from functions.routes.logic.transform import graphql

        value = graphql.graphql_response(answer.status, answer.body)
        status = 200
    else:
        status = answer.status
    transform = route.response_transform
    # None: the caller accepts nothing we render; a 406 only if we must render (not a pass-through).
    media = accept.negotiate(request.headers.get("accept"))
    is_json = "json" in content_type.lower()
    converts = media is not None and media != accept.JSON
    if value is _NOTHING and is_json and answer.body and (converts or (transform and transform.body is not None)):
        try:
            value = jsonio.loads_json(answer.body)
        except GatewayError as error:
            raise UpstreamError("The upstream's JSON could not be read.", code="upstream_unreadable") from error
    returned = [(k.lower(), v) for k, v in answer.headers]
    headers, more = _split_values([(k, v) for k, v in returned if k not in _NOT_RETURNED and not k.startswith(_OURS)])
    if value is not _NOTHING:
        if media is None:
            raise _not_acceptable()
        if transform is not None and transform.body is not None:
            value = _render(transform.body, {**_resolved(context), "body": value, "headers": upstream_headers})
        if media == accept.JSON:
            body = jsonio.dumps_json(value)
        else:
            from functions.routes.logic.transform.negotiation import render

            body = render(value, media)
        headers["content-type"] = media + ("; charset=utf-8" if media != accept.JSON else "")
    else:
        body = answer.body
    if transform is not None and transform.headers:
        from functions.routes.logic.transform.rules import apply_header_rules

        ruled = apply_header_rules(headers, transform.headers, {**context, "body": None, "headers": upstream_headers})
        more = _more_after_rules(headers, more, ruled, transform.headers)
        headers = ruled
    kept = _for_callers(headers)
    # A value the gateway rendered itself (content-type) or dropped has no further upstream values.
    more = tuple((_title(k), v) for k, v in more if k in kept and k != "content-type" and _for_callers({k: v}))
    return ProxyResponse(status, {_title(k): v for k, v in kept.items()}, body, more)


def _more_after_rules(
    before: dict[str, str], more: tuple[tuple[str, str], ...], after: dict[str, str], rules: dict[str, Any]
) -> tuple[tuple[str, str], ...]:
    """The further values of repeated headers once the route's rules ran: a rule acts on the whole
    header, so `remove` and `add` take every value, and `rename` moves them all."""
    renamed = {old.lower(): new.lower() for old, new in (rules.get("rename") or {}).items() if old.lower() in before}
    out: list[tuple[str, str]] = []
    for name, value in more:
        name = renamed.get(name, name)
        first = before.get(next((old for old, new in renamed.items() if new == name), name))
        if after.get(name) is not None and after.get(name) == first:
            out.append((name, value))
    return tuple(out)


_NOTHING: Any = object()
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\"]*)", re.IGNORECASE)


def _for_callers(headers: dict[str, str]) -> dict[str, str]:
    """The answer's headers (lower-case names) as a caller may get them, after the route's rules:
    CORS is the gateway's alone (its settings add their own headers), and a Location,
    Content-Location or Refresh pointing at a host callers must not be sent to (an internal
    address, a local name; ssrf.points_inside) is dropped. The status stays: the upstream may have
    acted already, and turning its answer into an error would invite a retry."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        if name.startswith("access-control-"):
            continue
        if name in ("location", "content-location") and points_inside(value):
            continue
        if name == "refresh" and points_inside(_refresh_target(value)):
            continue
        kept[name] = value
    return kept


def _refresh_target(value: str) -> str:
    found = _REFRESH_URL.search(value)
    return found.group(1) if found else ""


def _render(template: Any, context: dict[str, Any]) -> Any:
    from functions.routes.logic.transform.templates import render

    return render(template, context)


def _title(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


def _cors_headers(settings: GatewaySettings, origin: str | None) -> dict[str, str]:
    cors = settings.cors
    if cors is None or not origin:
        return {}
    if "*" in cors.allow_origins:
        allowed = "*"
    elif origin in cors.allow_origins:
        allowed = origin
    else:
        return {}
    headers = {"Access-Control-Allow-Origin": allowed}
    if allowed != "*":
        headers["Vary"] = "Origin"
    if cors.expose_headers:
        headers["Access-Control-Expose-Headers"] = ", ".join(cors.expose_headers)
    return headers


def _preflight(settings: GatewaySettings, origin: str | None) -> ProxyResponse:
    headers = _cors_headers(settings, origin)
    if headers and settings.cors is not None:
        headers["Access-Control-Allow-Methods"] = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
        headers["Access-Control-Allow-Headers"] = ", ".join(settings.cors.allow_headers)
        headers["Access-Control-Max-Age"] = str(settings.cors.max_age_seconds)
    return ProxyResponse(204, headers, b"")


def _deprecation_headers(route: DeployedRoute, compiled: CompiledVersion) -> dict[str, str]:
    """RFC 9745 `Deprecation` (a structured-field date) and RFC 8594 `Sunset` (an HTTP date)."""
    if route.deprecation_date is not None:
        since = datetime(
            route.deprecation_date.year, route.deprecation_date.month, route.deprecation_date.day, tzinfo=UTC
        )
    else:
        since = datetime.fromisoformat(compiled.version.created_at.replace("Z", "+00:00"))
    headers = {"Deprecation": f"@{int(since.timestamp())}"}
    if route.sunset_date is not None:
        sunset = datetime(route.sunset_date.year, route.sunset_date.month, route.sunset_date.day, tzinfo=UTC)
        headers["Sunset"] = format_datetime(sunset, usegmt=True)
    return headers
