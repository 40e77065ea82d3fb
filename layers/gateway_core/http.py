"""HTTP glue shared by every REST function: a powertools resolver whose errors are problem+json."""

from __future__ import annotations

import base64
import binascii
import types
from typing import Any, Union, get_args, get_origin

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel

from gateway_core.cors import Cors
from gateway_core.errors import (
    PROBLEM_CONTENT_TYPE,
    BadRequest,
    GatewayError,
    problem_body,
    problem_from_error,
    problem_json,
)
from gateway_core.json_body import read_json
from gateway_core.json_numbers import integers_where_the_schema_says


def _request_id(app: APIGatewayRestResolver) -> str | None:
    try:
        return str(app.current_event.request_context.request_id)
    except Exception:  # noqa: BLE001 - no event context (direct call): no id to report
        return None


def _path(app: APIGatewayRestResolver) -> str | None:
    try:
        return str(app.current_event.path)
    except Exception:  # noqa: BLE001
        return None


# The methods a REST API resource can define, in the order an `Allow` header lists them (the
# same order as the template's 405 answers, infra/constructs/api.py METHOD_ORDER).
METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: APIGatewayRestResolver, path: str) -> list[str]:
    """The methods the resolver serves on a path, in METHOD_ORDER; OPTIONS too when it answers
    preflights (CORS on). Read from the registered routes: powertools offers no public way, and
    tests/integration/test_method_not_allowed.py fails if an upgrade renames what this reads."""
    routes = app._static_routes + app._dynamic_routes
    served = {route.method for route in routes if route.rule.match(path)}
    if served and app._cors is not None:
        served.add("OPTIONS")
    return [method for method in METHOD_ORDER if method in served]


def problem_response(
    app: APIGatewayRestResolver,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    extensions: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[str]:
    body = problem_body(
        status=status,
        code=code,
        title=title,
        detail=detail,
        request_id=_request_id(app),
        instance=_path(app),
        extensions=extensions,
    )
    return Response(
        status_code=status,
        content_type=PROBLEM_CONTENT_TYPE,
        body=problem_json(body),
        headers=headers,
    )


class _VaryingCors(CORSConfig):
    """The allowed origin depends on the request's Origin: caches must key on it."""

    def to_dict(self, origin: str | None) -> dict[str, str]:
        headers = dict(super().to_dict(origin))
        if headers:
            headers["Vary"] = "Origin"
        return headers


def cors_config() -> CORSConfig | None:
    """CORS from the environment the stack sets (context `corsAllowOrigins` and friends); None
    when no origin is allowed. Powertools answers preflight requests and adds the headers to every
    response, errors included, only for an Origin on the list."""
    cors = Cors.from_env()
    if cors is None:
        return None
    return _VaryingCors(
        allow_origin=cors.origins[0],
        extra_origins=list(cors.origins[1:]),
        allow_headers=list(cors.allow_headers),
        expose_headers=list(cors.expose_headers),
        max_age=cors.max_age,
    )


def event_body(event: Any) -> bytes:
    """The bytes of a proxy event's body (base64-encoded whenever the API's binary media types
    match, which `*/*` always does)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as error:
            raise BadRequest("The body is not valid base64.", code="invalid_body") from error
    # Surrogates pass through as the bytes they stand for, for the UTF-8 check to refuse.
    return str(body).encode("utf-8", errors="surrogatepass")


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a body parameter's type names (`Model`, `Model | None`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (Union, types.UnionType):
        return [model for arg in get_args(annotation) for model in _models(arg)]
    return []


def _body_models(route: Any) -> list[type[BaseModel]]:
    """The model of the route's one (not embedded) body parameter, if it has one."""
    params = list(route.dependant.body_params)
    if len(params) != 1 or getattr(params[0].field_info, "embed", None):
        return []
    return _models(params[0].type_)


def _defaults_suffice(route: Any) -> bool:
    """Whether `{}` is a valid body for the route: its one body model has a default for every
    member (deploy, rollback, a rotation), or each of its embedded body parameters has one."""
    params = list(route.dependant.body_params)
    if not params:
        return False
    models = _body_models(route)
    if models:
        return all(not member.is_required() for model in models for member in model.model_fields.values())
    if len(params) == 1 and not getattr(params[0].field_info, "embed", None):
        return False  # one body parameter that is not a model
    return all(not param.required for param in params)


class _JsonBodies(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation with every body read by `gateway_core.json_body` instead of
    by content type: its own reading answers 500 for a body that is not UTF-8, nested too deeply,
    holds a 5,000-digit number or is labelled anything but JSON, and takes NaN, duplicate names
    and form or multipart bodies. An empty body (no bytes, labelled or not) is `{}` where that is
    a valid body (every member has a default), and missing (422) where a member is required."""

    def _get_body(self, app: Any) -> Any:
        event = app.current_event
        body = event_body(event.raw_event)
        if not body and _defaults_suffice(app.context["_route"]):
            return {}
        value = read_json(
            body,
            event.headers.get("content-type"),
            content_encoding=event.headers.get("content-encoding"),
        )
        models = _body_models(app.context["_route"])
        return integers_where_the_schema_says(value, models[0]) if len(models) == 1 else value


def build_resolver(
    logger: Logger, resolver_class: type[APIGatewayRestResolver] = APIGatewayRestResolver
) -> APIGatewayRestResolver:
    """A resolver with validation on and every failure mapped to RFC 9457 problem details."""
    app = resolver_class(enable_validation=True, cors=cors_config())
    # Powertools takes the request validation middleware from this attribute when it builds a
    # route's middleware stack (first, before any other); there is no public way to replace it.
    # tests/integration/test_request_bodies.py fails if a powertools upgrade stops reading it.
    app._request_validation_middleware = _JsonBodies()

    @app.exception_handler(GatewayError)
    def _gateway_error(error: GatewayError) -> Response[str]:
        body = problem_from_error(error, request_id=_request_id(app), instance=_path(app))
        return Response(
            status_code=error.status,
            content_type=PROBLEM_CONTENT_TYPE,
            body=problem_json(body),
            headers=error.headers or None,
        )

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response[str]:
        errors = [
            {
                "loc": [str(part) for part in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in error.errors()
        ]
        return problem_response(
            app,
            status=422,
            code="validation_failed",
            title="Unprocessable Content",
            detail="The request does not match the expected schema.",
            extensions={"errors": errors},
        )

    @app.not_found
    def _not_found(_: NotFoundError) -> Response[str]:
        # A path served for other methods is a 405 naming them (RFC 9110 section 15.5.6), as API
        # Gateway's MOCK methods answer on resources with explicit methods.
        allow = ", ".join(allowed_methods(app, _path(app) or ""))
        if allow:
            return problem_response(
                app,
                status=405,
                code="method_not_allowed",
                title="Method Not Allowed",
                detail=f"This path does not serve this method; it serves {allow}.",
                headers={"Allow": allow},
            )
        return problem_response(
            app,
            status=404,
            code="route_not_found",
            title="Not Found",
            detail="No route matches this method and path.",
        )

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        # A 500 is a bug: log it with the stack, answer without internals.
        logger.exception("unhandled error", extra={"error_type": type(error).__name__})
        return problem_response(
            app,
            status=500,
            code="internal_error",
            title="Internal Server Error",
            detail="The gateway failed to handle this request; quote the request id.",
        )

    return app
