"""API key authorizer (REQUEST type; identity sources: the x-api-key header and the source IP)."""

from __future__ import annotations

from typing import Any

from functions.authorizer.api_key import lookup_api_key
from functions.authorizer.core import Principal, header
from functions.authorizer.entry import Request, authorize


def check(request: Request) -> Principal:
    return lookup_api_key(
        request.dynamodb,
        request.table,
        header(request.event, "x-api-key"),
        now=request.now,
        source_ip=request.source_ip,
    )


def lambda_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    return authorize(event, "api_key", check)
