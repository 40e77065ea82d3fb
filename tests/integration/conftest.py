"""Shared fixtures: moto-backed AWS, the gateway's resources and a Lambda context."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gateway_core import aws as gateway_aws
from gateway_core.settings import settings
from tests.integration.helpers import ACCOUNT_ID, REGION, FakeLambdaContext

ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/gateway-test"
# Probes against moto answer in milliseconds; a generous deadline keeps the tests deterministic.
HEALTH_DEADLINE_MS = 5000


@dataclass(frozen=True)
class GatewayResources:
    table_name: str
    rate_limit_table_name: str
    webhook_queue_url: str
    webhook_dlq_url: str
    state_machine_arn: str
    schedule_group_name: str


def _reset_caches() -> None:
    gateway_aws.reset_clients()
    settings.cache_clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials, no endpoint override, fresh client and settings caches, moto on."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "gateway-test",
        "POWERTOOLS_METRICS_NAMESPACE": "GatewayTest",
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
        "TABLE_NAME",
        "RATE_LIMIT_TABLE_NAME",
        "WEBHOOK_QUEUE_URL",
        "WEBHOOK_DLQ_URL",
        "STATE_MACHINE_ARN",
        "SCHEDULE_GROUP_NAME",
        "HEALTH_DEADLINE_MS",
        "STAGE",
    ):
        monkeypatch.delenv(name, raising=False)
    _reset_caches()
    with mock_aws():
        yield
    _reset_caches()


def create_table(name: str, *, hash_key: str = "PK", range_key: str | None = "SK") -> None:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    attributes = [{"AttributeName": hash_key, "AttributeType": "S"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        attributes.append({"AttributeName": range_key, "AttributeType": "S"})
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name,
        KeySchema=schema,
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
    )


def create_data_table(name: str) -> None:
    """The data table as the stack defines it: PK/SK and the overloaded GSI1 and GSI2."""
    attributes = ("PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK")
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attributes],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": f"{index}PK", "KeyType": "HASH"},
                    {"AttributeName": f"{index}SK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in ("GSI1", "GSI2")
        ],
    )


@pytest.fixture
def gateway_resources(aws: None, monkeypatch: pytest.MonkeyPatch) -> GatewayResources:
    """Every resource the health check probes, with the environment the health function gets."""
    create_table("gateway-data")
    create_table("gateway-rate-limits", range_key=None)

    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName="gateway-webhooks-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName="gateway-webhooks",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})},
    )["QueueUrl"]

    state_machine_arn = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name="gateway-payments",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=ROLE_ARN,
    )["stateMachineArn"]

    scheduler = boto3.client("scheduler", region_name=REGION)
    scheduler.create_schedule_group(Name="gateway-schedules")
    scheduler.create_schedule(
        Name="refresh-rates",
        GroupName="gateway-schedules",
        ScheduleExpression="rate(5 minutes)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": state_machine_arn, "RoleArn": ROLE_ARN},
    )

    resources = GatewayResources(
        table_name="gateway-data",
        rate_limit_table_name="gateway-rate-limits",
        webhook_queue_url=queue_url,
        webhook_dlq_url=dlq_url,
        state_machine_arn=state_machine_arn,
        schedule_group_name="gateway-schedules",
    )
    for name, value in {
        "STAGE": "test",
        "TABLE_NAME": resources.table_name,
        "RATE_LIMIT_TABLE_NAME": resources.rate_limit_table_name,
        "WEBHOOK_QUEUE_URL": resources.webhook_queue_url,
        "WEBHOOK_DLQ_URL": resources.webhook_dlq_url,
        "STATE_MACHINE_ARN": resources.state_machine_arn,
        "SCHEDULE_GROUP_NAME": resources.schedule_group_name,
        "HEALTH_DEADLINE_MS": str(HEALTH_DEADLINE_MS),
    }.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    return resources


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def table_items(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of a table, sorted by key: tests compare it before and after a refused change."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**request)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return sorted(items, key=lambda i: (i["PK"]["S"], i["SK"]["S"]))
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
