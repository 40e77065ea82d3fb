"""Who is calling the admin APIs (management, webhooks), and the route's scope check, over powertools' event (the
identity itself is read by `gateway_core.caller`, shared with the data plane)."""

from __future__ import annotations

import re
from typing import Protocol, TypeVar

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from gateway_core import preconditions
from gateway_core.audit import Actor
from gateway_core.caller import Caller, required_caller
from gateway_core.cert_binding import client_cert_pem
from gateway_core.errors import BadRequest, Forbidden

# An ETag as we issue it ("<n>"), bare or weak; `*` is read before.
IF_MATCH = re.compile(r'\s*(?:W/)?(?:"([0-9]{1,12})"|([0-9]{1,12}))\s*')

__all__ = ["Caller", "actor", "caller", "conditions", "if_match_version", "required_if_match", "versioned"]


def caller(event: APIGatewayProxyEvent) -> Caller:
    return required_caller(event.request_context.authorizer.raw_event or {}, client_cert_pem(event.request_context))


def actor(event: APIGatewayProxyEvent, *, required_scope: str) -> Actor:
    who = caller(event)
    if required_scope not in who.scopes:
        raise Forbidden(
            f"This operation needs the '{required_scope}' scope.",
            code="insufficient_scope",
            extensions={"required_scope": required_scope},
        )
    return Actor(
        client_id=who.client_id,
        credential_kind=who.credential_kind,
        credential_id=who.credential_id,
        request_id=str(event.request_context.request_id),
    )


def _header(event: APIGatewayProxyEvent, name: str) -> str | None:
    headers = event.headers or {}
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return None


def if_match_version(event: APIGatewayProxyEvent) -> int | None:
    """The version an `If-Match` names (our ETags are the version number), or None when absent or
    `*` (which matches any current version, RFC 9110 13.1.1). Where If-Match is optional (DELETE)."""
    value = _header(event, "if-match")
    if value is None or value.strip() == "*":
        return None
    # ASCII digits only: int() would also take "1_000", "+3" or other scripts' digits.
    version = IF_MATCH.fullmatch(value)
    if version is None:
        raise BadRequest('If-Match carries the version from the ETag, e.g. "3".', code="invalid_if_match")
    return int(version.group(1) or version.group(2))


def required_if_match(event: APIGatewayProxyEvent) -> preconditions.Expected:
    """For a PUT or PATCH of an existing resource: the version If-Match names (None for `*`), or
    ABSENT without one, which the logic answers with 428 once it knows the resource exists."""
    if _header(event, "if-match") is None:
        return preconditions.ABSENT
    return if_match_version(event)


def conditions(event: APIGatewayProxyEvent) -> preconditions.Conditions:
    """The conditional headers of a PUT that may create (a secret)."""
    none_match = _header(event, "if-none-match")
    return preconditions.Conditions(
        if_match=_header(event, "if-match") is not None,
        version=if_match_version(event),
        if_none_match_any=none_match is not None and none_match.strip() == "*",
    )


class _Versioned(Protocol):
    version: int


_V = TypeVar("_V", bound=_Versioned)


def versioned(out: _V, status: int = 200, headers: dict[str, str] | None = None) -> Response[_V]:
    """A resource's answer with its version as ETag (the If-Match of a later change)."""
    return Response(
        status_code=status,
        content_type="application/json",
        body=out,
        headers={**(headers or {}), "ETag": preconditions.etag(out.version)},
    )
