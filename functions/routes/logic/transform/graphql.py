"""REST to GraphQL: the route's query document with variables from a template, POSTed as
`{"query", "operationName", "variables"}`; the answer's `data` goes back, and any `errors` become
a 502 problem listing them (message, path and code only: upstream internals stay upstream)."""

from __future__ import annotations

import re
from typing import Any

from functions.routes.logic.transform.jsonio import dumps_json, loads_json
from functions.routes.logic.transform.templates import TemplateError, validate_template
from gateway_core.errors import GatewayError, UpstreamError

_OPERATION = re.compile(r"^\s*(query|mutation)\b|^\s*\{", re.S)
_NAMED = re.compile(r"\b(?:query|mutation)\s+([_A-Za-z][_0-9A-Za-z]*)")
MAX_ERRORS = 10


def validate_graphql_config(config: dict[str, Any]) -> None:
    query = str(config.get("query", ""))
    if not _OPERATION.match(query):
        raise TemplateError("the GraphQL document starts with 'query', 'mutation' or '{' (no subscriptions)")
    if query.count("{") != query.count("}") or query.count("(") != query.count(")"):
        raise TemplateError("the GraphQL document's braces or parentheses do not balance")
    name = config.get("operation_name")
    if name is not None and name not in _NAMED.findall(query):
        raise TemplateError(f"operation_name '{name}' is not an operation of the document")
    validate_template(config.get("variables"))


def graphql_request(variables: Any, config: dict[str, Any]) -> bytes:
    payload: dict[str, Any] = {"query": config["query"], "variables": variables if isinstance(variables, dict) else {}}
    if config.get("operation_name"):
        payload["operationName"] = config["operation_name"]
    return dumps_json(payload)


def _error(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        return {"message": str(entry)[:500]}
    out: dict[str, Any] = {"message": str(entry.get("message", ""))[:500]}
    if isinstance(entry.get("path"), list):
        out["path"] = [p if isinstance(p, int) else str(p) for p in entry["path"]][:20]
    code = (entry.get("extensions") or {}).get("code") if isinstance(entry.get("extensions"), dict) else None
    if code is not None:
        out["code"] = str(code)[:100]
    return out


def graphql_response(status: int, body: bytes) -> Any:
    """The answer's `data`; UpstreamError for GraphQL errors, an HTTP error or an unreadable body."""
    try:
        document = loads_json(body) if body else None
    except GatewayError as error:
        raise UpstreamError(
            f"The GraphQL upstream answered HTTP {status} without JSON.", code="upstream_unreadable"
        ) from error
    if not isinstance(document, dict):
        raise UpstreamError(
            f"The GraphQL upstream answered HTTP {status} without a result.", code="upstream_unreadable"
        )
    errors = document.get("errors")
    if errors:
        listed = [_error(e) for e in (errors if isinstance(errors, list) else [errors])][:MAX_ERRORS]
        raise UpstreamError(
            f"The GraphQL upstream reported {len(listed)} error(s): {listed[0]['message']}",
            code="upstream_graphql_error",
            extensions={"errors": listed},
        )
    if status >= 400 or document.get("data") is None:
        raise UpstreamError(f"The GraphQL upstream answered HTTP {status}.", code="upstream_error")
    return document["data"]
