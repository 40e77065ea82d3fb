"""The request log record of a proxied request (seed 004 api_request_logs), made safe to keep:
credentials and cookies are dropped from the headers, secret-looking query parameters and JSON
body members are masked, and the body sample is capped at 1 KB."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from functions.routes.logic.transform.jsonio import dumps_json, loads_json
from gateway_core.errors import GatewayError

SAMPLE_BYTES = 1024
RETENTION_SECONDS = 30 * 86_400
MASK = "***"
# Headers that carry credentials or session state: never stored, not even masked.
DROPPED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie", "x-amz-security-token"}
)
_SECRET_NAME = re.compile(
    r"pass|secret|token|key|pin|cvv|cvc|card|iban|account_?number|signature|otp|auth|credential|session|bearer|cookie",
    re.I,
)


def safe_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: (MASK if _SECRET_NAME.search(k) else v) for k, v in headers.items() if k.lower() not in DROPPED_HEADERS}


def safe_query(query: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: ([MASK] if _SECRET_NAME.search(k) else v) for k, v in query.items()}


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if _SECRET_NAME.search(str(k)) else _mask(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def body_sample(body: bytes, content_type: str | None) -> str:
    """The first 1 KB of the body; JSON and form bodies are masked before they are cut."""
    if not body:
        return ""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        return urlencode([(k, MASK if _SECRET_NAME.search(k) else v) for k, v in pairs])[:SAMPLE_BYTES]
    if "json" in media:
        try:
            # Exact numbers: a logged amount reads as it was sent.
            return dumps_json(_mask(loads_json(body))).decode()[:SAMPLE_BYTES]
        except (GatewayError, RecursionError):
            return "(JSON that could not be read; not kept)"
    return body[:SAMPLE_BYTES].decode("utf-8", errors="replace")


@dataclass
class RequestRecord:
    request_id: str
    at: str  # ISO 8601 UTC
    method: str
    path: str
    client_id: str
    client_ip: str
    user_agent: str
    correlation_id: str = ""  # the caller's own X-Request-Id, when it sent a usable one
    gateway_id: str = ""
    gateway_version: int = 0
    route_id: str = ""
    query_params: dict[str, list[str]] = field(default_factory=dict)
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body_size: int = 0
    request_body_sample: str = ""
    status_code: int = 0
    response_size: int = 0
    response_time_ms: int = 0
    upstream_service: str = ""
    attempts: int = 0
    cache: str = ""  # "hit", "miss" or "" (not cached)
    error_code: str = ""
    error_message: str = ""
    rate_limited: bool = False
    auth_failed: bool = False

    def item_fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in ("", None)}
