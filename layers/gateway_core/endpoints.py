"""API Gateway REST events (Lambda proxy integration, payload 1.0) served without a resolver.

The functions that must start fast (the data plane, OAuth2, health, and the functions without an
API yet) match a request's method and path to a plain function here instead of importing
powertools' event handler, pydantic and the OpenAPI machinery. What a caller sees is the same as
from the resolver (`gateway_core.http`): errors are RFC 9457 problems with the same codes
(`route_not_found`, `internal_error`, a `GatewayError`'s own), and CORS headers come from the same
settings (`gateway_core.cors`). Stdlib only.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from gateway_core.cors import Cors
from gateway_core.errors import PROBLEM_CONTENT_TYPE, GatewayError, NotFound, problem_from_error, problem_json
from gateway_core.fields import writable_headers

log = logging.getLogger(__name__)


class Request(NamedTuple):
    """What a handler needs of the event; names of headers are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, list[str]]
    body: bytes
    request_id: str
    source_ip: str
    # The authorizer's context (empty on public methods) and the verified client certificate.
    authorizer: dict[str, Any]
    client_cert_pem: str

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Request:
        context = event.get("requestContext") or {}
        identity = context.get("identity") or {}
        cert = identity.get("clientCert") or {}
        body = event.get("body") or ""
        return cls(
            method=str(event.get("httpMethod") or "GET").upper(),
            path=str(event.get("path") or "/"),
            headers=_headers(event),
            query={k: list(v or ()) for k, v in (event.get("multiValueQueryStringParameters") or {}).items()},
            body=base64.b64decode(body) if event.get("isBase64Encoded") else body.encode(),
            request_id=str(context.get("requestId") or ""),
            source_ip=str(identity.get("sourceIp") or ""),
            authorizer=dict(context.get("authorizer") or {}),
            client_cert_pem=str(cert.get("clientCertPem") or "") if isinstance(cert, dict) else "",
        )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    multi = event.get("multiValueHeaders") or {}
    if multi:
        return {k.lower(): ", ".join(v) for k, v in multi.items() if v is not None}
    return {k.lower(): v for k, v in (event.get("headers") or {}).items() if v is not None}


class Reply:
    """An answer; its headers are completed on the way out (CORS), so they belong to it alone."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str] | None = None, body: bytes | str = b"") -> None:
        self.status = status
        self.headers = dict(headers or {})
        self.body = body

    @classmethod
    def json(cls, status: int, text: str, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, {"Content-Type": "application/json", **(headers or {})}, text)

    def result(self) -> dict[str, Any]:
        """The Lambda proxy result of a text answer (what our own endpoints give: JSON, problems).
        An answer that may be binary says so itself (the proxy's, functions/routes/api/proxy.py)."""
        text = self.body if isinstance(self.body, str) else self.body.decode("utf-8")
        return {"statusCode": self.status, "headers": self.headers, "body": text, "isBase64Encoded": False}


def problem(error: GatewayError, request: Request) -> Reply:
    body = problem_from_error(error, request_id=request.request_id or None, instance=request.path)
    return Reply(error.status, {"Content-Type": PROBLEM_CONTENT_TYPE, **error.headers}, problem_json(body))


def _route_not_found(request: Request) -> Reply:
    return problem(NotFound("No route matches this method and path.", code="route_not_found"), request)


def _internal_error(request: Request) -> Reply:
    return problem(GatewayError("The gateway failed to handle this request; quote the request id."), request)


Handler = Callable[[Request], Reply]


class Endpoint(NamedTuple):
    """One operation: a method on an exact path, or on a path and everything below it
    (`subtree`, for greedy API Gateway resources such as `/gw/{proxy+}`)."""

    method: str  # "ANY" for every method
    path: str
    handler: Handler
    subtree: bool = False
    # False for an endpoint that answers browsers by its own rules (the proxy applies each
    # gateway's CORS settings; the API's would contradict them).
    cors: bool = True

    def serves(self, path: str) -> bool:
        if self.subtree:
            return path == self.path or path.startswith(self.path.rstrip("/") + "/")
        return path == self.path


class Endpoints:
    """Routes a request to its endpoint and turns whatever happens into an answer:
    a `GatewayError` becomes its problem, anything else a logged 500 problem, an unknown method
    or path a 404 `route_not_found`; a CORS preflight of a served path is answered here."""

    def __init__(self, endpoints: list[Endpoint], *, on_error: Callable[[Exception], None] | None = None) -> None:
        self.endpoints = endpoints
        self.on_error = on_error
        self.cors = Cors.from_env()  # a function's environment is fixed for its lifetime

    def __call__(self, event: Mapping[str, Any]) -> dict[str, Any]:
        result = self.reply(Request.from_event(event)).result()
        # Whatever a handler or an upstream put in a header, only what HTTP can carry leaves: an
        # unwritable value (a route's rule rendering U+2028 or CR LF) is left out, not sent to
        # split the header or fail the whole answer.
        result["headers"], dropped = writable_headers(result.get("headers") or {})
        if dropped:
            log.warning(
                "headers left out of an answer: not writable as HTTP", extra={"headers": [n[:64] for n in dropped[:10]]}
            )
        return result

    def reply(self, request: Request) -> Reply:
        cors = self.cors
        origin = request.header("origin")
        served = [e for e in self.endpoints if e.serves(request.path)]
        chosen = next((e for e in served if e.method in (request.method, "ANY")), None)
        try:
            if chosen is not None:
                reply = chosen.handler(request)
            elif cors is not None and request.method == "OPTIONS" and served:
                methods = {"OPTIONS", *(e.method for e in served if e.method != "ANY")}
                reply = Reply(204, {"Access-Control-Allow-Methods": ",".join(sorted(methods))}, "")
            else:
                reply = _route_not_found(request)
        except GatewayError as error:
            reply = problem(error, request)
        except Exception as error:  # noqa: BLE001 - a bug of ours: logged by the caller, answered 500
            if self.on_error:
                self.on_error(error)
            reply = _internal_error(request)
        if cors is not None and (chosen is None or chosen.cors):
            for name, value in cors.headers(origin).items():
                reply.headers.setdefault(name, value)
        return reply
