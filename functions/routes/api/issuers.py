"""/api/v1/gateway/issuers: the external token issuers whose JWTs the JWT authorizer accepts.
`admin` scope; every change is audited and flushes the authorizer cache (a disabled or deleted
issuer's cached Allows must go). An issuer's `ETag` is its version: PATCH needs it in `If-Match`
(or `*`), DELETE honours it when sent."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, Field

from functions.routes.dal import authorizer_cache
from functions.routes.dal.issuers_store import DynamoIssuerStore
from functions.routes.logic import issuers
from functions.routes.logic.catalog import Tier
from functions.routes.logic.schema_hints import Algorithm, IssuerScope, NonBlank, absent_or_set
from gateway_core import aws, preconditions
from gateway_core.api_caller import actor, if_match_version, required_if_match
from gateway_core.clock import utc_now
from gateway_core.settings import settings

router = APIGatewayRouter()
ADMIN = "admin"


class IssuerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    issuer: str = Field(min_length=1, max_length=512, description="The `iss` its tokens carry")
    jwks_url: str = Field(min_length=1, max_length=2048)
    audiences: list[NonBlank] = Field(min_length=1, max_length=10, description="`aud` values we accept")
    algorithms: list[Algorithm] = Field(
        default_factory=lambda: ["RS256"], min_length=1, max_length=10, description="Asymmetric only"
    )
    allowed_scopes: list[IssuerScope] = Field(
        default_factory=list, max_length=50, description="Scopes accepted from it; never admin"
    )
    tier: Tier = "free"


class IssuerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=absent_or_set())
    jwks_url: str | None = Field(default=None, min_length=1, max_length=2048)
    audiences: list[NonBlank] | None = Field(default=None, min_length=1, max_length=10)
    algorithms: list[Algorithm] | None = Field(default=None, min_length=1, max_length=10)
    allowed_scopes: list[IssuerScope] | None = Field(default=None, max_length=50)
    tier: Tier | None = None
    status: Literal["active", "disabled"] | None = None


class IssuerOut(BaseModel):
    issuer_id: str
    issuer: str
    jwks_url: str
    audiences: list[str]
    algorithms: list[str]
    allowed_scopes: list[str]
    tier: str
    status: Literal["active", "disabled"]
    created_at: str
    updated_at: str
    version: int


class IssuerPage(BaseModel):
    items: list[IssuerOut]
    next_cursor: str | None


def _store() -> DynamoIssuerStore:
    return DynamoIssuerStore(aws.client("dynamodb"), settings().table_name)


def _flush() -> None:
    authorizer_cache.flush(aws.client("apigateway"), settings().rest_api_id, settings().stage)


def _out(issuer: issuers.ExternalIssuer) -> IssuerOut:
    return IssuerOut.model_validate(issuer.public())


def _answer(
    issuer: issuers.ExternalIssuer, status: int = 200, headers: dict[str, str] | None = None
) -> Response[IssuerOut]:
    """The issuer with its version as ETag (the If-Match of a later change)."""
    return Response(
        status_code=status,
        content_type="application/json",
        body=_out(issuer),
        headers={**(headers or {}), "ETag": preconditions.etag(issuer.version)},
    )


@router.post("/api/v1/gateway/issuers", tags=["gateway"], summary="Trust an external token issuer")
def register_issuer(body: IssuerIn) -> Response[IssuerOut]:
    caller = actor(router.current_event, required_scope=ADMIN)
    spec = issuers.IssuerSpec(**body.model_dump(exclude={"issuer"}))
    created = issuers.register(
        _store(), body.issuer, spec, own_issuer=settings().token_issuer, actor=caller, now=utc_now()
    )
    _flush()  # an earlier refusal of this issuer's tokens may sit in the cache
    return _answer(created, 201, {"Location": f"/api/v1/gateway/issuers/{created.issuer_id}"})


@router.get("/api/v1/gateway/issuers", tags=["gateway"], summary="List external token issuers, newest first")
def list_issuers(
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> IssuerPage:
    actor(router.current_event, required_scope=ADMIN)
    items, next_cursor = issuers.list_issuers(_store(), limit, cursor)
    return IssuerPage(items=[_out(i) for i in items], next_cursor=next_cursor)


@router.get("/api/v1/gateway/issuers/<issuer_id>", tags=["gateway"], summary="Read an external token issuer")
def get_issuer(issuer_id: str) -> Response[IssuerOut]:
    actor(router.current_event, required_scope=ADMIN)
    return _answer(issuers.get(_store(), issuer_id))


@router.patch("/api/v1/gateway/issuers/<issuer_id>", tags=["gateway"], summary="Change or disable an issuer")
def update_issuer(issuer_id: str, body: IssuerUpdate) -> Response[IssuerOut]:
    caller = actor(router.current_event, required_scope=ADMIN)
    expected = required_if_match(router.current_event)
    changed = issuers.update(_store(), issuer_id, body.model_dump(exclude_unset=True), caller, utc_now(), expected)
    _flush()
    return _answer(changed)


@router.delete("/api/v1/gateway/issuers/<issuer_id>", tags=["gateway"], summary="Stop trusting an issuer")
def delete_issuer(issuer_id: str) -> Response[str]:
    caller = actor(router.current_event, required_scope=ADMIN)
    issuers.delete(_store(), issuer_id, caller, if_match_version(router.current_event))
    _flush()
    return Response(status_code=204, body="")
