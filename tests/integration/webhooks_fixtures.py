"""The webhooks API function on moto: its data table (as the stack defines it), the delivery queue
and its DLQ, the KMS key that seals signing keys, the environment the function gets, and a
caller that sends API Gateway proxy events to the real handler."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from functions.webhooks import delivery_wiring
from functions.webhooks.api import wiring
from gateway_core.settings import settings
from tests.integration.conftest import create_data_table
from tests.integration.helpers import ADMIN, REGION, FakeLambdaContext, proxy_event, response_header

TABLE = "gateway-data-webhooks-api"
PROBLEM = "application/problem+json"

# Authorizer contexts: two clients that manage webhooks, one that only reads, one without scopes
# for webhooks, and a publisher of test events.
OWNER = {**ADMIN, "client_id": "acme", "scopes": "webhooks:read webhooks:write", "credential_id": "k-acme"}
OTHER = {**ADMIN, "client_id": "globex", "scopes": "webhooks:read webhooks:write", "credential_id": "k-globex"}
READER = {**ADMIN, "client_id": "initech", "scopes": "webhooks:read", "credential_id": "k-initech"}
NO_SCOPE = {**ADMIN, "client_id": "umbrella", "scopes": "data:read", "credential_id": "k-umbrella"}
PUBLISHER = {**ADMIN, "client_id": "hooli", "scopes": "events:write", "credential_id": "k-hooli"}

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

_WIRING = (
    wiring.endpoints,
    wiring.deliveries,
    wiring.sealer,
    delivery_wiring.queue,
    delivery_wiring.publisher,
    delivery_wiring.engine,
)


@dataclass(frozen=True)
class Reply:
    status: int
    raw: dict[str, Any]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    def header(self, name: str) -> str | None:
        return response_header(self.raw, name)


class Api:
    """Calls the webhooks function as API Gateway would, behind our authorizer (an admin unless
    told otherwise)."""

    def __init__(self) -> None:
        from functions.webhooks.handler import lambda_handler

        self.handler: Handler = lambda_handler
        self.calls = 0

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw_body: str | None = None,
        query: dict[str, str] | None = None,
        authorizer: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        self.calls += 1
        text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
        event = proxy_event(
            method,
            path,
            body=text,
            headers={"Content-Type": "application/json", **(headers or {})},
            authorizer=ADMIN if authorizer is None else authorizer,
            request_id=f"req-{self.calls}",
        )
        if query:
            event["queryStringParameters"] = query
            event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
        response = self.handler(event, FakeLambdaContext(function_name="gateway-webhooks"))
        return Reply(response["statusCode"], response, response.get("body") or "")


@dataclass(frozen=True)
class Webhooks:
    api: Api
    dynamodb: Any
    sqs: Any
    table: str
    queue_url: str
    dlq_url: str
    key_id: str

    def queue_messages(self, url: str | None = None, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Every message on the delivery queue (or `url`), taken off it, delayed ones too (a
        reopened delivery's message is due a second later): waits until none is left."""
        queue = url or self.queue_url
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            page = self.sqs.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0
            )
            for message in page.get("Messages", []):
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            if not page.get("Messages") and self.queued(queue) == 0:
                return found
            assert time.monotonic() < deadline, f"messages left on {queue} after {timeout}s"
            time.sleep(0.05)

    def queued(self, url: str) -> int:
        """Messages on a queue, visible, delayed or in flight."""
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesDelayed",
            "ApproximateNumberOfMessagesNotVisible",
        ]
        counts = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(counts.get(name, 0)) for name in names)

    def item(self, pk: str, sk: str) -> dict[str, Any] | None:
        answer = self.dynamodb.get_item(
            TableName=self.table, Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=True
        )
        item: dict[str, Any] | None = answer.get("Item")
        return item

    def items_with_prefix(self, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self.dynamodb.scan(**request)
            items.extend(i for i in page["Items"] if i["PK"]["S"].startswith(prefix))
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _clear_wiring() -> None:
    for built in _WIRING:
        built.cache_clear()


@contextmanager
def webhooks_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhooks]:
    """Inside moto (the `aws` fixture): the function's resources and environment, and its
    adapters built afresh (they are cached per container) before and after."""
    create_data_table(TABLE)
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName="gateway-webhooks-dlq")["QueueUrl"]
    queue_url = sqs.create_queue(QueueName="gateway-webhooks")["QueueUrl"]
    key_id = boto3.client("kms", region_name=REGION).create_key(Description="webhook signing keys")["KeyMetadata"][
        "KeyId"
    ]
    for name, value in {
        "STAGE": "test",
        "TABLE_NAME": TABLE,
        "WEBHOOK_QUEUE_URL": queue_url,
        "WEBHOOK_DLQ_URL": dlq_url,
        "WEBHOOK_KEYS_KEY_ID": key_id,
        "WEBHOOK_TIME_SCALE": "0.001",
        # The local runtime's allowlist: receivers on loopback, nothing else internal.
        "UPSTREAM_ALLOW_CIDRS": "127.0.0.0/8,::1/128",
    }.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    _clear_wiring()
    try:
        yield Webhooks(
            api=Api(),
            dynamodb=boto3.client("dynamodb", region_name=REGION),
            sqs=sqs,
            table=TABLE,
            queue_url=queue_url,
            dlq_url=dlq_url,
            key_id=key_id,
        )
    finally:
        _clear_wiring()
