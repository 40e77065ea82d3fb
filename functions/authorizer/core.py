"""What every authorizer returns: an IAM policy plus a flat context the functions trust.

The policy covers the whole API (every stage, method and path). API Gateway caches an authorizer
result per identity source for the TTL and reuses it for every method, so a policy scoped to one
method ARN would give false 403s elsewhere; per-route authorization happens in the functions.
Context values must be strings, numbers or booleans, so scopes travel space-separated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class Denied(Exception):
    """The credential is not acceptable. API Gateway answers 401 for the 'Unauthorized' message."""

    def __init__(self, reason: str) -> None:
        super().__init__("Unauthorized")
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    client_id: str
    credential_kind: str
    scopes: tuple[str, ...]
    tier: str
    credential_id: str


def api_wildcard_arn(method_arn: str) -> str:
    """arn:aws:execute-api:region:account:api-id/stage/METHOD/path -> .../api-id/*/*"""
    prefix, _, rest = method_arn.partition(":execute-api:")
    region_account_api = rest.split("/", 1)[0]
    return f"{prefix}:execute-api:{region_account_api}/*/*"


def allow(principal: Principal, method_arn: str) -> dict[str, Any]:
    return {
        "principalId": principal.client_id,
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
        "context": {
            "client_id": principal.client_id,
            "credential_kind": principal.credential_kind,
            "credential_id": principal.credential_id,
            "scopes": " ".join(principal.scopes),
            "tier": principal.tier,
        },
    }
