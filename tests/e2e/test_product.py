"""The product as `make local` serves it: the real CDK app deployed into moto, over real HTTP."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest

from infra.config import LAMBDA_FUNCTIONS
from tests.e2e.conftest import RunningGateway, start_gateway, stop_gateway

ADMIN_KEY = "gk_local_" + secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    # A generous probe deadline keeps the outcome independent of this machine's speed; the
    # 100 ms answer is measured by `make bench`, not asserted here.
    gateway = start_gateway(
        tmp_path_factory.mktemp("product"), "-c", "healthDeadlineMs=3000", env={"GATEWAY_ADMIN_KEY": ADMIN_KEY}
    )
    yield gateway
    stop_gateway(gateway)


def test_health_is_public_and_sees_every_dependency(product: RunningGateway) -> None:
    with product.client() as http:
        http.get("/api/v1/gateway/health")  # first call creates the function's clients
        response = http.get("/api/v1/gateway/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy", body
    assert set(body["checks"]) == {
        "table",
        "rate_limit_table",
        "webhook_queue",
        "webhook_dlq",
        "state_machine",
        "schedules",
    }
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert body["checks"]["webhook_dlq"]["facts"]["depth"] == 0
    assert body["checks"]["schedules"]["facts"]["count"] == 0
    assert response.headers["cache-control"] == "no-store"


def test_health_turns_degraded_when_the_dlq_holds_a_message(product: RunningGateway) -> None:
    sqs = product.aws("sqs")
    dlq = next(url for url in sqs.list_queues()["QueueUrls"] if "WebhookDlq" in url)
    sqs.send_message(QueueUrl=dlq, MessageBody="{}")
    try:
        with product.client() as http:
            body = http.get("/api/v1/gateway/health").json()
        assert body["status"] == "degraded"
        assert body["checks"]["webhook_dlq"] == {**body["checks"]["webhook_dlq"], "status": "warn"}
        assert body["checks"]["webhook_dlq"]["facts"]["depth"] == 1
    finally:
        sqs.purge_queue(QueueUrl=dlq)


def test_bootstrap_admin_key_from_environment_is_written_and_accepted(product: RunningGateway) -> None:
    saved = json.loads((product.state_dir / "admin.json").read_text())
    assert saved["api_key"] == ADMIN_KEY
    assert ADMIN_KEY in "".join(product.output)  # the banner shows it, once, to the operator
    with product.client() as http:
        response = http.get("/api/v1/whoami", headers={"x-api-key": ADMIN_KEY})
    assert response.status_code == 200
    assert response.json() == {
        "client_id": "bootstrap-admin",
        "credential_kind": "api_key",
        "scopes": ["admin"],
        "tier": "enterprise",
        "certificate_bound": False,
    }


def test_only_the_hash_of_the_admin_key_is_stored(product: RunningGateway) -> None:
    dynamodb = product.aws("dynamodb")
    table = product.outputs("FinanceGateway")["TableName"]
    items = dynamodb.scan(TableName=table)["Items"]  # test-only inspection of the whole table
    assert items
    assert ADMIN_KEY not in json.dumps(items)


def test_gateway_errors_are_problem_documents(product: RunningGateway) -> None:
    with product.client() as http:
        no_key = http.get("/api/v1/whoami")
        bad_key = http.get("/api/v1/whoami", headers={"x-api-key": "gk_local_" + "x" * 43})
        unknown = http.get("/api/v1/no/such/route")
        too_large = http.post("/api/v1/whoami", content=b"x" * (10 * 1024 * 1024 + 1))
    for response, status, code in (
        (no_key, 401, "unauthorized"),
        (bad_key, 401, "unauthorized"),
        (unknown, 404, "route_not_found"),
        (too_large, 413, "payload_too_large"),
    ):
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == code
        assert problem["type"] == f"urn:gateway:problem:{code}"
        assert problem["request_id"] == response.headers["x-amzn-RequestId"]
    assert no_key.headers["www-authenticate"] == (
        'Bearer realm="finance-gateway", ApiKey realm="finance-gateway", header="x-api-key"'
    )
    assert bad_key.headers["www-authenticate"].startswith("Bearer")


def test_openapi_document_is_served(product: RunningGateway) -> None:
    with product.client() as http:
        response = http.get("/api/v1/docs", params={"format": "json"})
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.1")
    assert "/api/v1/gateway/health" in spec["paths"]


def test_unserved_functions_answer_nothing_through_the_api(product: RunningGateway) -> None:
    # integrations and marketdata are provisioned but have no API resources yet; webhooks has its
    # API, behind the admin authorizer (no credential: 401).
    with product.client() as http:
        for path in ("/api/v1/integrations", "/api/v1/data/prices"):
            assert http.get(path).status_code == 404
        assert http.get("/api/v1/webhooks").status_code == 401


def test_functions_in_moto_carry_the_template_layers(product: RunningGateway) -> None:
    # moto's CloudFormation drops Layers; the runtime sets them through the Lambda API.
    functions = product.aws("lambda").list_functions()["Functions"]
    assert len(functions) == len(LAMBDA_FUNCTIONS)
    for function in functions:
        assert len(function.get("Layers", [])) == 2, function["FunctionName"]
