"""The flow every authorizer shares: the global IP denylist first, then the credential check of
its kind, then an Allow for the whole API, a Deny carrying the reason (403), or "Unauthorized"
(401). Logs carry the kind and the reason, never the credential."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from functions.authorizer.core import Denied, Forbidden, Principal, allow, deny, source_ip
from functions.authorizer.denylist import DenylistCache, denied
from gateway_core import aws
from gateway_core.logs import service_logger
from gateway_core.settings import settings

logger = service_logger()


def state_cache_seconds() -> float:
    """How long a warm container may reuse what it read of the denylist, clients and issuers
    (context `denylistCacheSeconds`, default 0). Admin changes flush API Gateway's cache, but an
    authorizer that answers from a stale container cache right after the flush puts the stale
    answer back into API Gateway's cache for the whole TTL: so by default nothing is reused, and
    every decision API Gateway did not cache reads the current state."""
    return float(os.environ.get("DENYLIST_CACHE_SECONDS", "0"))


# One per container.
_denylist = DenylistCache(ttl_s=state_cache_seconds())


class Request:
    """What a credential check needs from the authorizer event and the environment."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self.source_ip = source_ip(event)
        self.dynamodb = aws.client("dynamodb")
        self.table = settings().table_name
        self.now = datetime.now(UTC)


Check = Callable[[Request], Principal]


def authorize(event: dict[str, Any], kind: str, check: Check) -> dict[str, Any]:
    method_arn = str(event["methodArn"])
    request = Request(event)
    if denied(request.source_ip, _denylist.networks(request.dynamodb, request.table)):
        logger.info("address denied", extra={"reason": "ip_denied", "kind": kind})
        return deny("ip_denied", "anonymous", method_arn)
    try:
        principal = check(request)
    except Denied as refused:
        logger.info("credential refused", extra={"reason": refused.reason, "kind": kind})
        raise
    except Forbidden as forbidden:
        logger.info("credential not allowed", extra={"reason": forbidden.reason, "kind": kind})
        return deny(forbidden.reason, forbidden.principal_id, method_arn)
    return allow(principal, method_arn)
