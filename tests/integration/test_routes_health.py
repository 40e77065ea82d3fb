"""GET /api/v1/gateway/health through the health function's entry point, against moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from functions.routes.api.models import HealthOut
from tests.integration.conftest import HEALTH_DEADLINE_MS, GatewayResources, create_table
from tests.integration.helpers import REGION, FakeLambdaContext, proxy_event, response_header

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
EXPECTED_CHECKS = {"table", "rate_limit_table", "webhook_queue", "webhook_dlq", "state_machine", "schedules"}


@pytest.fixture
def health_handler(aws: None) -> Handler:
    # Imported once the environment is set (the module builds its logger and tracer on import).
    from functions.routes.health_handler import lambda_handler

    return lambda_handler


def get_health(handler: Handler, context: FakeLambdaContext) -> tuple[dict[str, Any], dict[str, Any]]:
    response = handler(proxy_event("GET", "/api/v1/gateway/health"), context)
    return response, json.loads(response["body"])


def test_given_every_dependency_up_when_health_is_requested_then_200_healthy_with_facts(
    gateway_resources: GatewayResources, health_handler: Handler, lambda_context: FakeLambdaContext
) -> None:
    # When
    response, body = get_health(health_handler, lambda_context)

    # Then
    assert response["statusCode"] == 200, body
    assert response_header(response, "Content-Type") == "application/json"
    assert response_header(response, "Cache-Control") == "no-store"
    assert body["status"] == "healthy"
    assert body["stage"] == "test"
    assert body["checked_at"].endswith("Z")
    checks = body["checks"]
    assert set(checks) == EXPECTED_CHECKS
    assert all(c["status"] == "ok" for c in checks.values()), checks
    assert all(0 <= c["latency_ms"] < HEALTH_DEADLINE_MS for c in checks.values())
    assert checks["table"]["facts"] == {"state": "ACTIVE"}
    assert checks["rate_limit_table"]["facts"] == {"state": "ACTIVE"}
    assert checks["webhook_queue"]["facts"] == {"depth": 0, "in_flight": 0}
    assert checks["webhook_dlq"]["facts"] == {"depth": 0, "in_flight": 0}
    assert checks["state_machine"]["facts"] == {"state": "ACTIVE"}
    assert checks["schedules"]["facts"] == {"count": 1, "group": gateway_resources.schedule_group_name}
    # And the answer is what the OpenAPI document says it is
    assert HealthOut.model_validate(body).model_dump(mode="json") == body


def test_given_messages_on_the_work_queue_when_health_is_requested_then_depth_is_reported_and_still_healthy(
    gateway_resources: GatewayResources, health_handler: Handler, lambda_context: FakeLambdaContext
) -> None:
    # Given two pending deliveries (normal work, not a problem)
    sqs = boto3.client("sqs", region_name=REGION)
    for n in range(2):
        sqs.send_message(QueueUrl=gateway_resources.webhook_queue_url, MessageBody=json.dumps({"n": n}))

    # When
    response, body = get_health(health_handler, lambda_context)

    # Then
    assert response["statusCode"] == 200
    assert body["status"] == "healthy"
    assert body["checks"]["webhook_queue"] == {
        "status": "ok",
        "latency_ms": body["checks"]["webhook_queue"]["latency_ms"],
        "facts": {"depth": 2, "in_flight": 0},
    }


def test_given_a_message_in_the_dlq_when_health_is_requested_then_degraded_with_a_dlq_warning(
    gateway_resources: GatewayResources, health_handler: Handler, lambda_context: FakeLambdaContext
) -> None:
    # Given a first healthy answer (clients now cached) and then a dead letter
    _, first_body = get_health(health_handler, lambda_context)
    assert first_body["status"] == "healthy"
    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=gateway_resources.webhook_dlq_url, MessageBody='{"delivery":"d-1"}'
    )

    # When
    response, body = get_health(health_handler, lambda_context)

    # Then the gateway still answers 200 (it can serve) but says why it is degraded
    assert response["statusCode"] == 200
    assert body["status"] == "degraded"
    assert body["checks"]["webhook_dlq"]["status"] == "warn"
    assert body["checks"]["webhook_dlq"]["facts"]["depth"] == 1
    assert body["checks"]["table"]["status"] == "ok"


def test_given_the_data_table_is_gone_when_health_is_requested_then_503_unavailable(
    gateway_resources: GatewayResources, health_handler: Handler, lambda_context: FakeLambdaContext
) -> None:
    # Given
    boto3.client("dynamodb", region_name=REGION).delete_table(TableName=gateway_resources.table_name)

    # When
    response, body = get_health(health_handler, lambda_context)

    # Then
    assert response["statusCode"] == 503
    assert response_header(response, "Content-Type") == "application/json"
    assert body["status"] == "unavailable"
    assert body["checks"]["table"]["status"] == "fail"
    assert body["checks"]["table"]["facts"] == {"error": "ResourceNotFoundException"}
    assert body["checks"]["rate_limit_table"]["status"] == "ok"


def test_given_the_rate_limit_table_is_gone_when_health_is_requested_then_200_degraded(
    gateway_resources: GatewayResources, health_handler: Handler, lambda_context: FakeLambdaContext
) -> None:
    boto3.client("dynamodb", region_name=REGION).delete_table(TableName=gateway_resources.rate_limit_table_name)

    response, body = get_health(health_handler, lambda_context)

    assert response["statusCode"] == 200
    assert body["status"] == "degraded"
    assert body["checks"]["rate_limit_table"]["facts"] == {"error": "ResourceNotFoundException"}


def test_given_a_second_schedule_when_health_is_requested_then_the_count_follows(
    gateway_resources: GatewayResources, health_handler: Handler, lambda_context: FakeLambdaContext
) -> None:
    # Given one more schedule in the group and one in another group (not counted)
    scheduler = boto3.client("scheduler", region_name=REGION)
    target = {"Arn": gateway_resources.state_machine_arn, "RoleArn": "arn:aws:iam::123456789012:role/x"}
    scheduler.create_schedule(
        Name="nightly-reconcile",
        GroupName=gateway_resources.schedule_group_name,
        ScheduleExpression="cron(0 2 * * ? *)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )
    scheduler.create_schedule(
        Name="elsewhere",
        ScheduleExpression="rate(1 hour)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=target,
    )

    # When
    _, body = get_health(health_handler, lambda_context)

    # Then
    assert body["checks"]["schedules"]["facts"]["count"] == 2


def test_given_only_the_table_is_configured_when_health_is_requested_then_only_that_check_runs(
    aws: None, health_handler: Handler, lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a function configured with the data table alone
    create_table("solo-table")
    monkeypatch.setenv("TABLE_NAME", "solo-table")
    monkeypatch.setenv("HEALTH_DEADLINE_MS", str(HEALTH_DEADLINE_MS))

    # When
    response, body = get_health(health_handler, lambda_context)

    # Then
    assert response["statusCode"] == 200
    assert set(body["checks"]) == {"table"}
    assert body["stage"] == "dev"
