"""API key authorizer (REQUEST type, identity source: the x-api-key header)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from functions.authorizer.api_key import lookup_api_key
from functions.authorizer.core import Denied, Forbidden, allow, deny
from gateway_core import aws
from gateway_core.settings import settings

logger = Logger()


def _header(event: dict[str, Any], name: str) -> str:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value or "")
    return ""


def lambda_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    try:
        source_ip = str(((event.get("requestContext") or {}).get("identity") or {}).get("sourceIp") or "")
        principal = lookup_api_key(
            aws.client("dynamodb"), settings().table_name, _header(event, "x-api-key"), source_ip=source_ip
        )
    except Denied as denied:
        # Reason only; never the key.
        logger.info("credential refused", extra={"reason": denied.reason, "kind": "api_key"})
        raise
    except Forbidden as forbidden:
        logger.info("credential not allowed", extra={"reason": forbidden.reason, "kind": "api_key"})
        return deny(forbidden.reason, forbidden.principal_id, str(event["methodArn"]))
    return allow(principal, str(event["methodArn"]))
