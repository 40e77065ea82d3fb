"""/api/v1/gateways/{gateway_id}/secrets: a gateway's upstream secrets (logic/secrets.py).

Admin only, reads included: a secret's name and history tell an attacker which upstream
credentials exist. A value goes in with PUT and never comes out; routes use it by reference
(`{{ secrets.<name> }}`). A PUT that replaces a secret needs `If-Match` with its version (the
`ETag`, or `*`); one that creates needs none (`If-None-Match: *` makes sure it only creates).
DELETE honours an `If-Match` when one is sent.
"""

from __future__ import annotations

import os

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.routes.dal.secrets_store import DynamoSecretStore, KmsSealer
from functions.routes.logic import secrets
from functions.routes.logic.secrets import Secret, SecretList, SecretValue
from gateway_core import aws
from gateway_core.api_caller import actor, conditions, if_match_version
from gateway_core.audit import Actor
from gateway_core.clock import utc_now
from gateway_core.settings import settings

router = APIGatewayRouter()
ADMIN = "admin"
# The KMS key only secrets are encrypted with (infra/constructs/data.py, UpstreamSecretsKey).
KEY_ENVIRONMENT = "UPSTREAM_SECRETS_KEY_ID"


def _store() -> DynamoSecretStore:
    return DynamoSecretStore(aws.client("dynamodb"), settings().table_name)


def _admin() -> Actor:
    return actor(router.current_event, required_scope=ADMIN)


def _json(secret: Secret, status: int = 200) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=secret.model_dump_json(),
        headers={
            "ETag": f'"{secret.version}"',
            "Location": f"/api/v1/gateways/{secret.gateway_id}/secrets/{secret.name}",
        },
    )


@router.put(
    "/api/v1/gateways/<gateway_id>/secrets/<name>",
    tags=["secrets"],
    summary="Set an upstream secret (201 created, 200 replaced); the value is never returned",
)
def put_secret(gateway_id: str, name: str, body: SecretValue) -> Response[str]:
    who = _admin()
    sealer = KmsSealer(aws.client("kms"), os.environ.get(KEY_ENVIRONMENT, ""))
    saved, created = secrets.set_secret(
        _store(), sealer, gateway_id, name, body.value, who, utc_now(), conditions(router.current_event)
    )
    return _json(saved, 201 if created else 200)


@router.get("/api/v1/gateways/<gateway_id>/secrets", tags=["secrets"], summary="A gateway's secrets (no values)")
def list_secrets(gateway_id: str) -> SecretList:
    _admin()
    return SecretList(items=secrets.list_secrets(_store(), gateway_id))


@router.get("/api/v1/gateways/<gateway_id>/secrets/<name>", tags=["secrets"], summary="A secret (no value)")
def get_secret(gateway_id: str, name: str) -> Response[str]:
    _admin()
    return _json(secrets.get_secret(_store(), gateway_id, name))


@router.delete(
    "/api/v1/gateways/<gateway_id>/secrets/<name>",
    tags=["secrets"],
    summary="Delete a secret (calls of routes that use it fail until it is set again)",
)
def delete_secret(gateway_id: str, name: str) -> Response[str]:
    secrets.delete_secret(_store(), gateway_id, name, _admin(), if_match_version(router.current_event))
    return Response(status_code=204, body="")
