"""Warm in-process latency of the health route and the API key authorizer, and their AWS calls.

Everything runs against moto (`mock_aws`), in this process: the numbers are the gateway's own
overhead (routing, validation, serialization, probe fan-out) plus moto's, not AWS latency. AWS
calls are counted with a botocore `before-call` hook on the clients gateway_core.aws caches, so
retries are not counted twice (one API operation = one count) and paginated reads count per page.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.bench import LAYERS_DIR, REPO_ROOT
from tests.bench.report import format_table, summarize

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/gateway-bench"
HEALTH_PATH = "/api/v1/gateway/health"
AUTHORIZER_METHOD_ARN = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:abc/prod/GET/api/v1/whoami"

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

_BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "GatewayBench",
}
# Would send boto3 to a real endpoint or profile instead of moto.
_DROPPED_ENV = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "STAGE")


@dataclass(frozen=True)
class FakeLambdaContext:
    function_name: str = "gateway-routes"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:gateway-routes"
    aws_request_id: str = "bench-lambda-req"
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/gateway-routes"
    log_stream_name: str = "2026/01/01/[$LATEST]bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class CallCounter:
    """botocore `before-call` handler: counts API operations while enabled (probes run in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.enabled = False
        self.by_operation: Counter[str] = Counter()
        self.by_service: Counter[str] = Counter()

    def __call__(self, model: Any = None, **_: Any) -> None:
        if not self.enabled or model is None:
            return
        with self._lock:
            self.by_operation[str(model.name)] += 1
            self.by_service[str(model.service_model.service_name)] += 1

    def reset(self) -> None:
        with self._lock:
            self.by_operation.clear()
            self.by_service.clear()

    @contextmanager
    def counting(self) -> Iterator[None]:
        self.reset()
        self.enabled = True
        try:
            yield
        finally:
            self.enabled = False

    def per_request(self, requests: int) -> dict[str, Any]:
        total = sum(self.by_operation.values())
        return {
            "requests": requests,
            "total_calls": total,
            "calls_per_request": round(total / requests, 3),
            "by_operation": {k: round(v / requests, 3) for k, v in sorted(self.by_operation.items())},
            "by_service": {k: round(v / requests, 3) for k, v in sorted(self.by_service.items())},
        }


@contextmanager
def patched_environ(values: dict[str, str], drop: tuple[str, ...] = ()) -> Iterator[None]:
    saved = dict(os.environ)
    for name in drop:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def ensure_import_path() -> None:
    """The functions import `functions.*` from the repo root and `gateway_core` from layers/."""
    for path in (str(LAYERS_DIR), str(REPO_ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)


def proxy_event(method: str, path: str, request_id: str) -> dict[str, Any]:
    """An API Gateway REST proxy event (payload format 1.0)."""
    headers = {"Accept": "application/json", "User-Agent": "gateway-bench", "Host": "abc.execute-api.amazonaws.com"}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "abc",
            "resourceId": "res1",
            "resourcePath": path,
            "stage": "prod",
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTimeEpoch": 1_767_225_600_000,
            "path": f"/prod{path}",
            "protocol": "HTTP/1.1",
            "httpMethod": method,
            "domainName": "abc.execute-api.us-east-1.amazonaws.com",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "gateway-bench"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def create_resources() -> dict[str, str]:
    """Every resource the health check probes; returns the environment the health function gets."""
    import boto3

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for name, keys in (("gateway-data", ("PK", "SK")), ("gateway-rate-limits", ("bucket",))):
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH" if i == 0 else "RANGE"} for i, key in enumerate(keys)],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName="gateway-webhooks-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName="gateway-webhooks",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})},
    )["QueueUrl"]
    state_machine_arn = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name="gateway-payments",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
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
    return {
        "STAGE": "bench",
        "TABLE_NAME": "gateway-data",
        "RATE_LIMIT_TABLE_NAME": "gateway-rate-limits",
        "WEBHOOK_QUEUE_URL": queue_url,
        "WEBHOOK_DLQ_URL": dlq_url,
        "STATE_MACHINE_ARN": state_machine_arn,
        "SCHEDULE_GROUP_NAME": "gateway-schedules",
        "HEALTH_DEADLINE_MS": "5000",
    }


def put_api_key(table_name: str) -> str:
    """Store an active API key in the data table, as the admin tooling would; returns the key."""
    import boto3

    from gateway_core.credentials import api_key_item, generate_api_key, hash_api_key

    key = generate_api_key("bench")
    item = api_key_item(
        key_hash=hash_api_key(key),
        key_id="key-bench-1",
        client_id="client-bench",
        scopes=["accounts:read", "payments:write"],
        tier="standard",
        name="bench key",
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        last_four=key[-4:],
        prefix=key.rsplit("_", 1)[0],
    )
    boto3.client("dynamodb", region_name=REGION).put_item(TableName=table_name, Item=item)
    return key


def hook_clients(counter: CallCounter) -> int:
    """Register the counter on every client gateway_core.aws has created so far."""
    from gateway_core import aws as gateway_aws

    for aws_client in list(gateway_aws._clients.values()):
        aws_client.meta.events.register("before-call.*.*", counter, unique_id="gateway-bench-call-counter")
    return len(gateway_aws._clients)


def timed_calls(call: Callable[[int], dict[str, Any]], count: int) -> tuple[list[float], list[dict[str, Any]]]:
    samples: list[float] = []
    results: list[dict[str, Any]] = []
    for i in range(count):
        started = time.perf_counter()
        result = call(i)
        samples.append((time.perf_counter() - started) * 1000)
        results.append(result)
    return samples, results


def bench_health(
    handler: Handler, counter: CallCounter, warmup: int, iterations: int, count_requests: int
) -> dict[str, Any]:
    context = FakeLambdaContext()

    def call(i: int) -> dict[str, Any]:
        return handler(proxy_event("GET", HEALTH_PATH, f"bench-health-{i}"), context)

    started = time.perf_counter()
    first = call(-1)
    first_call_ms = (time.perf_counter() - started) * 1000
    _, warm = timed_calls(call, warmup)
    clients = hook_clients(counter)
    samples, results = timed_calls(call, iterations)
    with counter.counting():
        _, counted = timed_calls(call, count_requests)
    from gateway_core import aws as gateway_aws

    statuses = Counter(r.get("statusCode") for r in [first, *warm, *results, *counted])
    body = json.loads(results[-1].get("body") or "{}")
    warnings = []
    if set(statuses) != {200}:
        warnings.append(f"health answered non-200 status codes: {dict(statuses)}")
    if len(gateway_aws._clients) != clients:
        warnings.append("clients were created after the call counter was hooked; counts may be low")
    return {
        "event": f"GET {HEALTH_PATH} (REST proxy v1)",
        "warmup": warmup,
        "first_call_ms": round(first_call_ms, 3),
        "latency": summarize(samples),
        "status_codes": {str(k): v for k, v in statuses.items()},
        "health_status": body.get("status"),
        "checks": {name: check.get("status") for name, check in (body.get("checks") or {}).items()},
        "aws_calls": counter.per_request(count_requests),
        "warnings": warnings,
    }


def bench_authorizer(
    handler: Handler, key: str, counter: CallCounter, warmup: int, iterations: int, count_requests: int
) -> dict[str, Any]:
    event = {"type": "REQUEST", "methodArn": AUTHORIZER_METHOD_ARN, "headers": {"x-api-key": key}}
    context = FakeLambdaContext(function_name="gateway-authorizer")
    result = _decisions(lambda _: handler(event, context), counter, warmup, iterations, count_requests)
    return {"event": "REQUEST authorizer, x-api-key header, active key", **result}


def _decisions(
    call: Callable[[int], dict[str, Any]], counter: CallCounter, warmup: int, iterations: int, count_requests: int
) -> dict[str, Any]:
    """Time `call` warm, then count the AWS calls it makes (clients hooked after the warm-up)."""
    started = time.perf_counter()
    first = call(-1)
    first_call_ms = (time.perf_counter() - started) * 1000
    _, warm = timed_calls(call, warmup)
    hook_clients(counter)
    samples, results = timed_calls(call, iterations)
    with counter.counting():
        _, counted = timed_calls(call, count_requests)
    effects = Counter(
        statement.get("Effect")
        for decision in [first, *warm, *results, *counted]
        for statement in decision.get("policyDocument", {}).get("Statement", [])
    )
    return {
        "warmup": warmup,
        "first_call_ms": round(first_call_ms, 3),
        "latency": summarize(samples),
        "decisions": {str(k): v for k, v in effects.items()},
        "aws_calls": counter.per_request(count_requests),
        "warnings": [] if set(effects) == {"Allow"} else [f"decisions were not all Allow: {dict(effects)}"],
    }


def put_client(table_name: str, client_id: str) -> None:
    """An active client record, as the admin API stores it."""
    import boto3

    from functions.routes.dal.clients_store import DynamoClientStore
    from functions.routes.logic.clients import Client
    from gateway_core.audit import Actor

    client = Client(
        client_id=client_id,
        name=f"bench {client_id}",
        description="",
        client_type="integration",
        organization="",
        contact_email="bench@example.com",
        allowed_scopes=["banking:read", "payments:write"],
        allowed_endpoints=[],
        ip_allowlist=[],
        tier="enterprise",
        rate_limits=None,
        monthly_quota=None,
        expires_at=None,
        status="active",
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        version=1,
        secret_hash="x",
    )
    store = DynamoClientStore(boto3.client("dynamodb", region_name=REGION), table_name)
    store.create(client, Actor("bench", "api_key", "k", "r"))


def bench_jwt(
    table_name: str, counter: CallCounter, warmup: int, iterations: int, count_requests: int
) -> dict[str, Any]:
    """The JWT authorizer's entry point on our own KMS-signed at+jwt: after the first decision
    the JWKS (KMS public keys), the client's state and the denylist are cached in the container."""
    import boto3

    from functions.routes.dal.signing import KmsSigner

    issuer = "https://bench.example/prod"
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    os.environ.update({"TOKEN_ISSUER": issuer, "TOKEN_AUDIENCE": "finance-gateway", "TOKEN_VERIFY_KEY_IDS": key_id})
    from gateway_core.settings import settings

    settings.cache_clear()  # settings are read once per container; this one's changed
    put_client(table_name, "cl_bench_jwt")
    now = int(time.time())
    token = KmsSigner(kms, key_id).sign(
        {
            "iss": issuer,
            "sub": "cl_bench_jwt",
            "aud": "finance-gateway",
            "iat": now,
            "exp": now + 3600,
            "scope": "banking:read",
            "jti": "bench",
        }
    )
    from functions.authorizer.jwt_handler import lambda_handler

    event = {
        "type": "REQUEST",
        "methodArn": AUTHORIZER_METHOD_ARN,
        "headers": {"Authorization": f"Bearer {token}"},
        "requestContext": {"identity": {"sourceIp": "203.0.113.9"}},
    }
    result = _decisions(lambda n: lambda_handler(event, None), counter, warmup, iterations, count_requests)
    return {"event": "REQUEST authorizer, Bearer at+jwt (RS256, KMS-signed), own issuer", **result}


def bench_mtls(
    table_name: str, counter: CallCounter, warmup: int, iterations: int, count_requests: int
) -> dict[str, Any]:
    """The mTLS authorizer: not cached by API Gateway, so every request reads the certificate
    (one GetItem); the client's state comes from the container's short cache."""
    import boto3

    from functions.routes.dal.certificates_store import DynamoCertificateStore
    from functions.routes.dal.clients_store import DynamoClientStore
    from functions.routes.logic import certificates
    from gateway_core.audit import Actor
    from tests.certificates import make_certificate

    put_client(table_name, "cl_bench_mtls")
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    pem, _ = make_certificate("bench.example")
    certificates.register(
        DynamoCertificateStore(dynamodb, table_name),
        DynamoClientStore(dynamodb, table_name),
        "cl_bench_mtls",
        pem,
        Actor("bench", "api_key", "k", "r"),
        datetime.now(UTC),
    )
    from functions.authorizer.mtls_handler import lambda_handler

    event = {
        "type": "REQUEST",
        "methodArn": AUTHORIZER_METHOD_ARN,
        "headers": {},
        "requestContext": {"identity": {"sourceIp": "203.0.113.9", "clientCert": {"clientCertPem": pem}}},
    }
    result = _decisions(lambda n: lambda_handler(event, None), counter, warmup, iterations, count_requests)
    return {"event": "REQUEST authorizer, registered client certificate", **result}


def run(warmup: int = 20, iterations: int = 200, count_requests: int = 50) -> dict[str, Any]:
    ensure_import_path()
    from moto import mock_aws

    with patched_environ(_BASE_ENV, _DROPPED_ENV), mock_aws():
        resource_env = create_resources()
        os.environ.update(resource_env)

        from gateway_core import aws as gateway_aws
        from gateway_core import settings as gateway_settings

        # Clients and settings must be created inside the mock, with this environment.
        gateway_aws.reset_clients()
        gateway_settings.settings.cache_clear()

        from functions.authorizer.api_key_handler import lambda_handler as authorizer_handler
        from functions.routes.health_handler import lambda_handler as health_handler

        counter = CallCounter()
        health = bench_health(health_handler, counter, warmup, iterations, count_requests)
        key = put_api_key(resource_env["TABLE_NAME"])
        authorizer = bench_authorizer(authorizer_handler, key, counter, warmup, iterations, count_requests)
        # One counter for all: botocore keeps the first handler registered under its unique id.
        jwt_decision = bench_jwt(resource_env["TABLE_NAME"], counter, warmup, iterations, count_requests)
        mtls_decision = bench_mtls(resource_env["TABLE_NAME"], counter, warmup, iterations, count_requests)

        gateway_aws.reset_clients()
        gateway_settings.settings.cache_clear()
    return {
        "backend": "moto mock_aws (in-process)",
        "iterations": iterations,
        "warmup": warmup,
        "count_requests": count_requests,
        "health": health,
        "authorizer": authorizer,
        "jwt": jwt_decision,
        "mtls": mtls_decision,
    }


def latency_table(section: dict[str, Any]) -> str:
    headers = ["handler", "first ms", "p50 ms", "p95 ms", "p99 ms", "mean ms", "min ms", "max ms"]
    rows: list[list[Any]] = []
    for label, key in (
        ("health: GET health", "health"),
        ("authorizer: API key", "authorizer"),
        ("authorizer: JWT", "jwt"),
        ("authorizer: mTLS", "mtls"),
    ):
        entry = section[key]
        stats = entry["latency"]
        rows.append(
            [
                label,
                entry["first_call_ms"],
                stats["p50_ms"],
                stats["p95_ms"],
                stats["p99_ms"],
                stats["mean_ms"],
                stats["min_ms"],
                stats["max_ms"],
            ]
        )
    title = (
        f"Warm in-process latency ({section['backend']}; {section['warmup']} warm-up, "
        f"{section['iterations']} measured calls)"
    )
    return format_table(title, headers, rows)


def calls_table(section: dict[str, Any]) -> str:
    headers = ["handler", "operation", "calls / request"]
    rows: list[list[Any]] = []
    for label, key in (
        ("health: GET health", "health"),
        ("authorizer: API key", "authorizer"),
        ("authorizer: JWT", "jwt"),
        ("authorizer: mTLS", "mtls"),
    ):
        calls = section[key]["aws_calls"]
        for operation, per_request in calls["by_operation"].items():
            rows.append([label, operation, f"{per_request:g}"])
        rows.append([label, "TOTAL", f"{calls['calls_per_request']:g}"])
    title = f"AWS calls per request (botocore before-call hook, {section['count_requests']} requests each)"
    text = format_table(title, headers, rows, align="llr")
    notes = []
    health = section["health"]
    notes.append(f"  health status: {health['health_status']}; checks: {health['checks']}")
    notes.append(
        f"  health status codes: {health['status_codes']}; authorizer decisions: {section['authorizer']['decisions']}"
    )
    notes.append(f"  JWT decisions: {section['jwt']['decisions']}; mTLS decisions: {section['mtls']['decisions']}")
    for key in ("health", "authorizer", "jwt", "mtls"):
        notes.extend(f"  ! WARNING ({key}): {w}" for w in section[key]["warnings"])
    return "\n".join([text, *notes])
