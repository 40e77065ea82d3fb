"""What every authorizer returns: an IAM policy plus a flat context the functions trust.

The policy covers the whole API (every stage, method and path). API Gateway caches an authorizer
result per identity source for the TTL and reuses it for every method, so a policy scoped to one
method ARN would give false 403s elsewhere; per-route authorization happens in the functions.
Context values must be strings, numbers or booleans, so scopes travel space-separated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway_core import cert_binding


class Denied(Exception):
    """The credential is not acceptable. API Gateway answers 401 for the 'Unauthorized' message."""

    def __init__(self, reason: str) -> None:
        super().__init__("Unauthorized")
        self.reason = reason


class Forbidden(Exception):
    """A valid credential that may not be used now (suspended client, address not allowed):
    answered with a Deny policy, so API Gateway says 403 and the reason reaches the response."""

    def __init__(self, reason: str, principal_id: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.principal_id = principal_id


@dataclass(frozen=True)
class Principal:
    client_id: str
    credential_kind: str
    scopes: tuple[str, ...]
    tier: str
    credential_id: str
    # RFC 8705: the base64url SHA-256 of the certificate a token is bound to ("" when unbound).
    # The functions compare it with the presented certificate on every request, since API
    # Gateway's cached Allow does not depend on the certificate.
    cert_thumbprint: str = ""
    # An API key's own limits, "<per minute>/<per hour>/<per day>" ("" when it has none): the
    # proxy limits such a key by these instead of its client's, at no extra read.
    rate_limits: str = ""
    # The scopes the credential's client may hold now (None: no client grant applies, e.g. an
    # operator key without a client record). `scopes` are already narrowed to them.
    client_scopes: tuple[str, ...] | None = None
    # Epoch seconds from which this decision no longer holds (None: no time bound).
    not_after: float | None = None
    # An API key's lineage: the first key id of its rotations, so a rotated pair shares one
    # rate budget ("" for other credentials).
    key_lineage: str = ""


def earliest(*moments: float | None) -> float | None:
    """The first of the given moments that are set (None when none is)."""
    present = [m for m in moments if m is not None]
    return min(present) if present else None


def header(event: dict[str, Any], name: str) -> str:
    """A credential header (`name` in lower case), matched case-insensitively ("" when absent).
    Sent twice with different values, under one spelling or two (`X-Api-Key` and `x-api-key`),
    it is refused: which value API Gateway's identity source, its cache key and the function
    would each read is not something to rely on, so none is checked."""
    values = {
        str(value)
        for key, listed in (event.get("multiValueHeaders") or {}).items()
        if key.lower() == name
        for value in listed or ()
        if value
    }
    values |= {str(value) for key, value in (event.get("headers") or {}).items() if key.lower() == name and value}
    if len(values) > 1:
        raise Denied("ambiguous_credential")
    return next(iter(values), "")


def source_ip(event: dict[str, Any]) -> str:
    return str(((event.get("requestContext") or {}).get("identity") or {}).get("sourceIp") or "")


def client_cert_pem(event: dict[str, Any]) -> str:
    return cert_binding.client_cert_pem(event.get("requestContext"))


def api_wildcard_arn(method_arn: str) -> str:
    """arn:aws:execute-api:region:account:api-id/stage/METHOD/path -> .../api-id/*/*"""
    prefix, _, rest = method_arn.partition(":execute-api:")
    region_account_api = rest.split("/", 1)[0]
    return f"{prefix}:execute-api:{region_account_api}/*/*"


def allow(principal: Principal, method_arn: str) -> dict[str, Any]:
    context = {
        "client_id": principal.client_id,
        "credential_kind": principal.credential_kind,
        "credential_id": principal.credential_id,
        "scopes": " ".join(principal.scopes),
        "tier": principal.tier,
        "cert_thumbprint": principal.cert_thumbprint,
        "rate_limits": principal.rate_limits,
        # Milliseconds, as our stored times have them; "" for no bound.
        "not_after": f"{principal.not_after:.3f}" if principal.not_after is not None else "",
        "key_lineage": principal.key_lineage,
    }
    if principal.client_scopes is not None:
        context["client_scopes"] = " ".join(principal.client_scopes)
    return {
        "principalId": principal.client_id or "anonymous",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": api_wildcard_arn(method_arn),
                }
            ],
        },
        "context": context,
    }


def deny(reason: str, principal_id: str, method_arn: str) -> dict[str, Any]:
    """A Deny for the whole API (cached like an Allow) carrying the reason for the 403 body."""
    return {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": api_wildcard_arn(method_arn)}],
        },
        "context": {"reason": reason},
    }
