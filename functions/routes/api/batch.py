"""`POST /api/v1/batch`: up to 25 requests to proxied routes, run concurrently, each through the
same credentials, scopes, limits, transformations and logs as if it came alone; the answer lists
each one's status, headers and body in the order given. A sub-request's failure is its own
answer; the batch itself answers 200 once it has run them all."""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from functions.routes.api.proxy import PREFIX, proxy, proxy_caller
from functions.routes.logic.proxy import DEADLINE_SECONDS, ProxyRequest, ProxyResponse
from functions.routes.logic.transform.jsonio import dumps_json, loads_json
from gateway_core.errors import GatewayError, problem_body

router = APIGatewayRouter()
MAX_REQUESTS = 25
MAX_PARALLEL = 10
# A Lambda answer carries at most 6 MB; the batch's JSON must stay below with room to spare.
MAX_BATCH_BYTES = 5_000_000


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


def _request(
    sub: SubRequest, raw_body: Any, index: int, base: dict[str, Any], parent_id: str, deadline_at: float
) -> ProxyRequest:
    parts = urlsplit(sub.path)
    headers = {k.lower(): v for k, v in sub.headers.items()}
    # The batch's own credentials and identity apply; a sub-request cannot carry others.
    for name in ("authorization", "x-api-key", "cookie", "host"):
        headers.pop(name, None)
    if raw_body is None:
        body = b""
    elif isinstance(raw_body, str):
        body = raw_body.encode()
    else:
        body = dumps_json(raw_body)  # numbers exactly as the caller wrote them
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
        deadline_at=deadline_at,
    )


def _answer(sub_id: str, response: ProxyResponse) -> dict[str, Any]:
    content_type = next((v for k, v in response.headers.items() if k.lower() == "content-type"), "")
    body: Any
    if "json" in content_type:
        try:
            body = loads_json(response.body)  # Decimal: amounts come back as the upstream wrote them
        except GatewayError:
            body = response.body.decode("utf-8", errors="replace")
    else:
        try:
            body = response.body.decode("utf-8")
        except UnicodeDecodeError:
            body = base64.b64encode(response.body).decode()
    return {"id": sub_id, "status": response.status, "headers": response.headers, "body": body}


def _wire_size(answer: dict[str, Any]) -> int:
    """Bytes this answer adds to the Lambda response: our JSON, then escaped again as the string
    body of the API Gateway proxy result, ASCII-only, as the Lambda runtime writes it."""
    return len(json.dumps(dumps_json(answer).decode()))


@router.post(
    "/api/v1/batch",
    tags=["proxy"],
    summary="Run up to 25 proxied requests concurrently",
    responses={
        200: {
            "description": "Each sub-request's answer, in order",
            "content": {"application/json": {"model": BatchOut}},
        }
    },
)
def batch(body: BatchIn) -> Response[str]:
    event = router.current_event
    parent_id = str(event.request_context.request_id)
    # The validated model reads numbers as floats; bodies are taken from the raw JSON instead.
    raw = loads_json(event.body or "{}")
    raw_bodies = [r.get("body") if isinstance(r, dict) else None for r in raw.get("requests", [])]
    base = {"user-agent": str(event.headers.get("user-agent") or event.headers.get("User-Agent") or "")}
    # Every sub-request shares the batch's time inside API Gateway's 29 s: one that has no time
    # left when its turn comes is answered 504 without calling its upstream.
    deadline_at = time.monotonic() + DEADLINE_SECONDS - 1.0
    requests = [_request(sub, raw_bodies[i], i, base, parent_id, deadline_at) for i, sub in enumerate(body.requests)]
    gateway = proxy()
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(requests))) as pool:
        responses = list(pool.map(gateway.handle, requests))
    answers = [
        _answer(sub.id or str(i), response)
        for i, (sub, response) in enumerate(zip(body.requests, responses, strict=True))
    ]
    out = {"responses": _within_size(answers, parent_id)}
    return Response(status_code=200, content_type="application/json", body=dumps_json(out).decode())


def _within_size(answers: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    """The largest answers become 502 problems until the batch fits in a Lambda response (the
    sub-requests have run; only their bodies are left out)."""
    sizes = [_wire_size(a) for a in answers]
    total = sum(sizes)
    for index in sorted(range(len(answers)), key=lambda i: sizes[i], reverse=True):
        if total <= MAX_BATCH_BYTES:
            break
        problem = problem_body(
            status=502,
            code="batch_too_large",
            title="Bad Gateway",
            detail="This answer ran but is too large to return inside a batch; call it on its own.",
            request_id=request_id,
        )
        replaced = {
            "id": answers[index]["id"],
            "status": 502,
            "headers": {"Content-Type": "application/problem+json"},
            "body": problem,
        }
        total += _wire_size(replaced) - sizes[index]
        answers[index] = replaced
    return answers
