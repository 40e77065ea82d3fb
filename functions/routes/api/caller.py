"""Who is calling, as the authorizer established it, and per-route checks.

The authorizer's policy covers the whole API and API Gateway caches it per identity source
(not per certificate), so each request is checked here, in the function: the route's scope, and
for a certificate-bound token (RFC 8705) that this request presents the same certificate.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from gateway_core.audit import Actor
from gateway_core.cert_binding import client_cert_pem, pem_x5t_s256
from gateway_core.errors import Forbidden, Unauthorized


@dataclass(frozen=True)
class Caller:
    client_id: str
    credential_kind: str
    credential_id: str
    scopes: tuple[str, ...]
    tier: str
    certificate_bound: bool


def caller(event: APIGatewayProxyEvent) -> Caller:
    context = event.request_context.authorizer.raw_event or {}
    client_id = context.get("client_id")
    if not client_id:
        # Reached without an authorizer context: the method is misconfigured, not the caller.
        raise Unauthorized("No authenticated identity on this request.", code="no_identity")
    bound = str(context.get("cert_thumbprint") or "")
    if bound:
        presented = pem_x5t_s256(client_cert_pem(event.request_context))
        if not presented:
            raise Unauthorized(
                "This token is bound to a client certificate; call over mutual TLS with it.",
                code="certificate_required",
            )
        if not hmac.compare_digest(bound, presented):
            raise Unauthorized("This token is bound to another certificate.", code="certificate_mismatch")
    return Caller(
        client_id=str(client_id),
        credential_kind=str(context.get("credential_kind", "")),
        credential_id=str(context.get("credential_id", "")),
        scopes=tuple(str(context.get("scopes", "")).split()),
        tier=str(context.get("tier", "")),
        certificate_bound=bool(bound),
    )


def actor(event: APIGatewayProxyEvent, *, required_scope: str) -> Actor:
    who = caller(event)
    if required_scope not in who.scopes:
        raise Forbidden(
            f"This operation needs the '{required_scope}' scope.",
            code="insufficient_scope",
            extensions={"required_scope": required_scope},
        )
    return Actor(
        client_id=who.client_id,
        credential_kind=who.credential_kind,
        credential_id=who.credential_id,
        request_id=str(event.request_context.request_id),
    )
