"""API Gateway's REST data plane for Lambda proxy integrations (payload format 1.0) and MOCK
integrations.

moto models REST APIs but does not serve AWS_PROXY integrations, so this is the data plane:
route matching, Lambda authorizers (TOKEN and REQUEST, with the result cache keyed by identity
sources and the cached policy re-evaluated against each new method ARN, as API Gateway does),
the proxy event and response mapping, the 29 s integration timeout, payload limits, MOCK
integrations with static templates (the template's 405 answers), and API Gateway's own errors
rendered through the template's gateway responses.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from infra.local.api_model import ApiModel, Authorizer, Method, MockIntegration, match
from infra.local.lambdas import FunctionError, FunctionThrottled, FunctionTimeout, LambdaRuntime
from infra.local.moto_host import ACCOUNT_ID

log = logging.getLogger("local.apigateway")
access_log = logging.getLogger("local.access")

INTEGRATION_TIMEOUT_S = 29.0
MAX_REQUEST_BYTES = 10 * 1024 * 1024
MAX_LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024
# The methods a REST API can define (ANY stands for all of them). A method is case-sensitive
# (RFC 9110 section 9.1): `get`, TRACE, PROPFIND or ANY itself as a request's method match no
# method of any resource, so they get the MISSING_AUTHENTICATION_TOKEN gateway response.
API_GATEWAY_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

# API Gateway's built-in answers when the API defines no gateway response of that type.
_DEFAULTS: dict[str, tuple[int, str]] = {
    "UNAUTHORIZED": (401, "Unauthorized"),
    "ACCESS_DENIED": (403, "User is not authorized to access this resource"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "Unsupported Media Type"),
    "API_CONFIGURATION_ERROR": (500, "Internal server error"),
    "AUTHORIZER_FAILURE": (500, "Internal server error"),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, "Internal server error"),
    "INTEGRATION_FAILURE": (502, "Internal server error"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out"),
}


# RFC 9110 section 5: a field name is a token; a value is visible ASCII, obs-text (0x80-0xFF),
# spaces and tabs. Anything else (CR, LF, NUL, other controls, characters past Latin-1 such as
# U+2028) cannot be written as HTTP/1.1 header bytes, or would split the header.
_FIELD_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def valid_header(name: str, value: str) -> bool:
    return bool(_FIELD_NAME.fullmatch(name)) and bool(_FIELD_VALUE.fullmatch(value))


@dataclass
class HttpRequest:
    method: str
    target: str  # path and query as sent
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    client_cert: dict[str, Any] | None = None
    too_large: bool = False


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class _AuthResult:
    principal_id: str
    policy: dict[str, Any]
    context: dict[str, Any]


class GatewayFailure(Exception):
    def __init__(
        self, response_type: str, message: str | None = None, authorizer: dict[str, Any] | None = None
    ) -> None:
        super().__init__(response_type)
        self.response_type = response_type
        self.message = message
        self.authorizer = authorizer or {}


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    statements = policy.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def policy_allows(policy: dict[str, Any], method_arn: str) -> bool:
    """IAM evaluation for execute-api:Invoke: an explicit Deny wins, else an Allow is needed."""
    allowed = False
    for statement in _statements(policy):
        actions = _as_list(statement.get("Action"))
        # IAM action names are case-insensitive; resources are not.
        if not any(fnmatch.fnmatchcase("execute-api:invoke", a.lower()) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(method_arn, r) for r in _as_list(statement.get("Resource"))):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed


class AuthorizerCache:
    """Results per (authorizer, identity values) for the authorizer's TTL."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, tuple[str, ...]], tuple[float, _AuthResult]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, tuple[str, ...]]) -> _AuthResult | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] < time.monotonic():
                self._entries.pop(key, None)
                return None
            return entry[1]

    def put(self, key: tuple[str, tuple[str, ...]], ttl: int, result: _AuthResult) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl, result)

    def flush(self) -> int:
        """FlushStageAuthorizersCache."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count


class RestApiDataPlane:
    def __init__(self, api: ApiModel, lambdas: LambdaRuntime, domain: str) -> None:
        self.api = api
        self.lambdas = lambdas
        self.domain = domain
        self.authorizer_cache = AuthorizerCache()
        self.authorizer_invocations = 0
        self.integration_timeout_s = INTEGRATION_TIMEOUT_S

    # -- entry --------------------------------------------------------------------------
    def handle(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        split = urlsplit(request.target)
        path = unquote(split.path) or "/"
        try:
            response = self._handle(request, request_id, path, split.query)
        except GatewayFailure as failure:
            response = self._gateway_response(
                failure.response_type, request_id, failure.message, failure.authorizer, request.headers
            )
        except Exception:
            log.exception("local API Gateway failed")
            response = self._gateway_response(
                "DEFAULT_5XX", request_id, "Internal server error", request_headers=request.headers
            )
        response.headers.append(("x-amzn-RequestId", request_id))
        access_log.info(
            json.dumps(
                {
                    "requestId": request_id,
                    "ip": request.source_ip,
                    "httpMethod": request.method,
                    "path": path,
                    "status": response.status,
                    "responseLength": len(response.body),
                    "latencyMs": round((time.perf_counter() - started) * 1000, 1),
                }
            )
        )
        return response

    def _handle(self, request: HttpRequest, request_id: str, path: str, query: str) -> HttpResponse:
        if request.too_large or len(request.body) > MAX_REQUEST_BYTES:
            raise GatewayFailure("REQUEST_TOO_LARGE")
        found = match(self.api.root, path)
        method: Method | None = None
        params: dict[str, str] = {}
        if found and request.method in API_GATEWAY_METHODS:
            node, params = found
            method = node.methods.get(request.method) or node.methods.get("ANY")
        if method is None:
            raise GatewayFailure("MISSING_AUTHENTICATION_TOKEN")
        headers = _merged_headers(request.headers)
        queries = _multi(parse_qsl(query, keep_blank_values=True))
        method_arn = self.api.method_arn(request.method, path)
        context = self._request_context(request, request_id, method, path)
        authorizer_context: dict[str, Any] = {}
        if method.authorization_type == "CUSTOM" and method.authorizer is not None:
            auth = self._authorize(method.authorizer, request, method, method_arn, headers, queries, params, context)
            authorizer_context = {**auth.context, "principalId": auth.principal_id}
        if authorizer_context:
            context["authorizer"] = authorizer_context
        if method.integration_type == "MOCK" and method.mock is not None:
            return self._mock(method.mock, request, context)
        if method.integration_type != "AWS_PROXY" or not method.function:
            # Only Lambda proxy and MOCK integrations are served locally (README: local vs AWS).
            raise GatewayFailure("INTEGRATION_FAILURE", "Only AWS_PROXY Lambda and MOCK integrations run locally")
        event = self._proxy_event(request, method, path, headers, queries, params, context)
        accept = _last(request.headers, "accept")
        return self._integrate(method.function, event, accept)

    # -- authorizers --------------------------------------------------------------------
    def _identity(
        self,
        authorizer: Authorizer,
        headers: dict[str, list[str]],
        queries: dict[str, list[str]],
        request_context: dict[str, Any],
    ) -> tuple[str, ...] | None:
        values = []
        lower_headers = {k.lower(): v for k, v in headers.items()}
        for source in authorizer.identity_sources:
            value: str | None = None
            if source.startswith("method.request.header."):
                found = lower_headers.get(source.removeprefix("method.request.header.").lower())
                value = found[-1] if found else None
            elif source.startswith("method.request.querystring."):
                found = queries.get(source.removeprefix("method.request.querystring."))
                value = found[-1] if found else None
            elif source.startswith("context."):
                value = _context_value(request_context, source.removeprefix("context."))
            elif source.startswith("stageVariables."):
                value = source  # no stage variables locally: static, identical for every caller
            if not value:
                return None
            values.append(value)
        return tuple(values)

    def _authorize(
        self,
        authorizer: Authorizer,
        request: HttpRequest,
        method: Method,
        method_arn: str,
        headers: dict[str, list[str]],
        queries: dict[str, list[str]],
        params: dict[str, str],
        context: dict[str, Any],
    ) -> _AuthResult:
        identity = self._identity(authorizer, headers, queries, context)
        if identity is None:
            # A missing identity source is refused before the authorizer runs.
            raise GatewayFailure("UNAUTHORIZED")
        validation = authorizer.validation_expression if authorizer.kind == "TOKEN" else None
        if validation and not re.fullmatch(validation, identity[0]):
            raise GatewayFailure("UNAUTHORIZED")
        cache_key = (authorizer.logical_id, identity)
        cached = self.authorizer_cache.get(cache_key) if authorizer.ttl_seconds > 0 else None
        result = cached or self._invoke_authorizer(
            authorizer, request, method, method_arn, headers, queries, params, context, identity
        )
        if cached is None and authorizer.ttl_seconds > 0:
            self.authorizer_cache.put(cache_key, authorizer.ttl_seconds, result)
        if not policy_allows(result.policy, method_arn):
            raise GatewayFailure("ACCESS_DENIED", authorizer={**result.context, "principalId": result.principal_id})
        return result

    def _invoke_authorizer(
        self,
        authorizer: Authorizer,
        request: HttpRequest,
        method: Method,
        method_arn: str,
        headers: dict[str, list[str]],
        queries: dict[str, list[str]],
        params: dict[str, str],
        context: dict[str, Any],
        identity: tuple[str, ...],
    ) -> _AuthResult:
        if authorizer.kind == "TOKEN":
            event: dict[str, Any] = {"type": "TOKEN", "authorizationToken": identity[0], "methodArn": method_arn}
        else:
            event = {
                "type": "REQUEST",
                "methodArn": method_arn,
                "resource": method.resource_path,
                "path": context["path"],
                "httpMethod": request.method,
                "headers": _single(headers),
                "multiValueHeaders": headers,
                "queryStringParameters": _single(queries),
                "multiValueQueryStringParameters": queries,
                "pathParameters": params,
                "stageVariables": {},
                "requestContext": context,
            }
        self.authorizer_invocations += 1
        try:
            output = self.lambdas.invoke(authorizer.function, event, timeout=INTEGRATION_TIMEOUT_S)
        except FunctionError as error:
            if error.payload.get("errorMessage") == "Unauthorized":
                raise GatewayFailure("UNAUTHORIZED") from error
            raise GatewayFailure("AUTHORIZER_FAILURE") from error
        except (FunctionTimeout, FunctionThrottled) as error:
            raise GatewayFailure("AUTHORIZER_FAILURE") from error
        if (
            not isinstance(output, dict)
            or "principalId" not in output
            or not isinstance(output.get("policyDocument"), dict)
        ):
            raise GatewayFailure("AUTHORIZER_CONFIGURATION_ERROR")
        auth_context = output.get("context") or {}
        # API Gateway accepts only strings, numbers and booleans as context values.
        if not isinstance(auth_context, dict) or any(
            isinstance(v, (dict, list)) or v is None for v in auth_context.values()
        ):
            raise GatewayFailure("AUTHORIZER_CONFIGURATION_ERROR")
        return _AuthResult(str(output["principalId"]), output["policyDocument"], auth_context)

    # -- integration --------------------------------------------------------------------
    def _request_context(self, request: HttpRequest, request_id: str, method: Method, path: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        header_map = {k.lower(): v for k, v in request.headers}
        return {
            "accountId": ACCOUNT_ID,
            "apiId": self.api.api_id,
            "resourceId": method.resource_id,
            "resourcePath": method.resource_path,
            "stage": self.api.stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "path": path,
            "protocol": "HTTP/1.1",
            "httpMethod": request.method,
            "domainName": self.domain,
            "domainPrefix": self.domain.split(".")[0],
            "identity": {
                "sourceIp": request.source_ip,
                "userAgent": header_map.get("user-agent"),
                "clientCert": request.client_cert,
                "accountId": None,
                "apiKey": None,
                "apiKeyId": None,
                "caller": None,
                "user": None,
                "userArn": None,
                "accessKey": None,
                "cognitoIdentityPoolId": None,
                "cognitoIdentityId": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "principalOrgId": None,
            },
        }

    def _proxy_event(
        self,
        request: HttpRequest,
        method: Method,
        path: str,
        headers: dict[str, list[str]],
        queries: dict[str, list[str]],
        params: dict[str, str],
        context: dict[str, Any],
    ) -> dict[str, Any]:
        body: str | None = None
        is_base64 = False
        if request.body:
            content_type = _last(request.headers, "content-type")
            if is_binary(self.api.binary_media_types, content_type or "application/json"):
                body, is_base64 = base64.b64encode(request.body).decode(), True
            else:
                # A text payload: API Gateway passes the bytes on as a string (invalid UTF-8 is
                # not representable in the JSON event and arrives replaced).
                body = request.body.decode("utf-8", errors="replace")
        return {
            "resource": method.resource_path,
            "path": path,
            "httpMethod": request.method,
            "headers": _single(headers) or None,
            "multiValueHeaders": headers or None,
            "queryStringParameters": _single(queries) or None,
            "multiValueQueryStringParameters": queries or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": context,
            "body": body,
            "isBase64Encoded": is_base64,
        }

    def _integrate(self, function: str, event: dict[str, Any], accept: str | None = None) -> HttpResponse:
        try:
            output = self.lambdas.invoke(function, event, timeout=self.integration_timeout_s)
        except FunctionTimeout as error:
            # A function that hits its own (shorter) timeout fails like any function error: 502.
            raise GatewayFailure("INTEGRATION_FAILURE" if error.by_function else "INTEGRATION_TIMEOUT") from error
        except FunctionError as error:
            log.warning("function %s failed: %s", function, error.payload.get("errorMessage"))
            raise GatewayFailure("INTEGRATION_FAILURE") from error
        except FunctionThrottled as error:
            # API Gateway answers a throttled Lambda as an integration failure.
            log.warning("function %s throttled: %s", function, error)
            raise GatewayFailure("INTEGRATION_FAILURE") from error
        if not isinstance(output, dict) or not isinstance(output.get("statusCode"), int):
            log.warning("function %s returned a malformed proxy response", function)
            raise GatewayFailure("INTEGRATION_FAILURE", "Malformed Lambda proxy response")
        raw_body = str(output.get("body") or "")
        if len(raw_body.encode()) > MAX_LAMBDA_RESPONSE_BYTES:
            raise GatewayFailure("INTEGRATION_FAILURE", "Lambda response exceeds 6 MB")
        headers: list[tuple[str, str]] = []
        multi = output.get("multiValueHeaders") or {}
        single = output.get("headers") or {}
        if not isinstance(multi, dict) or not isinstance(single, dict):
            raise GatewayFailure("INTEGRATION_FAILURE", "Malformed Lambda proxy response")
        for name, values in multi.items():
            if not isinstance(values, list):
                raise GatewayFailure("INTEGRATION_FAILURE", "Malformed Lambda proxy response")
            headers.extend((str(name), str(v)) for v in values)
        for name, value in single.items():
            # API Gateway merges both maps into one list; a pair in both appears once.
            if str(value) not in [str(v) for v in multi.get(name, [])]:
                headers.append((str(name), str(value)))
        if not all(valid_header(name, value) for name, value in headers):
            # API Gateway answers a proxy response it cannot turn into HTTP as a malformed one.
            log.warning("function %s returned a header HTTP cannot carry", function)
            raise GatewayFailure("INTEGRATION_FAILURE", "Malformed Lambda proxy response")
        body = raw_body.encode()
        if output.get("isBase64Encoded"):
            # Decoded only when the caller's first Accept type (else the answer's Content-Type)
            # is a binary media type of the API; otherwise the base64 text goes out as it is.
            content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
            first_accept = accept.split(",")[0].strip() if accept else None
            if is_binary(self.api.binary_media_types, first_accept or content_type):
                try:
                    body = base64.b64decode(raw_body, validate=True)
                except ValueError as error:
                    raise GatewayFailure("INTEGRATION_FAILURE", "Malformed Lambda proxy response") from error
        return HttpResponse(int(output["statusCode"]), headers, body)

    def _mock(self, mock: MockIntegration, request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
        """A MOCK integration as API Gateway runs it: the integration request (the template for
        the request's Content-Type, application/json when it has none; else the body, as the
        passthrough behaviour allows) carries a statusCode; the integration response whose
        selection pattern matches it, else the default one, gives the status, its response
        parameters the headers and its template (chosen by Accept) the body. A mock reads
        nothing else of the request and calls nothing."""
        content_type = (_last(request.headers, "content-type") or "application/json").split(";")[0].strip().lower()
        template = mock.request_templates.get(content_type)
        if template is not None:
            payload = _render_context(template, context)
        elif mock.passthrough_behavior == "NEVER" or (
            mock.passthrough_behavior == "WHEN_NO_TEMPLATES" and mock.request_templates
        ):
            raise GatewayFailure("UNSUPPORTED_MEDIA_TYPE")
        else:
            payload = request.body.decode("utf-8", errors="replace")
        # Without a statusCode the mock answers 200 (not documented by AWS; the template's 405
        # methods have only a default response, which answers whatever the status).
        found = re.search(r'"?statusCode"?\s*:\s*"?(\d{3})', payload)
        status = found.group(1) if found else "200"
        chosen = next(
            (r for r in mock.responses if r.selection_pattern and re.fullmatch(r.selection_pattern, status)),
            next((r for r in mock.responses if r.selection_pattern is None), None),
        )
        if chosen is None:
            # API Gateway: no match for output mapping and no default output mapping configured.
            raise GatewayFailure("API_CONFIGURATION_ERROR")
        body, media_type = b"", "application/json"
        if chosen.templates:
            media_type = _template_for(chosen.templates, _last(request.headers, "accept"))
            body = _render_context(chosen.templates[media_type], context).encode()
        headers = [("Content-Type", media_type)]
        for name, source in chosen.parameters.items():
            if source.startswith("'"):
                value: str | None = source[1:-1]
            else:
                value = _context_value(context, source.removeprefix("context."))
            if value is None:
                continue  # an unset context variable: API Gateway omits the header
            if name.lower() == "content-type":
                headers[0] = ("Content-Type", value)
            else:
                headers.append((name, value))
        return HttpResponse(int(chosen.status_code), headers, body)

    # -- gateway responses --------------------------------------------------------------
    def _gateway_response(
        self,
        response_type: str,
        request_id: str,
        message: str | None,
        authorizer: dict[str, Any] | None = None,
        request_headers: list[tuple[str, str]] | None = None,
    ) -> HttpResponse:
        default_status, default_message = _DEFAULTS.get(response_type, (500, "Internal server error"))
        message = message or default_message
        status = default_status
        family = "DEFAULT_4XX" if default_status < 500 else "DEFAULT_5XX"
        configured = self.api.gateway_responses.get(response_type) or self.api.gateway_responses.get(family)
        if configured is None:
            body = json.dumps({"message": message}).encode()
            return HttpResponse(status, [("Content-Type", "application/json")], body)
        if response_type in self.api.gateway_responses and configured.status:
            status = configured.status
        content_type, template = next(
            iter(configured.templates.items()), ("application/json", '{"message":$context.error.messageString}')
        )
        rendered = _render(template, request_id, message, response_type, authorizer or {})
        headers = [("Content-Type", content_type)]
        for name, source in configured.headers.items():
            value = _response_parameter(source, request_headers or [])
            if value is None:
                continue  # a mapped request header that is absent: API Gateway omits the header
            if name.lower() == "content-type":
                headers[0] = ("Content-Type", value)
            else:
                headers.append((name, value))
        return HttpResponse(status, headers, rendered.encode())


def is_binary(binary_media_types: tuple[str, ...], media_type: str | None) -> bool:
    """Whether a media type (parameters ignored) matches one of the API's binary media types,
    which may hold wildcards (`image/*`, `*/*`)."""
    if not media_type or not binary_media_types:
        return False
    bare = media_type.split(";")[0].strip().lower()
    return any(fnmatch.fnmatchcase(bare, pattern.lower()) for pattern in binary_media_types)


def _response_parameter(source: str, request_headers: list[tuple[str, str]]) -> str | None:
    """A gateway response header value: a 'quoted literal' or method.request.header.<name>."""
    if source.startswith("'") and source.endswith("'") and len(source) >= 2:
        return source[1:-1]
    if source.startswith("method.request.header."):
        wanted = source.removeprefix("method.request.header.").lower()
        return next((v for k, v in reversed(request_headers) if k.lower() == wanted), None)
    return source  # other mappings are not used by our templates; passed through as written


def _template_for(templates: dict[str, str], accept: str | None) -> str:
    """The response template API Gateway applies: the first Accept media type that has one, else
    application/json's, else the first defined."""
    for media_range in (accept or "").split(","):
        wanted = media_range.split(";")[0].strip().lower()
        if wanted in templates:
            return wanted
    return "application/json" if "application/json" in templates else next(iter(templates))


def _render_context(template: str, context: dict[str, Any]) -> str:
    """A template's $context variables substituted (unset ones render empty, as in API Gateway);
    infra/local/api_model.py refuses MOCK templates that use anything else."""
    return re.sub(
        r"\$context\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)",
        lambda m: _context_value(context, m.group(1)) or "",
        template,
    )


def _context_value(context: dict[str, Any], dotted: str) -> str | None:
    """$context variables as identity sources, e.g. context.identity.sourceIp."""
    value: Any = context
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return None if value is None else str(value)


def _render(template: str, request_id: str, message: str, response_type: str, authorizer: dict[str, Any]) -> str:
    # Unset $context variables render empty, as in API Gateway's templates.
    template = re.sub(
        r"\$context\.authorizer\.([A-Za-z0-9_]+)", lambda m: str(authorizer.get(m.group(1), "")), template
    )
    values = {
        "$context.error.messageString": json.dumps(message),
        "$context.error.message": message,
        "$context.error.responseType": response_type,
        "$context.requestId": request_id,
    }
    for variable in sorted(values, key=len, reverse=True):
        template = template.replace(variable, values[variable])
    return template


def _last(pairs: list[tuple[str, str]], name: str) -> str | None:
    """A request header's value as `headers` holds it: the last one sent, names without case."""
    return next((v for k, v in reversed(pairs) if k.lower() == name), None)


def _merged_headers(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """`multiValueHeaders` as API Gateway builds them: header names are case-insensitive, so
    `X-Api-Key` and `x-api-key` are one header (named as first sent) with every value in order;
    `headers` then holds its last value, which is also what an identity source reads (one value
    for the authorizer, its cache key and the function alike)."""
    merged: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for name, value in pairs:
        merged.setdefault(names.setdefault(name.lower(), name), []).append(value)
    return merged


def _multi(pairs: Any) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for name, value in pairs:
        result.setdefault(name, []).append(value)
    return result


def _single(multi: dict[str, list[str]]) -> dict[str, str]:
    return {name: values[-1] for name, values in multi.items()}
