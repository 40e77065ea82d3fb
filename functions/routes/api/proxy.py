"""`ANY /gw/{proxy+}`: the API Gateway event in, the proxy's answer out. The proxy itself
(functions/routes/logic/proxy.py) knows no events; this module only translates."""

from __future__ import annotations

import base64
import os
import threading
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from functions.routes.api.caller import caller
from functions.routes.dal.request_log_store import RequestLogStore
from functions.routes.dal.response_cache import ResponseCache
from functions.routes.dal.serving_cache import ServingCache
from functions.routes.dal.upstream import upstream_client
from functions.routes.logic.proxy import Proxy, ProxyCaller, ProxyRequest, ProxyResponse
from functions.routes.logic.traffic import Limits
from gateway_core import aws
from gateway_core.errors import GatewayError, problem_from_error, problem_json
from gateway_core.ratelimit.limiter import RateLimiter
from gateway_core.ratelimit.store import RateLimitStore
from gateway_core.settings import settings

logger = Logger()
PREFIX = "/gw"
_proxies: dict[tuple[str | None, ...], Proxy] = {}
_lock = threading.Lock()


def proxy() -> Proxy:
    """One proxy per container (and per environment: the local runtime runs several stacks'
    functions in one process): its caches, leases and circuit breakers live as long as it."""
    current = settings()
    key = (
        current.table_name,
        current.rate_limit_table_name,
        os.environ.get("GLOBAL_RATE_LIMIT_PER_SECOND"),
        os.environ.get("AWS_ENDPOINT_URL"),
    )
    with _lock:
        found = _proxies.get(key)
        if found is None:
            dynamodb = aws.client("dynamodb")
            found = _proxies[key] = Proxy(
                serving=ServingCache(dynamodb, current.table_name),
                limiter=RateLimiter(RateLimitStore(dynamodb, current.rate_limit_table_name)),
                upstream=upstream_client(),
                cache=ResponseCache(dynamodb, current.table_name),
                logs=RequestLogStore(dynamodb, current.table_name),
                global_per_second=int(os.environ.get("GLOBAL_RATE_LIMIT_PER_SECOND") or 0),
                on_log_failure=lambda error: logger.warning("request log not written", extra={"error": str(error)}),
                on_error=lambda error: logger.error("proxy failure", exc_info=error),
            )
    return found


def proxy_caller(event: APIGatewayProxyEvent) -> ProxyCaller:
    context = event.request_context.authorizer.raw_event or {}
    if not context.get("client_id"):
        return ProxyCaller(client_id=None)
    who = caller(event)  # also checks a certificate-bound token against this request's certificate
    return ProxyCaller(
        client_id=who.client_id,
        scopes=who.scopes,
        tier=who.tier or "free",
        credential_kind=who.credential_kind,
        credential_id=who.credential_id,
        key_limits=_key_limits(str(context.get("rate_limits") or "")),
    )


def _key_limits(value: str) -> Limits | None:
    """The authorizer's "<minute>/<hour>/<day>" for a key with its own limits."""
    parts = value.split("/")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        return None
    minute, hour, day = (int(p) for p in parts)
    return Limits(per_minute=minute, per_hour=hour, per_day=day)


def _headers(event: dict[str, Any]) -> dict[str, str]:
    multi = event.get("multiValueHeaders") or {}
    if multi:
        return {k.lower(): ", ".join(v) for k, v in multi.items() if v is not None}
    return {k.lower(): v for k, v in (event.get("headers") or {}).items() if v is not None}


def _body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def to_lambda_response(response: ProxyResponse) -> dict[str, Any]:
    try:
        text, encoded = response.body.decode("utf-8"), False
    except UnicodeDecodeError:
        # Binary answers reach clients as bytes only when the API lists binary media types.
        text, encoded = base64.b64encode(response.body).decode(), True
    return {"statusCode": response.status, "headers": response.headers, "body": text, "isBase64Encoded": encoded}


def handle(event: dict[str, Any]) -> dict[str, Any]:
    wrapped = APIGatewayProxyEvent(event)
    request_id = str(wrapped.request_context.request_id)
    path = str(event.get("path") or "")
    subpath = path[len(PREFIX) :] if path.startswith(PREFIX) else path
    try:
        who = proxy_caller(wrapped)
    except GatewayError as error:
        body = problem_from_error(error, request_id=request_id, instance=path)
        return {
            "statusCode": error.status,
            "headers": {"Content-Type": "application/problem+json", **error.headers},
            "body": problem_json(body),
        }
    request = ProxyRequest(
        method=str(event.get("httpMethod", "GET")).upper(),
        path=subpath or "/",
        query={k: list(v) for k, v in (event.get("multiValueQueryStringParameters") or {}).items()},
        headers=_headers(event),
        body=_body(event),
        source_ip=str(wrapped.request_context.identity.source_ip or ""),
        request_id=request_id,
        caller=who,
    )
    return to_lambda_response(proxy().handle(request))
