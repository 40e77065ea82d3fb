"""Who is calling, as the authorizer established it, and per-route scope checks.

The authorizer's policy covers the whole API (its result is cached across methods), so each
route states the scope it needs here, in the function, on every request.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from gateway_core.audit import Actor
from gateway_core.errors import Forbidden, Unauthorized


def actor(event: APIGatewayProxyEvent, *, required_scope: str) -> Actor:
    context = event.request_context.authorizer.raw_event or {}
    client_id = context.get("client_id")
    if not client_id:
        raise Unauthorized("No authenticated identity on this request.", code="no_identity")
    scopes = str(context.get("scopes", "")).split()
    if required_scope not in scopes:
        raise Forbidden(
            f"This operation needs the '{required_scope}' scope.",
            code="insufficient_scope",
            extensions={"required_scope": required_scope},
        )
    return Actor(
        client_id=str(client_id),
        credential_kind=str(context.get("credential_kind", "")),
        credential_id=str(context.get("credential_id", "")),
        request_id=str(event.request_context.request_id),
    )
