"""OAuth 2.0 and discovery: POST /oauth2/token (client credentials), GET /.well-known/jwks.json,
GET /.well-known/openid-configuration (RFC 8414 fields). Public: the client authenticates itself
at the token endpoint."""

from __future__ import annotations

import json
import threading
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.routes.dal.certificates_store import DynamoCertificateStore
from functions.routes.dal.clients_store import DynamoClientStore
from functions.routes.dal.signing import ALGORITHM, KmsSigner
from functions.routes.logic import oauth
from functions.routes.logic.catalog import SCOPES
from gateway_core import aws
from gateway_core.cert_binding import client_cert_pem
from gateway_core.clock import utc_now
from gateway_core.settings import settings

router = APIGatewayRouter()
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_signers: dict[str, KmsSigner] = {}
_lock = threading.Lock()


def _signer(key_id: str | None = None) -> KmsSigner:
    key_id = key_id or settings().token_signing_key_id
    with _lock:
        if key_id not in _signers:
            _signers[key_id] = KmsSigner(aws.client("kms"), key_id)
        return _signers[key_id]


def _oauth_error(error: oauth.OAuthError) -> Response[str]:
    headers = dict(_NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="finance-gateway", charset="UTF-8"'
    body = json.dumps({"error": error.error, "error_description": error.description})
    return Response(status_code=error.status, content_type="application/json", body=body, headers=headers)


def _header(name: str) -> str | None:
    headers: dict[str, Any] = router.current_event.headers or {}
    return next((str(v) for k, v in headers.items() if k.lower() == name), None)


@router.post("/oauth2/token", tags=["oauth2"], summary="Client credentials grant (RFC 6749 §4.4)")
def token() -> Response[str]:
    config = settings()
    now = utc_now()
    # The certificate the TLS layer verified (mTLS custom domain, or the local TLS port).
    certificate = client_cert_pem(router.current_event.request_context)
    try:
        request = oauth.parse_token_request(
            _header("content-type") or "",
            router.current_event.decoded_body or "",
            _header("authorization"),
            has_certificate=bool(certificate),
        )
        dynamodb = aws.client("dynamodb")
        client, cnf = oauth.authenticate(
            DynamoClientStore(dynamodb, config.table_name),
            request,
            now,
            certificates=DynamoCertificateStore(dynamodb, config.table_name),
            certificate_pem=certificate,
        )
        scopes = oauth.granted_scopes(client, request.scope)
    except oauth.OAuthError as error:
        return _oauth_error(error)
    claims = oauth.access_token_claims(
        client, scopes, issuer=config.token_issuer, audience=config.token_audience, now=now, cnf=cnf
    )
    body = {
        "access_token": _signer().sign(claims),
        "token_type": "Bearer",
        "expires_in": claims["exp"] - claims["iat"],
        "scope": claims["scope"],
    }
    return Response(status_code=200, content_type="application/json", body=json.dumps(body), headers=_NO_STORE)


@router.get("/.well-known/jwks.json", tags=["oauth2"], summary="Public keys that sign access tokens (RFC 7517)")
def jwks() -> Response[str]:
    # Current key first; the previous one stays until the tokens it signed have expired.
    body = json.dumps({"keys": [_signer(key_id).public_jwk() for key_id in settings().token_verify_key_ids]})
    return Response(
        status_code=200, content_type="application/json", body=body, headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/.well-known/openid-configuration", tags=["oauth2"], summary="Authorization server metadata (RFC 8414)")
def metadata() -> Response[str]:
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
    return Response(
        status_code=200,
        content_type="application/json",
        body=json.dumps(body),
        headers={"Cache-Control": "public, max-age=300"},
    )
