"""Helpers for the integration tests: proxy events, a fake Lambda context, response headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class FakeLambdaContext:
    function_name: str = "gateway-routes"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:gateway-routes"
    aws_request_id: str = "lambda-req-1"
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/gateway-routes"
    log_stream_name: str = "2026/11/22/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def proxy_event(
    method: str,
    path: str,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    authorizer: dict[str, Any] | None = None,
    request_id: str = "api-req-1",
) -> dict[str, Any]:
    """An API Gateway REST proxy event (payload format 1.0), as the data plane sends it."""
    all_headers = {"Accept": "application/json", "User-Agent": "pytest", **(headers or {})}
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": "abc123",
        "resourceId": "res1",
        "resourcePath": path,
        "stage": "prod",
        "requestId": request_id,
        "extendedRequestId": request_id,
        "requestTimeEpoch": 1_795_000_000_000,
        "path": f"/prod{path}",
        "protocol": "HTTP/1.1",
        "httpMethod": method,
        "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
        "identity": {"sourceIp": "127.0.0.1", "userAgent": "pytest"},
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": False,
    }


def response_header(response: dict[str, Any], name: str) -> str | None:
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return str(value)
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return str(values[-1])
    return None


# The authorizer context of an admin API key, as the management function receives it.
ADMIN = {
    "client_id": "admin-1",
    "scopes": "admin",
    "credential_kind": "api_key",
    "credential_id": "k1",
    "tier": "enterprise",
}
