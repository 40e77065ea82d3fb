"""/api/v1/gateways and /api/v1/gateway/routes: gateways, their routes (drafts) and deployments.

Writes need the `admin` scope; reads `admin` or `gateway:read`. Routes are drafts until their
gateway is deployed: the proxy serves deployed versions only. A PUT needs `If-Match` with the
version an admin read (the `ETag` of GET; `*` for whatever is there), so concurrent edits cannot
overwrite each other (428 without it, 412 when stale); the canary is part of its gateway and takes
the gateway's ETag. DELETE honours an `If-Match` when one is sent.
"""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, Field

from functions.routes.dal.gateways_store import DynamoGatewayStore
from functions.routes.logic import gateway_admin
from functions.routes.logic.gateways import DeployRequest, Gateway, GatewaySpec
from functions.routes.logic.route_spec import Route, RouteSpec
from gateway_core import aws
from gateway_core.api_caller import actor, caller, if_match_version, required_if_match
from gateway_core.audit import Actor
from gateway_core.clock import utc_now
from gateway_core.errors import Forbidden
from gateway_core.settings import settings

router = APIGatewayRouter()
ADMIN = "admin"
READ = "gateway:read"
# Versions are kept under VERSION#<n:08d> (dal/gateways_store.py): eight digits keep their order.
MAX_VERSION = 99_999_999


def _store() -> DynamoGatewayStore:
    return DynamoGatewayStore(aws.client("dynamodb"), settings().table_name)


def _admin() -> Actor:
    return actor(router.current_event, required_scope=ADMIN)


def _reader() -> None:
    who = caller(router.current_event)
    if ADMIN not in who.scopes and READ not in who.scopes:
        raise Forbidden(
            "This operation needs the 'gateway:read' or 'admin' scope.",
            code="insufficient_scope",
            extensions={"required_scope": READ},
        )


def _json(
    model: BaseModel, status: int = 200, location: str | None = None, version: int | None = None
) -> Response[str]:
    headers = {}
    if location:
        headers["Location"] = location
    if version is not None:
        headers["ETag"] = f'"{version}"'
    return Response(status_code=status, content_type="application/json", body=model.model_dump_json(), headers=headers)


class GatewayPage(BaseModel):
    items: list[Gateway]
    next_cursor: str | None


class RouteList(BaseModel):
    items: list[Route]
    next_cursor: str | None = None


class DeployIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    description: str = Field(default="", max_length=500)
    strategy: Literal["all", "canary", "staged"] = Field(
        default="all", description="all: serve it now; canary: serve canary_percent of callers; staged: publish only"
    )
    canary_percent: int = Field(default=0, ge=0, le=99)


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    version: int = Field(ge=1, le=MAX_VERSION)


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    version: int | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="Default: the version before the active one"
    )


class CanaryIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    percent: int = Field(ge=0, le=99, description="0 ends the canary")


class VersionSummary(BaseModel):
    gateway_id: str
    version: int
    description: str
    created_at: str
    created_by: str
    routes: int


class VersionList(BaseModel):
    items: list[VersionSummary]


class VersionOut(VersionSummary):
    settings: GatewaySpec
    route_list: list[Route]


# -- gateways ---------------------------------------------------------------------------------


@router.post("/api/v1/gateways", tags=["gateways"], summary="Create a gateway")
def create_gateway(body: GatewaySpec) -> Response[str]:
    created = gateway_admin.create_gateway(_store(), body, _admin(), utc_now())
    return _json(created, 201, f"/api/v1/gateways/{created.gateway_id}", created.version)


@router.get("/api/v1/gateways", tags=["gateways"], summary="List gateways, newest first")
def list_gateways(
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> GatewayPage:
    _reader()
    items, next_cursor = _store().gateways(limit, cursor)
    return GatewayPage(items=items, next_cursor=next_cursor)


@router.get("/api/v1/gateways/<gateway_id>", tags=["gateways"], summary="Read a gateway and its deployment")
def get_gateway(gateway_id: str) -> Response[str]:
    _reader()
    found = gateway_admin.get_gateway(_store(), gateway_id)
    return _json(found, version=found.version)


@router.put("/api/v1/gateways/<gateway_id>", tags=["gateways"], summary="Change a gateway's settings (deploy to serve)")
def update_gateway(gateway_id: str, body: GatewaySpec) -> Response[str]:
    who = _admin()
    expected = required_if_match(router.current_event)
    changed = gateway_admin.update_gateway(_store(), gateway_id, body, who, utc_now(), expected)
    return _json(changed, version=changed.version)


@router.delete("/api/v1/gateways/<gateway_id>", tags=["gateways"], summary="Delete a gateway without routes")
def delete_gateway(gateway_id: str) -> Response[str]:
    gateway_admin.delete_gateway(_store(), gateway_id, _admin(), if_match_version(router.current_event))
    return Response(status_code=204, body="")


@router.post("/api/v1/gateways/<gateway_id>/deploy", tags=["gateways"], summary="Publish the routes as a new version")
def deploy(gateway_id: str, body: DeployIn) -> Response[str]:
    request = DeployRequest(description=body.description, strategy=body.strategy, canary_percent=body.canary_percent)
    changed = gateway_admin.deploy(_store(), gateway_id, request, _admin(), utc_now())
    return _json(changed, 201, f"/api/v1/gateways/{gateway_id}/versions/{changed.deployment.latest_version}")


@router.post("/api/v1/gateways/<gateway_id>/activate", tags=["gateways"], summary="Serve a version (blue-green switch)")
def activate(gateway_id: str, body: VersionIn) -> Response[str]:
    return _json(gateway_admin.activate_version(_store(), gateway_id, body.version, _admin(), utc_now()))


@router.post("/api/v1/gateways/<gateway_id>/rollback", tags=["gateways"], summary="Serve an earlier version")
def rollback(gateway_id: str, body: RollbackIn) -> Response[str]:
    return _json(gateway_admin.rollback(_store(), gateway_id, body.version, _admin(), utc_now()))


@router.put("/api/v1/gateways/<gateway_id>/canary", tags=["gateways"], summary="Change the canary's share")
def canary(gateway_id: str, body: CanaryIn) -> Response[str]:
    who = _admin()
    expected = required_if_match(router.current_event)
    changed = gateway_admin.canary(_store(), gateway_id, body.percent, who, utc_now(), expected)
    return _json(changed, version=changed.version)


@router.post("/api/v1/gateways/<gateway_id>/promote", tags=["gateways"], summary="Serve the canary to everyone")
def promote(gateway_id: str) -> Response[str]:
    return _json(gateway_admin.promote_canary(_store(), gateway_id, _admin(), utc_now()))


@router.get("/api/v1/gateways/<gateway_id>/versions", tags=["gateways"], summary="Deployed versions, newest first")
def list_versions(gateway_id: str) -> VersionList:
    _reader()
    gateway_admin.get_gateway(_store(), gateway_id)
    return VersionList(items=[VersionSummary.model_validate(s) for s in _store().versions(gateway_id)])


@router.get("/api/v1/gateways/<gateway_id>/versions/<version>", tags=["gateways"], summary="A deployed version")
def get_version(gateway_id: str, version: Annotated[int, Path(ge=1, le=MAX_VERSION)]) -> VersionOut:
    _reader()
    found = gateway_admin.get_version(_store(), gateway_id, version)
    return VersionOut(**found.summary() | {"settings": found.settings, "route_list": found.routes})


# -- routes -----------------------------------------------------------------------------------


@router.post("/api/v1/gateway/routes", tags=["routes"], summary="Create a route (a draft until deployed)")
def create_route(body: RouteSpec) -> Response[str]:
    created = gateway_admin.create_route(_store(), body, _admin(), utc_now())
    return _json(created, 201, f"/api/v1/gateway/routes/{created.route_id}", created.version)


@router.get(
    "/api/v1/gateway/routes", tags=["routes"], summary="Routes: of one gateway (all), or of every gateway (paged)"
)
def list_routes(
    gateway_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> RouteList:
    _reader()
    if gateway_id is not None:
        return RouteList(items=gateway_admin.list_routes(_store(), gateway_id))
    items, next_cursor = _store().route_page(limit, cursor)
    return RouteList(items=items, next_cursor=next_cursor)


@router.get("/api/v1/gateway/routes/<route_id>", tags=["routes"], summary="Read a route")
def get_route(route_id: str) -> Response[str]:
    _reader()
    found = gateway_admin.get_route(_store(), route_id)
    return _json(found, version=found.version)


@router.put("/api/v1/gateway/routes/<route_id>", tags=["routes"], summary="Replace a route")
def update_route(route_id: str, body: RouteSpec) -> Response[str]:
    who = _admin()
    expected = required_if_match(router.current_event)
    changed = gateway_admin.update_route(_store(), route_id, body, who, utc_now(), expected)
    return _json(changed, version=changed.version)


@router.delete("/api/v1/gateway/routes/<route_id>", tags=["routes"], summary="Delete a route")
def delete_route(route_id: str) -> Response[str]:
    gateway_admin.delete_route(_store(), route_id, _admin(), if_match_version(router.current_event))
    return Response(status_code=204, body="")
