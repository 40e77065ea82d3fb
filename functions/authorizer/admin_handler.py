"""The management API's authorizer (REQUEST type, no identity sources, not cached by API
Gateway): an API key, or else a bearer token (OAuth2 client credentials), each checked exactly as
the API key and JWT authorizers check it; with neither, 401.

API Gateway allows one authorizer per method and, when caching, answers 401 without calling it
unless every identity source is present, so one method cannot list both `x-api-key` and
`Authorization`. Without identity sources API Gateway requires the cache off: every admin request
reads the credential's current state (one to three strongly consistent GetItems), so a suspension
or a removed scope applies to the very next request, flush or not. The admin API is operator
traffic; /gw pays the same. The key wins when both are sent, as on /gw. The `admin` scope itself
is checked by the function on every request.

A client that has registered certificates administers only with certificate-bound tokens (RFC
8705: asked for over mTLS, presented over mTLS with the same certificate), so a stolen bearer
token alone cannot administer the gateway: its unbound `admin` tokens are denied (403
`certificate_binding_required`).
"""

from __future__ import annotations

from typing import Any

from functions.authorizer import api_key_handler, jwt_handler
from functions.authorizer.core import Forbidden, Principal, header
from functions.authorizer.entry import Request, authorize

ADMIN = "admin"


def has_active_certificate(dynamodb: Any, table_name: str, client_id: str) -> bool:
    """Whether the client has a registered certificate that is not revoked. Counted on the index
    of a client's certificates (`GSI1PK=CLIENT#<id>#CERTS`; the role may only count there, never
    read an item). An index read cannot be strongly consistent: a first certificate registered
    in the last moment may not count yet, which lets an unbound token through for that moment."""
    start: dict[str, Any] | None = None
    while True:
        page = dynamodb.query(
            TableName=table_name,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            FilterExpression="#s = :active",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":pk": {"S": f"CLIENT#{client_id}#CERTS"}, ":active": {"S": "active"}},
            Select="COUNT",
            **({"ExclusiveStartKey": start} if start else {}),
        )
        if page.get("Count", 0) > 0:
            return True
        start = page.get("LastEvaluatedKey")
        if not start:
            return False


def _check(request: Request) -> Principal:
    if header(request.event, "x-api-key"):
        return api_key_handler.check(request)
    principal = jwt_handler.check(request)  # no Authorization either: 401 missing_credential there
    # External issuers can never grant `admin` (the admin API refuses it), so only our clients' tokens get here.
    if (
        ADMIN in principal.scopes
        and not principal.cert_thumbprint
        and has_active_certificate(request.dynamodb, request.table, principal.client_id)
    ):
        raise Forbidden("certificate_binding_required", principal.client_id)
    return principal


def lambda_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    return authorize(event, "admin", _check)
