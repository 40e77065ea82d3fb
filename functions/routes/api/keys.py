"""/api/v1/gateway/keys: create (shown once), list (by client or all), read, change, revoke, rotate.
Every operation needs the `admin` scope; changes that narrow access flush the authorizer cache.
A key's `ETag` is its version: PUT needs it in `If-Match` (or `*`), DELETE honours it when sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.routes.api.client_models import (
    KeyCreate,
    KeyOut,
    KeyPage,
    KeyRotate,
    KeyRotation,
    KeyUpdate,
    KeyWithSecret,
)
from functions.routes.dal import authorizer_cache
from functions.routes.dal.clients_store import DynamoClientStore
from functions.routes.dal.keys_store import DynamoKeyStore
from functions.routes.logic import keys
from functions.routes.logic.catalog import RateLimits
from gateway_core import aws
from gateway_core.api_caller import actor, if_match_version, required_if_match, versioned
from gateway_core.clock import utc_now
from gateway_core.settings import settings

router = APIGatewayRouter()
ADMIN = "admin"
_NO_STORE = {"Cache-Control": "no-store"}


def _stores() -> tuple[DynamoKeyStore, DynamoClientStore]:
    dynamodb, table = aws.client("dynamodb"), settings().table_name
    return DynamoKeyStore(dynamodb, table), DynamoClientStore(dynamodb, table)


def _environment() -> str:
    return "live" if settings().stage in ("prod", "live") else "test"


def _flush() -> None:
    authorizer_cache.flush(aws.client("apigateway"), settings().rest_api_id, settings().stage)


def _out(key: keys.ApiKey) -> KeyOut:
    return KeyOut.model_validate(key.shown_at(datetime.now(UTC)))


def _limits(value: Any) -> RateLimits | None:
    return RateLimits(**value.model_dump()) if value is not None else None


@router.post("/api/v1/gateway/keys", tags=["keys"], summary="Create an API key; it is shown once")
def create_key(body: KeyCreate) -> Response[KeyWithSecret]:
    caller = actor(router.current_event, required_scope=ADMIN)
    key_store, client_store = _stores()
    key, secret = keys.create(
        key_store,
        client_store,
        client_id=body.client_id,
        name=body.name,
        scopes=body.scopes,
        expires_at=body.expires_at,
        rate_limits=_limits(body.rate_limits),
        actor=caller,
        now=utc_now(),
        environment=_environment(),
    )
    out = KeyWithSecret(**_out(key).model_dump(), api_key=secret)
    return versioned(out, 201, {**_NO_STORE, "Location": f"/api/v1/gateway/keys/{key.key_id}"})


@router.get(
    "/api/v1/gateway/keys",
    tags=["keys"],
    summary="Keys of one client, or of every client, newest first (prefix and last four only)",
)
def list_keys(
    client_id: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Absent: every client's keys")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> KeyPage:
    actor(router.current_event, required_scope=ADMIN)
    store = _stores()[0]
    if client_id is None:
        items, next_cursor = store.list_all(limit, cursor)
    else:
        items, next_cursor = store.list_for_client(client_id, limit, cursor)
    return KeyPage(items=[_out(k) for k in items], next_cursor=next_cursor)


@router.get("/api/v1/gateway/keys/<key_id>", tags=["keys"], summary="Read a key (prefix and last four only)")
def get_key(key_id: str) -> Response[KeyOut]:
    actor(router.current_event, required_scope=ADMIN)
    return versioned(_out(keys.get(_stores()[0], key_id)))


@router.put("/api/v1/gateway/keys/<key_id>", tags=["keys"], summary="Change a key's name, scopes, expiry or limits")
def update_key(key_id: str, body: KeyUpdate) -> Response[KeyOut]:
    caller = actor(router.current_event, required_scope=ADMIN)
    expected = required_if_match(router.current_event)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"rate_limits"})
    if "rate_limits" in body.model_fields_set:
        changes["rate_limits"] = _limits(body.rate_limits)
    key_store, client_store = _stores()
    key = keys.update(key_store, client_store, key_id, changes, caller, utc_now(), expected)
    _flush()  # cached authorizer contexts carry the old scopes
    return versioned(_out(key))


@router.delete("/api/v1/gateway/keys/<key_id>", tags=["keys"], summary="Revoke a key (kept, marked revoked)")
def revoke_key(key_id: str) -> Response[KeyOut]:
    caller = actor(router.current_event, required_scope=ADMIN)
    key = keys.revoke(_stores()[0], key_id, caller, utc_now(), if_match_version(router.current_event))
    _flush()
    return versioned(_out(key))


@router.post(
    "/api/v1/gateway/keys/<key_id>/rotate",
    tags=["keys"],
    summary="Issue a new key; the old one works until its grace ends",
)
def rotate_key(key_id: str, body: KeyRotate) -> Response[KeyRotation]:
    caller = actor(router.current_event, required_scope=ADMIN)
    grace = timedelta(seconds=body.grace_seconds) if body.grace_seconds is not None else None
    key_store, client_store = _stores()
    new_key, secret, old_key = keys.rotate(key_store, client_store, key_id, grace, caller, utc_now(), _environment())
    # Cached Allows of the old key know nothing of its grace: without a flush it would work until
    # the cache's TTL, past a grace shorter than that (0 included).
    _flush()
    out = KeyRotation(new_key=KeyWithSecret(**_out(new_key).model_dump(), api_key=secret), old_key=_out(old_key))
    headers = {**_NO_STORE, "Location": f"/api/v1/gateway/keys/{new_key.key_id}"}
    return Response(status_code=201, content_type="application/json", body=out, headers=headers)
