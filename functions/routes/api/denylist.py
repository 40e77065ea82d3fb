"""GET/PUT /api/v1/gateway/ip-denylist: addresses refused on every authorized route, whatever
the credential (`admin` scope). A change is audited and flushes the authorizer cache. The list's
`ETag` is its version (0 before its first change): PUT needs it in `If-Match` (or `*`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, Field

from functions.routes.dal import authorizer_cache
from functions.routes.dal.denylist_store import DynamoDenylistStore
from functions.routes.logic import lockout
from functions.routes.logic.denylist import replace_denylist
from gateway_core import aws, preconditions
from gateway_core.api_caller import actor, required_if_match
from gateway_core.clock import utc_now
from gateway_core.settings import settings

router = APIGatewayRouter()


class DenylistIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    cidrs: list[str] = Field(max_length=500, description="IPv4 or IPv6 networks; an address is a /32 or /128")


class DenylistOut(BaseModel):
    cidrs: list[str]
    updated_at: str | None
    version: int


def _store() -> DynamoDenylistStore:
    return DynamoDenylistStore(aws.client("dynamodb"), settings().table_name)


def _answer(denylist: dict[str, Any]) -> Response[DenylistOut]:
    """The list with its version as ETag (the If-Match of the next change)."""
    out = DenylistOut(**denylist)
    return Response(
        status_code=200,
        content_type="application/json",
        body=out,
        headers={"ETag": preconditions.etag(out.version)},
    )


@router.get("/api/v1/gateway/ip-denylist", tags=["gateway"], summary="The global IP denylist")
def get_denylist() -> Response[DenylistOut]:
    actor(router.current_event, required_scope="admin")
    return _answer(_store().get())


@router.put("/api/v1/gateway/ip-denylist", tags=["gateway"], summary="Replace the global IP denylist")
def put_denylist(body: DenylistIn) -> Response[DenylistOut]:
    caller = actor(router.current_event, required_scope="admin")
    expected = required_if_match(router.current_event)
    lockout.refuse_own_address(router.current_event.request_context.identity.source_ip, body.cidrs)
    after = replace_denylist(_store(), body.cidrs, caller, utc_now(), expected)
    authorizer_cache.flush(aws.client("apigateway"), settings().rest_api_id, settings().stage)
    return _answer(after)
