"""GET /api/v1/audit/events: read-only; by day (default today, UTC) or by target."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.routes.api.client_models import AuditEventOut, AuditPage
from functions.routes.dal.audit_store import DynamoAuditReader
from gateway_core import aws
from gateway_core.api_caller import actor
from gateway_core.clock import iso, utc_now
from gateway_core.settings import settings

router = APIGatewayRouter()


@router.get("/api/v1/audit/events", tags=["audit"], summary="Audit events, newest first")
def events(
    day: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="UTC day; default today")] = None,
    target: Annotated[str | None, Query(max_length=200, description="e.g. client/cl_...")] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    actor_id: Annotated[str | None, Query(alias="actor", max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> AuditPage:
    actor(router.current_event, required_scope="admin")
    reader = DynamoAuditReader(aws.client("dynamodb"), settings().table_name)
    items, next_cursor = reader.query(
        day=day or iso(utc_now())[:10], target=target, action=action, actor=actor_id, limit=limit, cursor=cursor
    )
    return AuditPage(items=[AuditEventOut.model_validate(i) for i in items], next_cursor=next_cursor)
