"""Who is calling, as our authorizers established it (the context they return with an Allow).

The authorizer's policy covers the whole API and API Gateway caches it per identity source (not
per certificate), so each function checks on every request: for a certificate-bound token
(RFC 8705), that this request presents the same certificate. Used by the management API (with the
route's scope) and by the data plane (with each route's scopes).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, NamedTuple

from gateway_core.cert_binding import pem_x5t_s256
from gateway_core.errors import Unauthorized


class Caller(NamedTuple):
    client_id: str
    credential_kind: str
    credential_id: str
    scopes: tuple[str, ...]
    tier: str
    certificate_bound: bool


def optional_caller(authorizer: Mapping[str, Any], client_cert_pem: str) -> Caller | None:
    """The authenticated caller, or None when the authorizer let the request through without a
    credential (the gateway authorizer's anonymous callers)."""
    client_id = authorizer.get("client_id")
    if not client_id:
        return None
    bound = str(authorizer.get("cert_thumbprint") or "")
    if bound:
        presented = pem_x5t_s256(client_cert_pem)
        if not presented:
            raise Unauthorized(
                "This token is bound to a client certificate; call over mutual TLS with it.",
                code="certificate_required",
            )
        if not hmac.compare_digest(bound, presented):
            raise Unauthorized("This token is bound to another certificate.", code="certificate_mismatch")
    return Caller(
        client_id=str(client_id),
        credential_kind=str(authorizer.get("credential_kind", "")),
        credential_id=str(authorizer.get("credential_id", "")),
        scopes=tuple(str(authorizer.get("scopes", "")).split()),
        tier=str(authorizer.get("tier", "")),
        certificate_bound=bool(bound),
    )


def required_caller(authorizer: Mapping[str, Any], client_cert_pem: str) -> Caller:
    found = optional_caller(authorizer, client_cert_pem)
    if found is None:
        # Reached without an authorizer context: the method is misconfigured, not the caller.
        raise Unauthorized("No authenticated identity on this request.", code="no_identity")
    return found
