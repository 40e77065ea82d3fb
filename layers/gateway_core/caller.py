"""Who is calling, as our authorizers established it (the context they return with an Allow).

The authorizer's policy covers the whole API and API Gateway caches it per identity source (not
per certificate, and for minutes), so each function checks on every request, without I/O:
- that the decision still holds: a context's `not_after` (epoch seconds: a key's expiry or
  rotation grace, a token's `exp`, a certificate's or client's expiry) refuses from that second
  on, whatever the cache still holds;
- that the scopes stay within the client's grant the authorizer read (`client_scopes`);
- for a certificate-bound token (RFC 8705), that this request presents the same certificate.
Used by the management API (with the route's scope) and by the data plane and batches (with each
route's scopes).
"""

from __future__ import annotations

import hmac
import math
import time
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
    # An API key's lineage (the first key id of its rotations): its rate budget. Other
    # credentials: their credential id.
    key_lineage: str = ""


def _check_time(authorizer: Mapping[str, Any], now: float | None) -> None:
    value = authorizer.get("not_after")
    if value is None or value == "":
        return  # no time bound (or a context cached before authorizers set one)
    try:
        not_after = float(value)
    except (TypeError, ValueError):
        not_after = math.nan
    # Unreadable is not trusted: our authorizers write a finite number.
    if not math.isfinite(not_after) or (time.time() if now is None else now) >= not_after:
        raise Unauthorized(
            "This credential has expired (or its rotation grace has ended); use a current one.",
            code="credential_expired",
        )


def _scopes(authorizer: Mapping[str, Any]) -> tuple[str, ...]:
    scopes = tuple(str(authorizer.get("scopes", "")).split())
    granted = authorizer.get("client_scopes")
    if granted is None:
        return scopes  # no client grant in this context: the authorizer's scopes as they are
    allowed = set(str(granted).split())
    return tuple(s for s in scopes if s in allowed)


def optional_caller(authorizer: Mapping[str, Any], client_cert_pem: str, *, now: float | None = None) -> Caller | None:
    """The authenticated caller, or None when the authorizer let the request through without a
    credential (the gateway authorizer's anonymous callers). `now`: epoch seconds (the clock)."""
    client_id = authorizer.get("client_id")
    if not client_id:
        return None
    _check_time(authorizer, now)
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
    credential_id = str(authorizer.get("credential_id", ""))
    return Caller(
        client_id=str(client_id),
        credential_kind=str(authorizer.get("credential_kind", "")),
        credential_id=credential_id,
        scopes=_scopes(authorizer),
        tier=str(authorizer.get("tier", "")),
        certificate_bound=bool(bound),
        key_lineage=str(authorizer.get("key_lineage") or credential_id),
    )


def required_caller(authorizer: Mapping[str, Any], client_cert_pem: str, *, now: float | None = None) -> Caller:
    found = optional_caller(authorizer, client_cert_pem, now=now)
    if found is None:
        # Reached without an authorizer context: the method is misconfigured, not the caller.
        raise Unauthorized("No authenticated identity on this request.", code="no_identity")
    return found
