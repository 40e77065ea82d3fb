"""mTLS authorizer (REQUEST type, results not cached by API Gateway): the client certificate API
Gateway verified on the mTLS custom domain must be registered to an active client."""

from __future__ import annotations

from typing import Any

from functions.authorizer.client_state import ClientStateCache
from functions.authorizer.core import Principal, client_cert_pem
from functions.authorizer.entry import Request, authorize, state_cache_seconds
from functions.authorizer.mtls import check_certificate

_clients = ClientStateCache(ttl_s=state_cache_seconds())


def check(request: Request) -> Principal:
    return check_certificate(
        request.dynamodb,
        request.table,
        _clients,
        client_cert_pem(request.event),
        source_ip=request.source_ip,
        now=request.now,
    )


def lambda_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    return authorize(event, "certificate", check)
