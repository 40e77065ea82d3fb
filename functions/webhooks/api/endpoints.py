"""/api/v1/webhooks: endpoints, their keys, deliveries and attempts, replay, recovery and the
DLQ. A client manages its own endpoints (`webhooks:read` / `webhooks:write`); admins all. An
endpoint's `ETag` is its version: PATCH needs it in `If-Match` (or `*`), DELETE honours it."""

from __future__ import annotations

import os
from datetime import UTC
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.webhooks import delivery_wiring
from functions.webhooks.api import wiring
from functions.webhooks.api.models import (
    AttemptOut,
    AttemptPage,
    DeliveryOut,
    DeliveryPage,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointPage,
    EndpointUpdate,
    PublicKeyOut,
    Recovered,
    RecoverIn,
    Redriven,
    Rotated,
    RotateIn,
    TestIn,
    TestResult,
)
from functions.webhooks.logic import endpoints, operations
from functions.webhooks.logic.endpoints import Owner
from gateway_core import aws, preconditions
from gateway_core.api_caller import caller, if_match_version, required_if_match, versioned
from gateway_core.audit import Actor
from gateway_core.clock import utc_now
from gateway_core.errors import Forbidden, NotFound
from gateway_core.ssrf import SsrfPolicy

router = APIGatewayRouter()
_NO_STORE = {"Cache-Control": "no-store"}
READ, WRITE, ADMIN = "webhooks:read", "webhooks:write", "admin"
# How long a rotated-out key keeps signing, unless a rotation says otherwise.
ROTATION_GRACE_S = int(os.environ.get("WEBHOOK_ROTATION_GRACE_S") or endpoints.DEFAULT_ROTATION_GRACE_S)


def _who(scope: str) -> tuple[Owner, Actor]:
    event = router.current_event
    who = caller(event)
    admin = ADMIN in who.scopes
    if not admin and scope not in who.scopes:
        raise Forbidden(
            f"This operation needs the '{scope}' scope (or admin).",
            code="insufficient_scope",
            extensions={"required_scope": scope},
        )
    return Owner(client_id=who.client_id, admin=admin), Actor(
        client_id=who.client_id,
        credential_kind=who.credential_kind,
        credential_id=who.credential_id,
        request_id=str(event.request_context.request_id),
    )


def _out(endpoint: endpoints.Endpoint) -> EndpointOut:
    return EndpointOut(**endpoint.public())


@router.post("/api/v1/webhooks", tags=["webhooks"], summary="Create a webhook endpoint (its v1 secret is shown once)")
def create_endpoint(body: EndpointIn) -> Response[EndpointCreated]:
    owner, actor = _who(WRITE)
    spec = body.model_dump(exclude_unset=True)
    spec["filters"] = [f.model_dump(exclude_unset=True) for f in body.filters]
    endpoint, shown = endpoints.create(
        wiring.endpoints(), wiring.sealer(), spec, owner, actor, utc_now(), SsrfPolicy.from_env()
    )
    out = EndpointCreated(**endpoint.public(), secret=shown if endpoint.signing == "v1" else None)
    headers = {**_NO_STORE, "Location": f"/api/v1/webhooks/{endpoint.endpoint_id}"}
    return versioned(out, 201, headers)


@router.get("/api/v1/webhooks", tags=["webhooks"], summary="Webhook endpoints: a client's own, or (admins) all")
def list_endpoints(
    client_id: Annotated[str | None, Query(min_length=1, max_length=100, description="Admins: one client's")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> EndpointPage:
    owner, _ = _who(READ)
    store = wiring.endpoints()
    if not owner.admin:
        if client_id not in (None, owner.client_id):
            raise Forbidden("A client lists only its own endpoints.", code="not_your_client")
        items, next_cursor = store.list_for_client(owner.client_id, limit, cursor)
    elif client_id:
        items, next_cursor = store.list_for_client(client_id, limit, cursor)
    else:
        items, next_cursor = store.list_all(limit, cursor)
    return EndpointPage(items=[_out(e) for e in items], next_cursor=next_cursor)


@router.get("/api/v1/webhooks/<endpoint_id>", tags=["webhooks"], summary="Read a webhook endpoint")
def get_endpoint(endpoint_id: str) -> Response[EndpointOut]:
    owner, _ = _who(READ)
    return versioned(_out(endpoints.get(wiring.endpoints(), endpoint_id, owner)))


@router.patch("/api/v1/webhooks/<endpoint_id>", tags=["webhooks"], summary="Change a webhook endpoint")
def update_endpoint(endpoint_id: str, body: EndpointUpdate) -> Response[EndpointOut]:
    owner, actor = _who(WRITE)
    expected = required_if_match(router.current_event)
    changes = body.model_dump(exclude_unset=True)
    if body.filters is not None:
        changes["filters"] = [f.model_dump(exclude_unset=True) for f in body.filters]
    for name in [k for k, v in changes.items() if v is None and k != "rate_limit_per_s"]:
        changes.pop(name)
    endpoint = endpoints.update(
        wiring.endpoints(), endpoint_id, changes, owner, actor, utc_now(), expected, SsrfPolicy.from_env()
    )
    return versioned(_out(endpoint))


@router.delete("/api/v1/webhooks/<endpoint_id>", tags=["webhooks"], summary="Delete a webhook endpoint")
def delete_endpoint(endpoint_id: str) -> Response[str]:
    owner, actor = _who(WRITE)
    endpoints.delete(wiring.endpoints(), endpoint_id, owner, actor, if_match_version(router.current_event))
    return Response(status_code=204, body="")


@router.post(
    "/api/v1/webhooks/<endpoint_id>/rotate-secret",
    tags=["webhooks"],
    summary="New signing key; the previous one signs beside it for the grace (24 h by default)",
)
def rotate_secret(endpoint_id: str, body: RotateIn) -> Response[Rotated]:
    owner, actor = _who(WRITE)
    grace = body.grace_seconds if body.grace_seconds is not None else ROTATION_GRACE_S
    endpoint, shown = endpoints.rotate(wiring.endpoints(), wiring.sealer(), endpoint_id, owner, actor, utc_now(), grace)
    v1 = endpoint.signing == "v1"
    out = Rotated(endpoint=_out(endpoint), secret=shown if v1 else None, public_key=None if v1 else shown)
    # The endpoint's new version as ETag, as for any change: the next PATCH names it.
    headers = {**_NO_STORE, "ETag": preconditions.etag(endpoint.version)}
    return Response(status_code=200, content_type="application/json", body=out, headers=headers)


@router.get(
    "/api/v1/webhooks/<endpoint_id>/public-key",
    tags=["webhooks"],
    summary="The ed25519 public key (`whpk_`) a v1a endpoint's receivers verify with",
)
def public_key(endpoint_id: str) -> PublicKeyOut:
    owner, _ = _who(READ)
    endpoint = endpoints.get(wiring.endpoints(), endpoint_id, owner)
    current = next((k for k in endpoint.keys if k.retires_at is None), None)
    if endpoint.signing != "v1a" or current is None or current.public_key is None:
        raise NotFound("This endpoint signs with a shared secret (v1): it has no public key.", code="no_public_key")
    previous = [k.public_key for k in endpoint.keys if k.retires_at is not None and k.public_key]
    return PublicKeyOut(
        endpoint_id=endpoint.endpoint_id, signing="v1a", public_key=current.public_key, previous_public_keys=previous
    )


@router.post(
    "/api/v1/webhooks/<endpoint_id>/enable",
    tags=["webhooks"],
    summary="Re-enable a disabled endpoint (failures and circuit breaker reset)",
)
def enable_endpoint(endpoint_id: str) -> Response[EndpointOut]:
    owner, actor = _who(WRITE)
    endpoint = operations.enable(wiring.endpoints(), endpoint_id, owner, actor, utc_now())
    return versioned(_out(endpoint))


@router.post(
    "/api/v1/webhooks/<endpoint_id>/test",
    tags=["webhooks"],
    summary="Send a test event now and answer with the attempt",
)
def test_endpoint(endpoint_id: str, body: TestIn) -> TestResult:
    owner, _ = _who(WRITE)
    endpoint = endpoints.get(wiring.endpoints(), endpoint_id, owner)
    delivery, attempt = operations.test_send(
        delivery_wiring.engine(), wiring.deliveries(), endpoint, body.event_type, body.test_data, utc_now()
    )
    return TestResult(
        delivery=DeliveryOut(**delivery.public()), attempt=AttemptOut(**attempt.public()) if attempt else None
    )


@router.get(
    "/api/v1/webhooks/<endpoint_id>/deliveries",
    tags=["webhooks"],
    summary="An endpoint's deliveries, newest first",
)
def list_deliveries(
    endpoint_id: str,
    status: Annotated[
        Literal["pending", "retrying", "delivered", "failed", "abandoned"] | None, Query(description="Only these")
    ] = None,
    event_type: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    since: Annotated[
        str | None, Query(max_length=40, description="Created at or after", json_schema_extra={"format": "date-time"})
    ] = None,
    until: Annotated[
        str | None, Query(max_length=40, description="Created at or before", json_schema_extra={"format": "date-time"})
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> DeliveryPage:
    owner, _ = _who(READ)
    endpoints.get(wiring.endpoints(), endpoint_id, owner)
    items, next_cursor = wiring.deliveries().list_for_endpoint(
        endpoint_id,
        limit=limit,
        cursor=cursor,
        status=status,
        event_type=event_type,
        since=operations.iso_bound(since, "since"),
        until=operations.iso_bound(until, "until"),
    )
    return DeliveryPage(items=[DeliveryOut(**d.public()) for d in items], next_cursor=next_cursor)


@router.get(
    "/api/v1/webhooks/<endpoint_id>/deliveries/<delivery_id>/attempts",
    tags=["webhooks"],
    summary="A delivery and its attempts (status, latency, error, answer sample)",
)
def list_attempts(
    endpoint_id: str,
    delivery_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> AttemptPage:
    owner, _ = _who(READ)
    delivery = operations.delivery_of(wiring.endpoints(), wiring.deliveries(), endpoint_id, delivery_id, owner)
    items, next_cursor = wiring.deliveries().attempts(delivery_id, limit, cursor)
    return AttemptPage(
        delivery=DeliveryOut(**delivery.public()),
        items=[AttemptOut(**a.public()) for a in items],
        next_cursor=next_cursor,
    )


@router.post(
    "/api/v1/webhooks/<endpoint_id>/deliveries/<delivery_id>/replay",
    tags=["webhooks"],
    summary="Send a delivery again (a fresh retry budget)",
)
def replay_delivery(endpoint_id: str, delivery_id: str) -> Response[DeliveryOut]:
    owner, _ = _who(WRITE)
    delivery = operations.replay(
        wiring.endpoints(), wiring.deliveries(), delivery_wiring.queue(), endpoint_id, delivery_id, owner, utc_now()
    )
    return Response(status_code=202, content_type="application/json", body=DeliveryOut(**delivery.public()))


@router.post(
    "/api/v1/webhooks/<endpoint_id>/recover",
    tags=["webhooks"],
    summary="Send again every failed or abandoned delivery created since a time",
)
def recover(endpoint_id: str, body: RecoverIn) -> Response[Recovered]:
    owner, _ = _who(WRITE)
    # A time without an offset is UTC (as gateway_core.clock.parse_iso reads one), not the host's zone.
    since = body.since if body.since.tzinfo else body.since.replace(tzinfo=UTC)
    reopened = operations.recover(
        wiring.endpoints(), wiring.deliveries(), delivery_wiring.queue(), endpoint_id, since, owner, utc_now()
    )
    out = Recovered(recovered=len(reopened), delivery_ids=reopened)
    return Response(status_code=202, content_type="application/json", body=out)


@router.post(
    "/api/v1/webhooks/dlq/redrive",
    tags=["webhooks"],
    summary="Move the dead-letter queue's messages back to the delivery queue (admins)",
)
def redrive() -> Redriven:
    owner, _ = _who(ADMIN)
    if not owner.admin:
        raise Forbidden("Only admins redrive the dead-letter queue.", code="insufficient_scope")
    moved, reopened = operations.redrive(
        aws.client("sqs"), wiring.endpoints(), wiring.deliveries(), delivery_wiring.queue(), utc_now()
    )
    return Redriven(moved=moved, reopened=reopened)
