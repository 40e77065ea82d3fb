"""API key authorizer (REQUEST type, identity source: the x-api-key header)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger

from functions.authorizer.api_key import lookup_api_key
from functions.authorizer.core import Denied, Forbidden, allow, deny
from functions.authorizer.denylist import DenylistCache, denied
from gateway_core import aws
from gateway_core.settings import settings

logger = Logger()
# One per container; DENYLIST_CACHE_SECONDS (context `denylistCacheSeconds`) bounds how long a
# denylist change takes to reach a warm container.
_denylist = DenylistCache(ttl_s=float(os.environ.get("DENYLIST_CACHE_SECONDS", "30")))


def _header(event: dict[str, Any], name: str) -> str:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value or "")
    return ""


def lambda_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    source_ip = str(((event.get("requestContext") or {}).get("identity") or {}).get("sourceIp") or "")
    dynamodb, table = aws.client("dynamodb"), settings().table_name
    if denied(source_ip, _denylist.networks(dynamodb, table)):
        logger.info("address denied", extra={"reason": "ip_denied"})
        return deny("ip_denied", "anonymous", str(event["methodArn"]))
    try:
        principal = lookup_api_key(dynamodb, table, _header(event, "x-api-key"), source_ip=source_ip)
    except Denied as refused:
        # Reason only; never the key.
        logger.info("credential refused", extra={"reason": refused.reason, "kind": "api_key"})
        raise
    except Forbidden as forbidden:
        logger.info("credential not allowed", extra={"reason": forbidden.reason, "kind": "api_key"})
        return deny(forbidden.reason, forbidden.principal_id, str(event["methodArn"]))
    return allow(principal, str(event["methodArn"]))
