"""The runtime's API Gateway, Lambda, SQS, schedule and Step Functions paths, proven through the
test-only fixture stack (tests/e2e/runtime_app.py) over real HTTP."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import RunningGateway, eventually
from tests.e2e.runtime_app import STACK_NAME


def _records(gateway: RunningGateway, kind: str) -> list[dict[str, Any]]:
    table = gateway.outputs(STACK_NAME)["RecorderTableName"]
    items = gateway.aws("dynamodb").query(
        TableName=table, KeyConditionExpression="PK = :k", ExpressionAttributeValues={":k": {"S": kind}}
    )["Items"]
    return [json.loads(item["payload"]["S"]) for item in items]


# -- API Gateway proxy events ------------------------------------------------------------------
def test_proxy_event_carries_path_parameters_multi_value_query_and_headers(fixture_gateway: RunningGateway) -> None:
    with fixture_gateway.client() as http:
        response = http.get("/public/items/42?tag=a&tag=b", headers={"X-Trace": "t1"})
    assert response.status_code == 200
    event = response.json()
    assert event["resource"] == "/public/items/{itemId}"
    assert event["pathParameters"] == {"itemId": "42"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"]}
    assert event["multiValueHeaders"]["X-Trace"] == ["t1"]
    assert event["requestContext"]["stage"] == "test"
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["requestId"] == response.headers["x-amzn-RequestId"]
    # The function ran with its own environment from the template.
    assert event["env"]["FIXTURE_MARKER"] == "Api"
    assert response.headers.get_list("X-Multi") == ["a", "b"]


def test_greedy_proxy_and_any_method(fixture_gateway: RunningGateway) -> None:
    with fixture_gateway.client() as http:
        response = http.put("/public/files/a/b/c.txt", content=b"hello")
    assert response.status_code == 200
    event = response.json()
    assert event["pathParameters"] == {"proxy": "a/b/c.txt"}
    assert event["httpMethod"] == "PUT"
    assert event["body"] == "hello"


def test_bodies_of_binary_media_types_are_base64_encoded_and_others_are_text(fixture_gateway: RunningGateway) -> None:
    # The fixture API lists application/octet-stream and image/* as binary media types.
    with fixture_gateway.client() as http:
        binary = http.post("/public", content=b"\xff\xfe\x00", headers={"Content-Type": "application/octet-stream"})
        image = http.post("/public", content=b"\x89PNG", headers={"Content-Type": "image/png"})
        text = http.post("/public", content="grüße".encode(), headers={"Content-Type": "text/plain; charset=utf-8"})
    assert (binary.json()["isBase64Encoded"], binary.json()["body"]) == (True, "//4A")
    assert (image.json()["isBase64Encoded"], image.json()["body"]) == (True, "iVBORw==")
    assert (text.json()["isBase64Encoded"], text.json()["body"]) == (False, "grüße")


def test_base64_answers_are_decoded_only_for_binary_accept_types(fixture_gateway: RunningGateway) -> None:
    with fixture_gateway.client() as http:
        wanted = http.get("/public?binary=00ff10", headers={"Accept": "application/octet-stream"})
        as_text = http.get("/public?binary=00ff10", headers={"Accept": "application/json"})
    assert wanted.content == b"\x00\xff\x10"
    # Without a binary Accept type API Gateway passes the function's base64 text through.
    assert as_text.content == b"AP8Q"


def test_unknown_route_and_function_failures_answer_like_api_gateway(fixture_gateway: RunningGateway) -> None:
    with fixture_gateway.client() as http:
        missing = http.get("/nowhere")
        raised = http.get("/public?fail=raise")
        malformed = http.get("/public?fail=malformed")
        own_timeout = http.get("/public?sleep=2.5")  # the function's own 2 s timeout
        integration_timeout = http.get("/slow?sleep=5")  # runtime started with a 3 s integration timeout
    assert missing.status_code == 403
    assert missing.json() == {"message": "Missing Authentication Token"}
    assert raised.status_code == 502
    assert malformed.status_code == 502
    assert own_timeout.status_code == 502
    assert integration_timeout.status_code == 504
    assert integration_timeout.json() == {"message": "Endpoint request timed out"}


# -- Lambda execution environments -------------------------------------------------------------
def _inspect(http: Any, path: str = "/public") -> dict[str, Any]:
    response = http.get(f"{path}?inspect=1")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_function_runs_isolated_with_only_its_assets_and_environment(fixture_gateway: RunningGateway) -> None:
    with fixture_gateway.client() as http:
        inspected = _inspect(http)
    # Its code first, then what Lambda's runtime provides (the fixture has no layers): boto3 is
    # there, nothing of the development virtualenv or the repository is.
    assert inspected["sys_path"][0].endswith("/functions/" + inspected["sys_path"][0].rsplit("/", 1)[-1])
    assert inspected["importable"] == {"boto3": True, "moto": False, "pytest": False, "infra": False}
    env = set(inspected["env_keys"])
    assert {"FIXTURE_MARKER", "RECORDER_TABLE", "AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "AWS_ENDPOINT_URL"} <= env
    # The test process's variables never reach the function.
    assert not env & {"PYTEST_CURRENT_TEST", "VIRTUAL_ENV", "HOME", "PYTHONPATH"}


def test_warm_workers_are_reused_and_concurrent_calls_start_more(fixture_gateway: RunningGateway) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with fixture_gateway.client() as http:
        first, second = _inspect(http)["pid"], _inspect(http)["pid"]
        assert first == second  # one call at a time: the warm worker serves it

        def slow(_: int) -> int:
            return int(http.get("/public?sleep=0.8&inspect=1").json()["pid"])

        with ThreadPoolExecutor(3) as pool:
            pids = set(pool.map(slow, range(3)))
    assert len(pids) == 3  # one invocation per worker at a time
    report = "".join(fixture_gateway.output)
    assert re.search(
        r"REPORT RequestId: \S+\tDuration: [\d.]+ ms.*Max Memory Used: \d+ MB\tInit Duration: [\d.]+ ms", report
    )


def test_a_timed_out_or_crashed_worker_is_replaced(fixture_gateway: RunningGateway) -> None:
    with fixture_gateway.client() as http:
        before = _inspect(http)["pid"]
        assert http.get("/public?sleep=2.5").status_code == 502  # past the function's 2 s: killed
        after_timeout = _inspect(http)["pid"]
        assert http.get("/public?fail=exit").status_code == 502  # the process died mid-invocation
        after_exit = _inspect(http)["pid"]
    assert before != after_timeout
    assert after_exit not in (before, after_timeout)


def test_reserved_concurrency_caps_workers_and_throttles_the_rest(fixture_gateway: RunningGateway) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with fixture_gateway.client() as http:
        _inspect(http, "/reserved")  # one warm worker, the only one allowed
        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(pool.map(lambda _: http.get("/reserved?sleep=1").status_code, range(2)))
    assert statuses == [200, 502]


def test_a_function_may_call_only_what_its_role_grants(fixture_gateway: RunningGateway) -> None:
    # The fixture's role may read and write its table (DescribeTable included), not list tables.
    with fixture_gateway.client() as http:
        granted = http.get("/public?aws=describe_table").json()
        refused = http.get("/public?aws=list_tables").json()
    assert granted == {"outcome": "ok"}
    assert refused == {"outcome": "AccessDeniedException"}


def test_request_over_ten_megabytes_is_refused_with_413(fixture_gateway: RunningGateway) -> None:
    with fixture_gateway.client() as http:
        response = http.post("/public", content=b"x" * (10 * 1024 * 1024 + 1))
    assert response.status_code == 413


# -- Lambda authorizers ------------------------------------------------------------------------
def test_token_authorizer_allows_and_passes_its_context(fixture_gateway: RunningGateway) -> None:
    with fixture_gateway.client() as http:
        response = http.get("/token", headers={"Authorization": "allow-alice"})
    assert response.status_code == 200
    assert response.json()["authorizer"] == {"who": "alice", "level": 3, "ok": True, "principalId": "alice"}


def test_token_authorizer_refusals(fixture_gateway: RunningGateway) -> None:
    with fixture_gateway.client() as http:
        missing = http.get("/token")
        unknown = http.get("/token", headers={"Authorization": "who-knows"})
        denied = http.get("/token", headers={"Authorization": "deny"})
        bad_context = http.get("/token", headers={"Authorization": "bad-context"})
        crashed = http.get("/token", headers={"Authorization": "crash"})
    # The template's UNAUTHORIZED gateway response shapes the 401s.
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "unauthorized"
    assert unknown.status_code == 401
    assert denied.status_code == 403
    assert bad_context.status_code == 500
    assert crashed.status_code == 500


def test_authorizer_results_are_cached_by_token_and_reused_across_methods(fixture_gateway: RunningGateway) -> None:
    def calls(token: str) -> int:
        return sum(1 for r in _records(fixture_gateway, "authorizer-token") if r["token"] == token)

    with fixture_gateway.client() as http:
        for _ in range(3):
            assert http.get("/token", headers={"Authorization": "allow-cached"}).status_code == 200
        assert http.post("/token", headers={"Authorization": "allow-cached"}).status_code == 200
        # A policy scoped to GET /token is cached and then evaluated against POST: a false 403,
        # exactly what API Gateway does with method-scoped policies.
        assert http.get("/token", headers={"Authorization": "method-only"}).status_code == 200
        assert http.post("/token", headers={"Authorization": "method-only"}).status_code == 403
    assert calls("allow-cached") == 1
    assert calls("method-only") == 1


def test_request_authorizer_needs_every_identity_source_and_ttl_zero_means_no_cache(
    fixture_gateway: RunningGateway,
) -> None:
    def calls() -> int:
        return sum(1 for r in _records(fixture_gateway, "authorizer-request") if r["tenant"] == "tenant-z")

    with fixture_gateway.client() as http:
        no_query = http.get("/tenant", headers={"X-Tenant": "tenant-z"})
        first = http.get("/tenant?region=eu", headers={"X-Tenant": "tenant-z"})
        second = http.get("/tenant?region=eu", headers={"X-Tenant": "tenant-z"})
        refused = http.get("/tenant?region=eu", headers={"X-Tenant": "someone"})
    assert no_query.status_code == 401  # refused before the authorizer runs
    assert first.status_code == 200
    assert first.json()["authorizer"]["tenant"] == "tenant-z"
    assert second.status_code == 200
    assert refused.status_code == 401
    assert calls() == 2


# -- SQS event source --------------------------------------------------------------------------
def test_sqs_batches_partial_failures_and_redrive_to_dlq(fixture_gateway: RunningGateway) -> None:
    outputs = fixture_gateway.outputs(STACK_NAME)
    sqs = fixture_gateway.aws("sqs")
    ids = [f"m{i}" for i in range(7)]
    for message_id in ids:
        body = json.dumps({"id": message_id, "fail": message_id == "m3"})
        sqs.send_message(QueueUrl=outputs["QueueUrl"], MessageBody=body)

    ok = eventually(lambda: {r["id"] for r in _records(fixture_gateway, "sqs-ok")} >= set(ids) - {"m3"} or None)
    assert ok
    # The failing message is retried once (maxReceiveCount 2) and then lands in the DLQ.
    dlq = eventually(
        lambda: sqs.receive_message(QueueUrl=outputs["DlqUrl"], WaitTimeSeconds=1).get("Messages"), timeout=30
    )
    assert json.loads(dlq[0]["Body"])["id"] == "m3"
    failed = [r for r in _records(fixture_gateway, "sqs-failed") if r["id"] == "m3"]
    assert sorted(r["receive_count"] for r in failed) == ["1", "2"]
    assert all(r["size"] <= 5 for r in _records(fixture_gateway, "sqs-batch"))
    # Successful messages were processed exactly once despite sharing batches with a failure.
    ok_ids = [r["id"] for r in _records(fixture_gateway, "sqs-ok") if r["id"] in ids]
    assert sorted(ok_ids) == sorted(set(ids) - {"m3"})


# -- schedules ---------------------------------------------------------------------------------
def test_eventbridge_rule_and_scheduler_schedule_fire_their_targets(fixture_gateway: RunningGateway) -> None:
    def fired() -> tuple[int, int]:
        records = _records(fixture_gateway, "scheduled")
        from_rule = sum(1 for r in records if r.get("detail-type") == "Scheduled Event")
        from_scheduler = sum(1 for r in records if r.get("source") == "scheduler")
        return from_rule, from_scheduler

    counts = eventually(lambda: fired() if min(fired()) >= 2 else None, timeout=30)
    assert counts[0] >= 2
    assert counts[1] >= 2


def test_schedule_created_at_run_time_fires_too(fixture_gateway: RunningGateway) -> None:
    outputs = fixture_gateway.outputs(STACK_NAME)
    functions = fixture_gateway.aws("lambda").list_functions()["Functions"]
    target = next(
        f["FunctionArn"] for f in functions if f["Environment"]["Variables"].get("FIXTURE_MARKER") == "Scheduled"
    )
    fixture_gateway.aws("scheduler").create_schedule(
        Name="runtime-created",
        ScheduleExpression="rate(2 minutes)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": target, "RoleArn": "arn:aws:iam::123456789012:role/x", "Input": '{"source": "runtime-created"}'},
    )
    assert outputs["RecorderTableName"]
    eventually(lambda: any(r.get("source") == "runtime-created" for r in _records(fixture_gateway, "scheduled")))


# -- Step Functions ----------------------------------------------------------------------------
def test_state_machine_runs_lambda_task_in_process(fixture_gateway: RunningGateway) -> None:
    outputs = fixture_gateway.outputs(STACK_NAME)
    sfn = fixture_gateway.aws("stepfunctions")
    # moto names every unnamed execution "None" (a second one would clash): always pass a name.
    ok = sfn.start_execution(
        stateMachineArn=outputs["StateMachineArn"],
        name=f"ok-{uuid.uuid4()}",
        input=json.dumps({"amount": "10.10", "currency": "EUR"}),
    )
    failing = sfn.start_execution(
        stateMachineArn=outputs["StateMachineArn"],
        name=f"fail-{uuid.uuid4()}",
        input=json.dumps({"amount": "1", "currency": "EUR", "fail": True}),
    )

    def finished(arn: str) -> dict[str, Any] | None:
        described = sfn.describe_execution(executionArn=arn)
        return described if described["status"] != "RUNNING" else None

    done = eventually(lambda: finished(ok["executionArn"]))
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"doubled": "20.20", "currency": "EUR"}
    failed = eventually(lambda: finished(failing["executionArn"]))
    assert failed["status"] == "FAILED"
    assert failed.get("error") == "TaskFailed"


# -- moto's Lambda Invoke API ------------------------------------------------------------------
def test_lambda_invoke_api_runs_the_function_in_process(fixture_gateway: RunningGateway) -> None:
    client = fixture_gateway.aws("lambda")
    functions = client.list_functions()["Functions"]
    task = next(f["FunctionName"] for f in functions if f["Environment"]["Variables"].get("FIXTURE_MARKER") == "Task")

    ok = client.invoke(FunctionName=task, Payload=json.dumps({"amount": "0.10", "currency": "USD"}))
    failed = client.invoke(FunctionName=task, Payload=json.dumps({"amount": "1", "currency": "USD", "fail": True}))

    assert json.loads(ok["Payload"].read()) == {"doubled": "0.20", "currency": "USD"}
    assert "FunctionError" not in ok
    assert failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "task asked to fail"


# -- mutual TLS ----------------------------------------------------------------------------------
def test_https_listener_requires_a_client_certificate_from_the_truststore(fixture_gateway: RunningGateway) -> None:
    import ssl

    import httpx
    from cryptography import x509

    pki = fixture_gateway.state_dir / "pki"
    trust = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    trust.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
    with httpx.Client(base_url=fixture_gateway.tls_url, verify=trust, timeout=30) as https:
        event = https.get("/public/items/7").json()
    cert = event["requestContext"]["identity"]["clientCert"]
    demo = x509.load_pem_x509_certificate((pki / "client.pem").read_bytes())
    assert cert["subjectDN"] == demo.subject.rfc4514_string()
    assert cert["issuerDN"] == "CN=Finance Gateway local CA,O=Finance Gateway (local)"  # RFC 4514 order
    assert x509.load_pem_x509_certificate(cert["clientCertPem"].encode()) == demo
    assert cert["validity"]["notAfter"].endswith("GMT")

    # Without a client certificate the handshake fails, as on an API Gateway mTLS domain.
    anonymous = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with (
        httpx.Client(base_url=fixture_gateway.tls_url, verify=anonymous, timeout=10) as https,
        pytest.raises(httpx.TransportError),
    ):
        https.get("/public")
    # The plain listener carries no certificate.
    plain = httpx.get(f"{fixture_gateway.base_url}/public", timeout=30)
    assert plain.json()["requestContext"]["identity"]["clientCert"] is None
