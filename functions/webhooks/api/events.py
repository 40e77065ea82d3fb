"""/api/v1/events: the catalog of event types (with the JSON Schema of each one's data) and a
trigger that publishes a test event through the same publisher as the product's changes."""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.webhooks import delivery_wiring
from functions.webhooks.api.models import EventTypeOut, EventTypes, Triggered, TriggerIn
from gateway_core.api_caller import caller
from gateway_core.errors import Forbidden, ValidationFailed
from gateway_core.event_catalog import EVENT_TYPES

router = APIGatewayRouter()
TRIGGER_SCOPE = "events:write"
MAX_DATA_BYTES = 64 * 1024


def catalog() -> EventTypes:
    return EventTypes(
        items=[
            EventTypeOut.model_validate({"type": name, "description": kind.description, "schema": kind.schema})
            for name, kind in sorted(EVENT_TYPES.items())
        ]
    )


@router.get("/api/v1/events/types", tags=["events"], summary="Every event type, with the JSON Schema of its data")
def event_types() -> EventTypes:
    caller(router.current_event)  # any authenticated client may read the catalog
    return catalog()


@router.get("/api/v1/docs/events", tags=["events"], summary="The event catalog (the same as /api/v1/events/types)")
def event_docs() -> EventTypes:
    caller(router.current_event)
    return catalog()


@router.post("/api/v1/events/trigger", tags=["events"], summary="Publish a test event (admin or events:write)")
def trigger(body: TriggerIn) -> Response[Triggered]:
    who = caller(router.current_event)
    admin = "admin" in who.scopes
    if not admin and TRIGGER_SCOPE not in who.scopes:
        raise Forbidden(
            f"This operation needs the '{TRIGGER_SCOPE}' scope (or admin).",
            code="insufficient_scope",
            extensions={"required_scope": TRIGGER_SCOPE},
        )
    if body.event_type not in EVENT_TYPES:
        raise ValidationFailed(
            f"Unknown event type {body.event_type!r}: see GET /api/v1/events/types.", code="unknown_event_type"
        )
    if body.client_id is not None and not admin:
        raise Forbidden("Only admins publish events about another client.", code="not_your_client")
    if len(json.dumps(body.data)) > MAX_DATA_BYTES:
        raise ValidationFailed("data is at most 64 KB.", code="data_too_large")
    # A client's test event is about itself and reaches only its own endpoints (admins' endpoints
    # hear the gateway's own events, never one a client made up); an admin's reaches any.
    about = body.client_id if admin else who.client_id
    event_id = delivery_wiring.publisher().publish(body.event_type, body.data, client_id=about, private=not admin)
    out = Triggered(event_id=event_id, event_type=body.event_type)
    return Response(status_code=202, content_type="application/json", body=out)
