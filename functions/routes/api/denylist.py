"""GET/PUT /api/v1/gateway/ip-denylist: addresses refused on every authorized route, whatever
the credential (`admin` scope). A change is audited and flushes the authorizer cache."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, Field

from functions.routes.api.caller import actor
from functions.routes.dal import authorizer_cache
from functions.routes.dal.denylist_store import DynamoDenylistStore
from functions.routes.logic.denylist import replace_denylist
from gateway_core import aws
from gateway_core.clock import utc_now
from gateway_core.settings import settings

router = APIGatewayRouter()


class DenylistIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cidrs: list[str] = Field(max_length=500, description="IPv4 or IPv6 networks; an address is a /32 or /128")


class DenylistOut(BaseModel):
    cidrs: list[str]
    updated_at: str | None
    version: int


def _store() -> DynamoDenylistStore:
    return DynamoDenylistStore(aws.client("dynamodb"), settings().table_name)


@router.get("/api/v1/gateway/ip-denylist", tags=["gateway"], summary="The global IP denylist")
def get_denylist() -> DenylistOut:
    actor(router.current_event, required_scope="admin")
    return DenylistOut(**_store().get())


@router.put("/api/v1/gateway/ip-denylist", tags=["gateway"], summary="Replace the global IP denylist")
def put_denylist(body: DenylistIn) -> DenylistOut:
    caller = actor(router.current_event, required_scope="admin")
    after = replace_denylist(_store(), body.cidrs, caller, utc_now())
    authorizer_cache.flush(aws.client("apigateway"), settings().rest_api_id, settings().stage)
    return DenylistOut(**after)
