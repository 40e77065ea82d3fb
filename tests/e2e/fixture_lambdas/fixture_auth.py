"""TOKEN and REQUEST authorizers whose answer the token chooses; each call is recorded so tests
can count how often API Gateway (here: the local runtime) actually invoked them."""

from __future__ import annotations

from typing import Any

from fixture_recorder import record


def _policy(effect: str, resource: str, principal: str, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": context,
    }


def _api_wide(method_arn: str) -> str:
    return method_arn.split("/", 1)[0] + "/*/*"


def token_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    token = event["authorizationToken"].removeprefix("Bearer ")
    record("authorizer-token", {"token": token, "methodArn": event["methodArn"]})
    if token.startswith("allow-"):
        return _policy("Allow", _api_wide(event["methodArn"]), token[6:], {"who": token[6:], "level": 3, "ok": True})
    if token == "method-only":
        return _policy("Allow", event["methodArn"], "scoped", {"who": "scoped"})
    if token == "deny":
        return _policy("Deny", _api_wide(event["methodArn"]), "denied", {})
    if token == "bad-context":
        return _policy("Allow", _api_wide(event["methodArn"]), "bad", {"nested": {"not": "allowed"}})
    if token == "crash":
        raise RuntimeError("authorizer bug")
    raise Exception("Unauthorized")


def request_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    tenant = headers.get("x-tenant", "")
    record("authorizer-request", {"tenant": tenant, "query": event.get("queryStringParameters")})
    if tenant.startswith("tenant-"):
        return _policy("Allow", _api_wide(event["methodArn"]), tenant, {"tenant": tenant})
    raise Exception("Unauthorized")
