"""One error model for every handler: RFC 9457 problem details.

Domain code raises a `GatewayError` subclass; the HTTP glue in `gateway_core.http` turns it into
an `application/problem+json` response carrying a stable `type`/`code`, a human `detail` and the
request id. Nothing secret may be put in `detail` or `extensions`.
"""

from __future__ import annotations

import json
from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:gateway:problem:"


def problem_type(code: str) -> str:
    return f"{PROBLEM_TYPE_BASE}{code}"


class GatewayError(Exception):
    """Base of every error a handler may answer with; subclasses fix status, code and title."""

    status = 500
    code = "internal_error"
    title = "Internal Server Error"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        extensions: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extensions = dict(extensions or {})
        self.headers = dict(headers or {})


class BadRequest(GatewayError):
    status, code, title = 400, "bad_request", "Bad Request"


class ValidationFailed(GatewayError):
    status, code, title = 422, "validation_failed", "Unprocessable Content"


class Unauthorized(GatewayError):
    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(GatewayError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(GatewayError):
    status, code, title = 404, "not_found", "Not Found"


class MethodNotAllowed(GatewayError):
    status, code, title = 405, "method_not_allowed", "Method Not Allowed"


class NotAcceptable(GatewayError):
    status, code, title = 406, "not_acceptable", "Not Acceptable"


class Conflict(GatewayError):
    status, code, title = 409, "conflict", "Conflict"


class PreconditionFailed(GatewayError):
    """An `If-Match` (or `If-None-Match`) that does not hold for the resource as it is now."""

    status, code, title = 412, "precondition_failed", "Precondition Failed"


class PreconditionRequired(GatewayError):
    """A change of an existing resource sent without `If-Match` (RFC 6585 section 3)."""

    status, code, title = 428, "precondition_required", "Precondition Required"


class PayloadTooLarge(GatewayError):
    status, code, title = 413, "payload_too_large", "Content Too Large"


class UnsupportedMediaType(GatewayError):
    status, code, title = 415, "unsupported_media_type", "Unsupported Media Type"


class TooManyRequests(GatewayError):
    status, code, title = 429, "rate_limited", "Too Many Requests"


class UpstreamError(GatewayError):
    """The upstream answered with something we cannot pass on (5xx, a fault, an unreadable body)."""

    status, code, title = 502, "upstream_error", "Bad Gateway"


class DependencyUnavailable(GatewayError):
    status, code, title = 503, "dependency_unavailable", "Service Unavailable"


class UpstreamTimeout(GatewayError):
    status, code, title = 504, "upstream_timeout", "Gateway Timeout"


_RESERVED = frozenset({"type", "title", "status", "detail", "instance", "code", "request_id"})


def problem_body(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    request_id: str | None,
    instance: str | None = None,
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem document. Extension members never override the standard ones, even those
    this document leaves out."""
    body: dict[str, Any] = {k: v for k, v in (extensions or {}).items() if k not in _RESERVED}
    body.update(
        {
            "type": problem_type(code),
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        }
    )
    if instance:
        body["instance"] = instance
    if request_id:
        body["request_id"] = request_id
    return body


def problem_from_error(error: GatewayError, *, request_id: str | None, instance: str | None = None) -> dict[str, Any]:
    return problem_body(
        status=error.status,
        code=error.code,
        title=error.title,
        detail=error.detail,
        request_id=request_id,
        instance=instance,
        extensions=error.extensions,
    )


def problem_json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), sort_keys=True)
