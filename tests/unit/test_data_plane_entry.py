"""The data plane's entry (functions/routes/proxy_handler.py) over the proxy with in-memory fakes:
API Gateway events in, Lambda proxy results out, for `/gw`, `/gw/{proxy+}` and batches; and the
import diet it exists for."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from functions.routes import proxy_bootstrap, proxy_handler
from functions.routes.logic.proxy_ports import UpstreamAnswer
from gateway_core.cert_binding import pem_x5t_s256
from tests.certificates import make_certificate
from tests.integration.helpers import FakeLambdaContext, proxy_event
from tests.unit.proxy_fakes import Harness, Sent, answer, harness, make_route

CLIENT = {"client_id": "cl_1", "scopes": "banking:read", "tier": "basic", "credential_kind": "api_key"}


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Harness:
    h = harness([make_route(), make_route(route_id="rt_post", method="POST", path="/orders")])
    monkeypatch.setattr(proxy_bootstrap, "proxy", lambda *_: h.proxy)
    return h


def call(event: dict[str, Any]) -> dict[str, Any]:
    handler: Any = proxy_handler.lambda_handler  # takes Lambda's context; the fake has its fields
    result: dict[str, Any] = handler(event, FakeLambdaContext())
    return result


def test_a_proxied_request_is_served_below_gw_with_the_callers_identity(gateway: Harness) -> None:
    event = proxy_event("GET", "/gw/orders/42", authorizer=CLIENT, request_id="req-7")
    event["multiValueQueryStringParameters"] = {"ccy": ["EUR", "USD"]}

    result = call(event)

    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {"ok": True}
    (sent,) = gateway.upstream.calls
    assert sent.url == "https://upstream-a.example/orders/42?ccy=EUR&ccy=USD"
    assert sent.headers["x-gateway-client"] == "cl_1"
    assert result["headers"]["X-Request-Id"] == "req-7"
    assert gateway.record().client_id == "cl_1"


def test_a_binary_upstream_answer_leaves_base64_encoded(gateway: Harness) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    gateway.upstream.default = answer(200, png, {"content-type": "image/png"})

    result = call(proxy_event("GET", "/gw/orders/1", authorizer=CLIENT))

    assert result["isBase64Encoded"] is True
    assert base64.b64decode(result["body"]) == png


def test_a_bound_token_on_another_certificate_is_refused_before_the_proxy(gateway: Harness) -> None:
    bound, presented = make_certificate("bound")[0], make_certificate("other")[0]
    event = proxy_event("GET", "/gw/orders/1", authorizer={**CLIENT, "cert_thumbprint": pem_x5t_s256(bound)})
    event["requestContext"]["identity"]["clientCert"] = {"clientCertPem": presented}

    result = call(event)

    assert result["statusCode"] == 401
    assert json.loads(result["body"])["code"] == "certificate_mismatch"
    assert gateway.upstream.calls == []


def test_a_batch_runs_each_request_through_the_proxy_in_order(gateway: Harness) -> None:
    # The batch runs its requests concurrently: each answer follows from its request, not from the
    # order the requests happen to reach the upstream.
    def by_method(sent: Sent) -> UpstreamAnswer:
        return answer(201, {"amount": 1234.50}) if sent.method == "POST" else answer(200, {"n": 1})

    gateway.upstream.script = [by_method, by_method]
    batch = {
        "requests": [
            {"id": "a", "method": "GET", "path": "/gw/orders/1"},
            {"id": "b", "method": "POST", "path": "/gw/orders", "body": {"amount": 1234.50}},
        ]
    }

    result = call(proxy_event("POST", "/api/v1/batch", body=json.dumps(batch), authorizer=CLIENT))

    assert result["statusCode"] == 200
    out = json.loads(result["body"])
    assert [(r["id"], r["status"]) for r in out["responses"]] == [("a", 200), ("b", 201)]
    assert '"amount":1234.5' in result["body"]
    assert [c.body for c in gateway.upstream.calls if c.method == "POST"] == [b'{"amount":1234.5}']


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ('{"requests": [{"method": "GETX", "path": "/gw/x"}]}', ["body", "requests", "0", "method"], "literal_error"),
        ('{"requests": []}', ["body", "requests"], "too_short"),
        (
            '{"requests": [{"method": "GET", "path": "/other"}]}',
            ["body", "requests", "0", "path"],
            "string_pattern_mismatch",
        ),
    ],
)
def test_an_invalid_batch_is_the_management_apis_422_problem(
    gateway: Harness, body: str, loc: list[str], kind: str
) -> None:
    result = call(proxy_event("POST", "/api/v1/batch", body=body, authorizer=CLIENT, request_id="req-b"))

    assert result["statusCode"] == 422
    assert result["headers"]["Content-Type"] == "application/problem+json"
    problem = json.loads(result["body"])
    assert (problem["code"], problem["title"], problem["request_id"]) == (
        "validation_failed",
        "Unprocessable Content",
        "req-b",
    )
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [(loc, kind)]
    assert gateway.upstream.calls == []


def test_a_batch_that_is_not_json_is_the_management_apis_400_invalid_body(gateway: Harness) -> None:
    result = call(proxy_event("POST", "/api/v1/batch", body="not json", authorizer=CLIENT, request_id="req-b"))

    assert result["statusCode"] == 400
    problem = json.loads(result["body"])
    assert (problem["code"], problem["request_id"]) == ("invalid_body", "req-b")
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [(["body", "0"], "json_invalid")]
    assert gateway.upstream.calls == []


def test_anything_else_is_route_not_found(gateway: Harness) -> None:
    result = call(proxy_event("GET", "/api/v1/clients", authorizer=CLIENT))
    assert result["statusCode"] == 404
    assert json.loads(result["body"])["code"] == "route_not_found"


def test_the_data_plane_imports_no_resolver_pydantic_openapi_or_rarely_used_transforms() -> None:
    # A fresh interpreter, as a cold start: what importing the handler loads.
    code = "import sys, functions.routes.proxy_handler; print('\\n'.join(sorted(m for m in sys.modules)))"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "layers")])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120, cwd=root, env=env
    )
    loaded = set(done.stdout.split())
    for absent in (
        "pydantic",
        "aws_lambda_powertools.event_handler",
        "aws_lambda_powertools.utilities.data_classes",
        "aws_xray_sdk",
        "functions.routes.logic.route_spec",
        "functions.routes.logic.transform.soap",
        "functions.routes.logic.transform.graphql",
        "functions.routes.logic.transform.templates",
        "functions.routes.logic.transform.negotiation",
        "functions.routes.api.batch_models",
        "jwt",
        "cryptography",
        "httpx",  # upstream calls go through urllib3, which botocore loads anyway
        "httpcore",
        "h11",
        "anyio",
    ):
        assert absent not in loaded, f"{absent} is on the data plane's import path"
    # Every request calls an upstream: the adapter is imported at init, not on the first call.
    assert {"functions.routes.dal.upstream", "gateway_core.ssrf_client", "urllib3"} <= loaded
