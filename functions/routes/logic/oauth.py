"""OAuth 2.0 client credentials grant (RFC 6749 §4.4) and the access token's claims.

Errors are RFC 6749 §5.2 error codes, not problem details: OAuth clients parse that format.
Tokens are JWT access tokens (RFC 9068 `at+jwt`), one hour at most, narrowed to the scopes asked
for within the client's allowed scopes.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote_plus

from functions.routes.logic.certificates import Certificate
from functions.routes.logic.clients import Client
from gateway_core.cert_binding import NotACertificate, der_from_pem, fingerprint_hex, x5t_s256
from gateway_core.clock import parse_iso
from gateway_core.secrets_hashing import verify_secret

TOKEN_LIFETIME = timedelta(hours=1)


class ClientLookup(Protocol):
    """The one read of the client registry a token request needs."""

    def get(self, client_id: str) -> Client | None: ...


class CertificateLookup(Protocol):
    def get(self, fingerprint: str) -> Certificate | None: ...


class OAuthError(Exception):
    """An RFC 6749 error response: `error` code, description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class TokenRequest:
    grant_type: str
    client_id: str
    client_secret: str
    scope: str | None
    auth_method: str  # client_secret_basic, client_secret_post or tls_client_auth (RFC 8705 §2)


def parse_token_request(
    content_type: str, body: str, authorization: str | None, *, has_certificate: bool = False
) -> TokenRequest:
    if not content_type.lower().startswith("application/x-www-form-urlencoded"):
        raise OAuthError("invalid_request", "The token request is application/x-www-form-urlencoded.")
    form = parse_qs(body, keep_blank_values=True)
    if any(len(values) > 1 for values in form.values()):
        raise OAuthError("invalid_request", "A parameter is repeated.")
    params = {k: v[0] for k, v in form.items()}
    basic = _basic_credentials(authorization)
    posted = params.get("client_id"), params.get("client_secret")
    if basic and (posted[0] or posted[1]):
        raise OAuthError("invalid_request", "Use one client authentication method, not two.")
    if basic:
        client_id, client_secret, method = basic[0], basic[1], "client_secret_basic"
    elif posted[0] and posted[1]:
        client_id, client_secret, method = posted[0], posted[1], "client_secret_post"
    elif posted[0] and has_certificate:
        # The client certificate (verified by the TLS layer) authenticates the client.
        client_id, client_secret, method = posted[0], "", "tls_client_auth"
    else:
        raise OAuthError("invalid_client", "Client authentication is required.", status=401)
    grant_type = params.get("grant_type", "")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required.")
    return TokenRequest(grant_type, client_id, client_secret, params.get("scope"), method)


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise OAuthError("invalid_client", "Malformed Basic credentials.", status=401) from error
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise OAuthError("invalid_client", "Malformed Basic credentials.", status=401)
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate(
    store: ClientLookup,
    request: TokenRequest,
    now: datetime,
    *,
    certificates: CertificateLookup | None = None,
    certificate_pem: str = "",
) -> tuple[Client, dict[str, str] | None]:
    """The authenticated client and, when the request came with a client certificate, the RFC 8705
    confirmation (`cnf`) that binds its tokens to that certificate."""
    client = store.get(request.client_id) if request.client_id.startswith("cl_") else None
    # One answer for unknown client and wrong secret: nothing to learn from probing.
    if client is None:
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    if request.auth_method != "tls_client_auth" and not _secret_matches(client, request.client_secret, now):
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    cnf = None
    if certificate_pem and certificates is not None:
        cnf = certificate_confirmation(certificates, client, certificate_pem, now)
    elif request.auth_method == "tls_client_auth":
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    if client.status != "active":
        raise OAuthError("unauthorized_client", "The client is suspended.")
    if client.expires_at and parse_iso(client.expires_at) <= now:
        raise OAuthError("unauthorized_client", "The client has expired.")
    if request.grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", "Only the client_credentials grant is supported.")
    return client, cnf


def _secret_matches(client: Client, secret: str, now: datetime) -> bool:
    """The current secret, or the one a rotation replaced while its grace lasts."""
    if verify_secret(secret, client.secret_hash):
        return True
    previous, until = client.previous_secret_hash, client.grace_until
    return bool(previous and until and now < parse_iso(until) and verify_secret(secret, previous))


def certificate_confirmation(
    certificates: CertificateLookup, client: Client, pem: str, now: datetime
) -> dict[str, str]:
    """A token asked for over mTLS is bound to that certificate, which must be registered to the
    client, active and within its validity; anything else is refused rather than silently issued
    unbound."""
    refused = OAuthError(
        "invalid_client", "The client certificate is not registered to this client, or not valid now.", status=401
    )
    try:
        der = der_from_pem(pem)
    except NotACertificate as error:
        raise refused from error
    certificate = certificates.get(fingerprint_hex(der))
    if (
        certificate is None
        or certificate.client_id != client.client_id
        or certificate.status != "active"
        or not parse_iso(certificate.not_before) <= now < parse_iso(certificate.not_after)
    ):
        raise refused
    return {"x5t#S256": x5t_s256(der)}


def granted_scopes(client: Client, requested: str | None) -> list[str]:
    if requested is None or not requested.strip():
        return sorted(client.allowed_scopes)
    asked = set(requested.split())
    outside = asked - set(client.allowed_scopes)
    if outside:
        raise OAuthError("invalid_scope", f"Not allowed for this client: {' '.join(sorted(outside))}")
    return sorted(asked)


def access_token_claims(
    client: Client, scopes: list[str], *, issuer: str, audience: str, now: datetime, cnf: dict[str, str] | None = None
) -> dict[str, Any]:
    issued = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": client.client_id,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(TOKEN_LIFETIME.total_seconds()),
        "jti": uuid.uuid4().hex,
        "client_id": client.client_id,
        "scope": " ".join(scopes),
        "tier": client.tier,
    }
    if cnf:
        claims["cnf"] = cnf  # RFC 8705 certificate binding
    return claims
