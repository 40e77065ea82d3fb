"""The proxy's authorizer (REQUEST type, not cached by API Gateway): any one credential, or none.

API Gateway allows one authorizer per method and answers 401 before calling it when an identity
source is missing, so routes that admins define at run time, each with its own credential rules,
sit behind this one: an API key is checked as by the API key authorizer, else a bearer token as by
the JWT authorizer, else a client certificate as by the mTLS authorizer; with none of them the
caller is anonymous and the proxy decides whether the route allows that. The API key goes first
because `x-api-key` can only be meant for us, while an `Authorization` header beside it may be
the caller's credential for the upstream (which the proxy never forwards). A credential that is
presented and bad is refused here (401/403), never downgraded to anonymous. Not cached: the
identity may come from any of three places, and an anonymous Allow must never be reused for a
caller who sends a credential.
"""

from __future__ import annotations

from typing import Any

from functions.authorizer import api_key_handler, jwt_handler, mtls_handler
from functions.authorizer.core import Principal, client_cert_pem, header
from functions.authorizer.entry import Request, authorize

ANONYMOUS = Principal(client_id="", credential_kind="none", scopes=(), tier="free", credential_id="")


def _check(request: Request) -> Principal:
    if header(request.event, "x-api-key"):
        return api_key_handler.check(request)
    if header(request.event, "authorization"):
        return jwt_handler.check(request)
    if client_cert_pem(request.event):
        return mtls_handler.check(request)
    return ANONYMOUS


def lambda_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    return authorize(event, "gateway", _check)
