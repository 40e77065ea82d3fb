"""`POST /api/v1/batch`: up to 25 requests to proxied routes, run concurrently, each through the
same credentials, scopes, limits, transformations and logs as if it came alone; the answer lists
each one's status, headers and body in the order given. A sub-request's failure is its own
answer; the batch itself answers 200 once it has run them all."""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from functions.routes.api.proxy import PREFIX, proxy_caller
from functions.routes.logic.proxy import (
    DEADLINE_SECONDS,
    HOP_HEADER,
    Proxy,
    ProxyCaller,
    ProxyRequest,
    ProxyResponse,
    header_values,
    hops_passed,
)
from functions.routes.logic.transform.jsonio import dumps_json, loads_json
from gateway_core.endpoints import Reply, Request
from gateway_core.errors import GatewayError, ValidationFailed, problem_body
from gateway_core.json_body import read_json

if TYPE_CHECKING:
    from functions.routes.api.batch_models import BatchIn, SubRequest

MAX_PARALLEL = 10
# A Lambda answer carries at most 6 MB; the batch's JSON must stay below with room to spare.
MAX_BATCH_BYTES = 5_000_000


def parse_batch(request: Request) -> BatchIn:
    """The validated batch; a body that is not JSON is refused as every endpoint refuses it
    (gateway_core.json_body), one that does not fit the models is a 422 `validation_failed`
    problem in the management API's format (`loc` starts at `body`). The models, and pydantic,
    are imported here, at the first batch: the proxy's cold start does not pay for them."""
    from pydantic import ValidationError

    from functions.routes.api.batch_models import BatchIn

    data = read_json(
        request.body,
        request.header("content-type"),
        content_encoding=request.header("content-encoding"),
        limit=MAX_BATCH_BYTES,
    )
    try:
        return BatchIn.model_validate(data)
    except ValidationError as error:
        errors = [
            {"loc": ["body", *(str(part) for part in e["loc"])], "msg": str(e["msg"]), "type": str(e["type"])}
            for e in error.errors()
        ]
        raise _invalid(errors) from error


def _invalid(errors: list[dict[str, Any]]) -> ValidationFailed:
    return ValidationFailed("The request does not match the expected schema.", extensions={"errors": errors})


def _request(
    sub: SubRequest,
    raw_body: Any,
    index: int,
    base: dict[str, str],
    batch: Request,
    caller: ProxyCaller,
    deadline_at: float,
) -> ProxyRequest:
    parts = urlsplit(sub.path)
    headers = {k.lower(): v for k, v in sub.headers.items()}
    # The batch's own credentials, identity and hops apply; a sub-request cannot carry others.
    for name in ("authorization", "x-api-key", "cookie", "host", HOP_HEADER):
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
        source_ip=batch.source_ip,
        request_id=f"{batch.request_id}-{index}",
        caller=caller,
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
    # One member per header: a repeated one (two `Link`s) as its values joined, as HTTP allows.
    headers = {name: ", ".join(values) for name, values in header_values(response).items()}
    return {"id": sub_id, "status": response.status, "headers": headers, "body": body}


def _wire_size(answer: dict[str, Any]) -> int:
    """Bytes this answer adds to the Lambda response: our JSON, then escaped again as the string
    body of the API Gateway proxy result, ASCII-only, as the Lambda runtime writes it."""
    return len(json.dumps(dumps_json(answer).decode()))


def handle(request: Request, proxy: Proxy) -> Reply:
    # A batch that came back through one of this gateway's routes runs nothing (508), so nested
    # batches stop at the first re-entry instead of fanning out 25 by 25.
    hops = hops_passed(request.headers, proxy.hop_id)
    batch = parse_batch(request)
    # The validated model reads numbers as floats; bodies are taken from the raw JSON instead.
    raw = loads_json(request.body or b"{}")
    raw_bodies = [r.get("body") if isinstance(r, dict) else None for r in raw.get("requests", [])]
    base = {"user-agent": request.header("user-agent") or ""}
    if hops:
        base[HOP_HEADER] = ", ".join(hops)
    caller = proxy_caller(request)
    # Every sub-request shares the batch's time inside API Gateway's 29 s: one that has no time
    # left when its turn comes is answered 504 without calling its upstream.
    deadline_at = time.monotonic() + DEADLINE_SECONDS - 1.0
    requests = [
        _request(sub, raw_bodies[i], i, base, request, caller, deadline_at) for i, sub in enumerate(batch.requests)
    ]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(requests))) as pool:
        responses = list(pool.map(proxy.handle, requests))
    answers = [
        _answer(sub.id or str(i), response)
        for i, (sub, response) in enumerate(zip(batch.requests, responses, strict=True))
    ]
    out = {"responses": _within_size(answers, request.request_id)}
    return Reply.json(200, dumps_json(out).decode())


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
