"""OAuth 2.0 and discovery: POST /oauth2/token (client credentials), GET /.well-known/jwks.json,
GET /.well-known/openid-configuration (RFC 8414 fields). Public: the client authenticates itself
at the token endpoint. Events in, answers out; the grant's rules are logic/oauth.py and what it
reads and signs with comes from oauth_bootstrap.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from functions.routes.dal.signing import ALGORITHM
from functions.routes.logic import oauth
from functions.routes.logic.catalog import SCOPES
from gateway_core.clock import utc_now
from gateway_core.endpoints import Reply, Request
from gateway_core.settings import settings

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PUBLIC = {"Cache-Control": "public, max-age=300"}


class Signer(Protocol):
    def sign(self, claims: dict[str, Any]) -> str: ...

    def public_jwk(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Services:
    clients: oauth.ClientLookup
    certificates: oauth.CertificateLookup
    signer: Callable[[str], Signer]  # by KMS key id


def _oauth_error(error: oauth.OAuthError) -> Reply:
    headers = dict(_NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="finance-gateway", charset="UTF-8"'
    body = json.dumps({"error": error.error, "error_description": error.description})
    return Reply.json(error.status, body, headers)


def token(request: Request, services: Services) -> Reply:
    config = settings()
    now = utc_now()
    # The certificate the TLS layer verified (mTLS custom domain, or the local TLS port).
    certificate = request.client_cert_pem
    try:
        token_request = oauth.parse_token_request(
            request.header("content-type") or "",
            request.text(),
            request.header("authorization"),
            has_certificate=bool(certificate),
        )
        client, cnf = oauth.authenticate(
            services.clients,
            token_request,
            now,
            certificates=services.certificates,
            certificate_pem=certificate,
        )
        scopes = oauth.granted_scopes(client, token_request.scope)
    except oauth.OAuthError as error:
        return _oauth_error(error)
    claims = oauth.access_token_claims(
        client, scopes, issuer=config.token_issuer, audience=config.token_audience, now=now, cnf=cnf
    )
    body = {
        "access_token": services.signer(config.token_signing_key_id).sign(claims),
        "token_type": "Bearer",
        "expires_in": claims["exp"] - claims["iat"],
        "scope": claims["scope"],
    }
    return Reply.json(200, json.dumps(body), _NO_STORE)


def jwks(request: Request, services: Services) -> Reply:
    # Current key first; the previous one stays until the tokens it signed have expired.
    keys = [services.signer(key_id).public_jwk() for key_id in settings().token_verify_key_ids]
    return Reply.json(200, json.dumps({"keys": keys}), _PUBLIC)


def metadata(request: Request) -> Reply:
    config = settings()
    issuer = config.token_issuer.rstrip("/")
    body: dict[str, Any] = {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth2/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "tls_client_auth"],
        "tls_client_certificate_bound_access_tokens": True,
        "scopes_supported": sorted(SCOPES),
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "token_endpoint_auth_signing_alg_values_supported": [ALGORITHM],
    }
    if config.mtls_base_url:
        # RFC 8705 §5: where to ask for certificate-bound tokens.
        body["mtls_endpoint_aliases"] = {"token_endpoint": f"{config.mtls_base_url.rstrip('/')}/oauth2/token"}
    return Reply.json(200, json.dumps(body), _PUBLIC)
