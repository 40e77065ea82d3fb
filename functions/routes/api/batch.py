"""`POST /api/v1/batch`: up to 25 requests to proxied routes, run concurrently, each through the
same credentials, scopes, limits, transformations and logs as if it came alone; the answer lists
each one's status, headers and body in the order given. A sub-request's failure is its own
answer; the batch itself answers 200 once it has run them all."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from functions.routes.api.proxy import PREFIX, proxy, proxy_caller
from functions.routes.logic.proxy import ProxyRequest, ProxyResponse

router = APIGatewayRouter()
MAX_REQUESTS = 25
MAX_PARALLEL = 10


class SubRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    path: str = Field(min_length=4, max_length=2048, pattern=r"^/gw(/[^\s]*)?$", description="e.g. /gw/orders/42?x=1")
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    body: Any = Field(default=None, description="JSON, sent as application/json; a string is sent as it is")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: list[SubRequest] = Field(min_length=1, max_length=MAX_REQUESTS)


class SubResponse(BaseModel):
    id: str
    status: int
    headers: dict[str, str]
    body: Any


class BatchOut(BaseModel):
    responses: list[SubResponse]


def _request(sub: SubRequest, index: int, base: dict[str, Any], parent_id: str) -> ProxyRequest:
    parts = urlsplit(sub.path)
    headers = {k.lower(): v for k, v in sub.headers.items()}
    # The batch's own credentials and identity apply; a sub-request cannot carry others.
    for name in ("authorization", "x-api-key", "cookie", "host"):
        headers.pop(name, None)
    if sub.body is None:
        body = b""
    elif isinstance(sub.body, str):
        body = sub.body.encode()
    else:
        body = json.dumps(sub.body, separators=(",", ":")).encode()
        headers.setdefault("content-type", "application/json")
    return ProxyRequest(
        method=sub.method,
        path=parts.path[len(PREFIX) :] or "/",
        query=parse_qs(parts.query, keep_blank_values=True),
        headers={**base, **headers},
        body=body,
        source_ip=str(router.current_event.request_context.identity.source_ip or ""),
        request_id=f"{parent_id}-{index}",
        caller=proxy_caller(router.current_event),
    )


def _answer(sub_id: str, response: ProxyResponse) -> SubResponse:
    content_type = next((v for k, v in response.headers.items() if k.lower() == "content-type"), "")
    body: Any
    if "json" in content_type:
        try:
            body = json.loads(response.body)
        except ValueError:
            body = response.body.decode("utf-8", errors="replace")
    else:
        try:
            body = response.body.decode("utf-8")
        except UnicodeDecodeError:
            body = base64.b64encode(response.body).decode()
    return SubResponse(id=sub_id, status=response.status, headers=response.headers, body=body)


@router.post("/api/v1/batch", tags=["proxy"], summary="Run up to 25 proxied requests concurrently")
def batch(body: BatchIn) -> BatchOut:
    event = router.current_event
    parent_id = str(event.request_context.request_id)
    base = {"user-agent": str(event.headers.get("user-agent") or event.headers.get("User-Agent") or "")}
    requests = [_request(sub, i, base, parent_id) for i, sub in enumerate(body.requests)]
    gateway = proxy()
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(requests))) as pool:
        responses = list(pool.map(gateway.handle, requests))
    return BatchOut(
        responses=[
            _answer(sub.id or str(i), response)
            for i, (sub, response) in enumerate(zip(body.requests, responses, strict=True))
        ]
    )
