"""/api/v1/clients: register, read, list, change, suspend, reactivate, delete, rotate the secret
(with a grace, as keys: the old secret works until `grace_until`).
Every operation needs the `admin` scope. A client's `ETag` is its version: PUT needs it in
`If-Match` (or `*`), DELETE honours it when sent."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.routes.api.client_models import (
    ClientOut,
    ClientPage,
    ClientRegistration,
    ClientSecretRotate,
    ClientUpdate,
    ClientWithSecret,
)
from functions.routes.dal import authorizer_cache
from functions.routes.dal.clients_store import DynamoClientStore
from functions.routes.dal.keys_store import DynamoKeyStore
from functions.routes.logic import clients, keys, lockout
from functions.routes.logic.catalog import RateLimits
from gateway_core import aws, preconditions
from gateway_core.api_caller import actor, if_match_version, required_if_match, versioned
from gateway_core.clock import utc_now
from gateway_core.settings import settings

router = APIGatewayRouter()
ADMIN = "admin"


def _store() -> DynamoClientStore:
    return DynamoClientStore(aws.client("dynamodb"), settings().table_name)


def _environment() -> str:
    return "live" if settings().stage in ("prod", "live") else "test"


def _sync_keys(client: clients.Client, *, deleted: bool = False) -> None:
    """Keys carry a copy of the client's status, expiry and allowlist (one read per decision);
    bring them in step and drop cached authorizer results that may say otherwise."""
    keys.sync_client(DynamoKeyStore(aws.client("dynamodb"), settings().table_name), client, deleted=deleted)
    authorizer_cache.flush(aws.client("apigateway"), settings().rest_api_id, settings().stage)


def _out(client: clients.Client) -> ClientOut:
    return ClientOut.model_validate(client.public())


def _limits(value: Any) -> RateLimits | None:
    return RateLimits(**value.model_dump()) if value is not None else None


@router.post("/api/v1/clients/register", tags=["clients"], summary="Register a client; its secret is shown once")
def register(body: ClientRegistration) -> Response[ClientWithSecret]:
    caller = actor(router.current_event, required_scope=ADMIN)
    spec = clients.ClientSpec(**{**body.model_dump(exclude={"rate_limits"}), "rate_limits": _limits(body.rate_limits)})
    client, secret = clients.register(_store(), spec, caller, utc_now(), _environment())
    out = ClientWithSecret(**_out(client).model_dump(), client_secret=secret)
    return versioned(out, 201, {"Location": f"/api/v1/clients/{client.client_id}", "Cache-Control": "no-store"})


@router.get("/api/v1/clients", tags=["clients"], summary="List clients, newest first")
def list_clients(
    status: Annotated[str | None, Query(pattern="^(active|suspended)$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> ClientPage:
    actor(router.current_event, required_scope=ADMIN)
    items, next_cursor = _store().list(status, limit, cursor)
    return ClientPage(items=[_out(c) for c in items], next_cursor=next_cursor)


@router.get("/api/v1/clients/<client_id>", tags=["clients"], summary="Read a client")
def get_client(client_id: str) -> Response[ClientOut]:
    actor(router.current_event, required_scope=ADMIN)
    return versioned(_out(clients.get(_store(), client_id)))


@router.put("/api/v1/clients/<client_id>", tags=["clients"], summary="Change a client (absent fields keep their value)")
def update_client(client_id: str, body: ClientUpdate) -> Response[ClientOut]:
    caller = actor(router.current_event, required_scope=ADMIN)
    expected = required_if_match(router.current_event)
    changes = body.model_dump(exclude_unset=True, exclude={"rate_limits"})
    if "rate_limits" in body.model_fields_set:
        changes["rate_limits"] = _limits(body.rate_limits)
    client = clients.update(_store(), client_id, changes, caller, utc_now(), expected)
    _sync_keys(client)
    return versioned(_out(client))


@router.post("/api/v1/clients/<client_id>/suspend", tags=["clients"], summary="Suspend a client")
def suspend(client_id: str) -> ClientOut:
    caller = actor(router.current_event, required_scope=ADMIN)
    client = clients.set_status(_store(), client_id, "suspended", caller, utc_now())
    _sync_keys(client)
    return _out(client)


@router.post("/api/v1/clients/<client_id>/reactivate", tags=["clients"], summary="Reactivate a suspended client")
def reactivate(client_id: str) -> ClientOut:
    caller = actor(router.current_event, required_scope=ADMIN)
    client = clients.set_status(_store(), client_id, "active", caller, utc_now())
    _sync_keys(client)
    return _out(client)


@router.post(
    "/api/v1/clients/<client_id>/secret",
    tags=["clients"],
    summary="Rotate the client secret (shown once); the old one works until its grace ends",
)
def rotate_secret(client_id: str, body: ClientSecretRotate) -> Response[ClientWithSecret]:
    # An empty body is `{}` (every member has a default: gateway_core.http), JSON null a 422.
    caller = actor(router.current_event, required_scope=ADMIN)
    grace = timedelta(seconds=body.grace_seconds) if body.grace_seconds is not None else None
    client, secret = clients.rotate_secret(_store(), client_id, caller, utc_now(), _environment(), grace)
    out = ClientWithSecret(**_out(client).model_dump(), client_secret=secret)
    return Response(status_code=200, content_type="application/json", body=out, headers={"Cache-Control": "no-store"})


@router.delete("/api/v1/clients/<client_id>", tags=["clients"], summary="Delete a client")
def delete_client(client_id: str) -> Response[str]:
    caller = actor(router.current_event, required_scope=ADMIN)
    lockout.refuse_own_client(caller, client_id, "delete")  # before its keys are refused
    client = clients.get(_store(), client_id)
    expected = if_match_version(router.current_event)
    # Checked before the keys are touched: a stale If-Match must change nothing.
    preconditions.check(f"The client {client_id}", client.version, expected)
    # Keys first: if the deletion then fails, the keys are already refused and a retry finishes
    # the job; the other order could leave working keys of a client that no longer exists.
    _sync_keys(client, deleted=True)
    clients.delete(_store(), client_id, caller, expected)
    return Response(status_code=204, body="")
