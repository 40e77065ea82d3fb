"""JWT authorizer (REQUEST type; identity sources: the Authorization header and the source IP).

Our own tokens: signature from our KMS keys, then the client behind `sub` must still be active,
unexpired and calling from an allowed address, and the token's scopes are narrowed to what the
client may still use. External issuers' tokens: signature from the issuer's JWKS, subjects
namespaced by the issuer id so they can never pass for one of our clients, scopes narrowed to
what the admin allowed for that issuer. Certificate-bound tokens (RFC 8705) need the same
certificate; the functions re-check that on every request (a cached Allow ignores certificates).
The Allow holds until the token's `exp` plus the skew it is accepted with, or the client's expiry
if that comes first (`not_after`, which the functions enforce whatever API Gateway cached).
"""

from __future__ import annotations

from typing import Any

from functions.authorizer.bound_certificate import certificate_in_force
from functions.authorizer.client_state import ClientStateCache, check_client, epoch
from functions.authorizer.core import Denied, Principal, client_cert_pem, earliest, header
from functions.authorizer.entry import Request, authorize, state_cache_seconds
from functions.authorizer.issuers import IssuerDirectory, fetch_jwks, own_issuer
from functions.authorizer.jwt_token import CLOCK_SKEW_S, JwksCache, bound_thumbprint, decode_bearer, scopes_of
from gateway_core import aws
from gateway_core.cert_binding import pem_x5t_s256
from gateway_core.settings import settings

_jwks = JwksCache(lambda url: fetch_jwks(lambda: aws.client("kms"), url))
_issuers = IssuerDirectory(ttl_s=state_cache_seconds())
_clients = ClientStateCache(ttl_s=state_cache_seconds())


def check(request: Request) -> Principal:
    authorization = header(request.event, "authorization")
    if not authorization:
        raise Denied("missing_credential")
    own = own_issuer(settings())
    issuer, claims = decode_bearer(
        authorization, lambda iss: _issuers.find(request.dynamodb, request.table, own, iss), _jwks
    )
    thumbprint = bound_thumbprint(claims, pem_x5t_s256(client_cert_pem(request.event)))
    # RFC 8705: a bound token ends with its certificate (revoked, expired, or no longer registered).
    certificate_end = (
        certificate_in_force(
            request.dynamodb,
            request.table,
            thumbprint,
            client_id=str(claims["sub"]) if issuer.own else None,
            now=request.now,
        )
        if thumbprint
        else None
    )
    token_scopes = scopes_of(claims)
    # decode_bearer accepts a token until `exp` + the skew, so that is when the decision ends.
    token_end = float(claims["exp"]) + CLOCK_SKEW_S
    if issuer.own:
        client_id = str(claims["sub"])
        state = check_client(
            _clients.get(request.dynamodb, request.table, client_id), client_id, request.source_ip, request.now
        )
        allowed = state.allowed_scopes
        tier = state.tier
        not_after = earliest(token_end, epoch(state.expires_at))
    else:
        client_id = f"{issuer.issuer_id}:{claims['sub']}"
        allowed = issuer.allowed_scopes or ()
        tier = issuer.tier
        not_after = token_end
    return Principal(
        client_id=client_id,
        credential_kind="jwt",
        scopes=tuple(s for s in token_scopes if s in allowed),
        tier=tier,
        credential_id=str(claims.get("jti", "")),
        cert_thumbprint=thumbprint,
        client_scopes=allowed,
        not_after=earliest(not_after, certificate_end),
    )


def lambda_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    return authorize(event, "jwt", check)
