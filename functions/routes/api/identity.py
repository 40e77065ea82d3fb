"""The caller as the authorizer saw it (client, scopes, tier, credential kind), once per
credential kind: GET /api/v1/whoami (API key), /api/v1/whoami/token (bearer token: ours or an
external issuer's, certificate-bound ones over mTLS only), /api/v1/whoami/certificate (mTLS).
A developer's first call, and the quickest way to see what a credential is worth."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.routes.api.models import IdentityOut
from gateway_core.api_caller import caller

router = APIGatewayRouter()


def _identity() -> IdentityOut:
    who = caller(router.current_event)
    return IdentityOut(
        client_id=who.client_id,
        credential_kind=who.credential_kind,
        scopes=list(who.scopes),
        tier=who.tier,
        certificate_bound=who.certificate_bound,
    )


@router.get("/api/v1/whoami", tags=["identity"], summary="The identity behind an API key")
def whoami() -> IdentityOut:
    return _identity()


@router.get("/api/v1/whoami/token", tags=["identity"], summary="The identity behind a bearer token")
def whoami_token() -> IdentityOut:
    return _identity()


@router.get("/api/v1/whoami/certificate", tags=["identity"], summary="The identity behind a client certificate")
def whoami_certificate() -> IdentityOut:
    return _identity()
