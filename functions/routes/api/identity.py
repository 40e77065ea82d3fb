"""GET /api/v1/whoami: the caller as the authorizer saw it (client, scopes, tier, credential kind)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.routes.api.models import IdentityOut
from gateway_core.errors import Unauthorized

router = APIGatewayRouter()


@router.get("/api/v1/whoami", tags=["identity"], summary="The identity behind the presented credential")
def whoami() -> IdentityOut:
    context = router.current_event.request_context.authorizer.raw_event or {}
    client_id = context.get("client_id")
    if not client_id:
        # Reached without an authorizer context: the method is misconfigured, not the caller.
        raise Unauthorized("No authenticated identity on this request.", code="no_identity")
    scopes = str(context.get("scopes", "")).split()
    return IdentityOut(
        client_id=str(client_id),
        credential_kind=str(context.get("credential_kind", "")),
        scopes=scopes,
        tier=str(context.get("tier", "")),
    )
