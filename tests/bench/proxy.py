"""The dynamic proxy: route matching plus transformation time for 10 and 1,000 deployed routes
(warm, in process, no I/O), and AWS calls per proxied request through the data plane's
handler (moto in process, a real upstream on loopback).

Matching walks a trie, so its cost should depend on the path, not the number of routes: the
ratio of the 1,000-route time to the 10-route time, measured in one run, is the number to read.
"""

from __future__ import annotations

import time
from typing import Any

from tests.bench.handlers import (
    _BASE_ENV,
    _DROPPED_ENV,
    CallCounter,
    FakeLambdaContext,
    ensure_import_path,
    patched_environ,
    proxy_event,
)
from tests.bench.report import format_table, percentile, summarize

UPSTREAM = "https://upstream.bench.example"


def _route(index: int, gateway_id: str) -> dict[str, Any]:
    return {
        "gateway_id": gateway_id,
        "name": f"route {index}",
        "method": "POST" if index % 2 else "GET",
        "path": f"/svc{index}/accounts/{{account}}/items/{{item}}",
        "upstream_path": f"/v2/svc{index}/{{account}}/{{item}}",
        "targets": [{"url": UPSTREAM}, {"url": UPSTREAM + ":8443", "weight": 2}],
        "load_balancing": "weighted",
        "required_scopes": ["banking:read"],
        "request_transform": {
            "headers": {"add": {"X-Partner": "{{ client.id }}"}, "remove": ["X-Debug"]},
            "query": {"rename": {"ccy": "currency"}},
            **({"body": {"amount": "{{ body.amount }}", "ref": "{{ request.id }}"}} if index % 2 else {}),
        },
        "response_transform": {"headers": {"add": {"X-Served-By": "gateway"}}, "body": {"data": "{{ body }}"}},
    }


def _version(routes: int) -> Any:
    from functions.routes.logic.gateways import GatewaySpec, GatewayVersion
    from functions.routes.logic.route_spec import Route

    stamp = "2026-12-01T00:00:00Z"
    stored = [
        Route.stored(
            {
                **_route(i, "gw_bench"),
                "route_id": f"rt_{i:06d}",
                "version": 1,
                "created_at": stamp,
                "updated_at": stamp,
                "created_by": "bench",
            }
        )
        for i in range(routes)
    ]
    return GatewayVersion(
        gateway_id="gw_bench",
        version=1,
        created_at=stamp,
        created_by="bench",
        settings=GatewaySpec(name="bench"),
        routes=stored,
    )


def _us(samples: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(samples, 50), 2), "p95": round(percentile(samples, 95), 2)}


def bench_match_and_transform(routes: int, iterations: int) -> dict[str, Any]:
    """Per request: match the path among `routes`, build the upstream request (header, query and
    body rules), and map a JSON answer back (body template, negotiation, header rules)."""
    from functions.routes.dal.upstream import UpstreamAnswer
    from functions.routes.logic import proxy
    from functions.routes.logic.serving import CompiledVersion
    from functions.routes.logic.transform.rules import apply_query_rules
    from gateway_core.deployed import DeployedVersion

    # As the data plane reads it: the deployed model's JSON, into its dataclasses.
    compiled = CompiledVersion.compile(DeployedVersion.from_json(_version(routes).model_dump(mode="json")))
    caller = proxy.ProxyCaller(client_id="cl_bench", scopes=("banking:read",), tier="basic")
    answer = UpstreamAnswer(200, [("content-type", "application/json")], b'{"balance":"1234.50","currency":"EUR"}')
    paths = [(("POST" if i % 2 else "GET"), f"/svc{i}/accounts/ACC-{i}/items/{i * 7}") for i in range(routes)]
    match_samples: list[float] = []
    full_samples: list[float] = []
    warmup = min(500, iterations)  # template compilation and other first-use costs stay out
    for n in range(-warmup, iterations):
        method, path = paths[(n * 7919) % routes]  # spread over the table, not one hot entry
        request = proxy.ProxyRequest(
            method=method,
            path=path,
            query={"ccy": ["EUR"], "page": ["2"]},
            headers={"content-type": "application/json", "x-debug": "1", "accept": "application/json"},
            body=b'{"amount": 1234.50}' if method == "POST" else b"",
            source_ip="203.0.113.9",
            request_id=f"bench-{n}",
            caller=caller,
        )
        started = time.perf_counter()
        found = compiled.match(method, path)
        matched = time.perf_counter()
        assert found is not None
        context = proxy._context(request, found.params, request.request_id)
        proxy._upstream_request(found.value, request, context, request.request_id)
        apply_query_rules(request.query, found.value.request_transform.query, context)  # type: ignore[union-attr]
        response = proxy._respond(found.value, request, answer, context)
        done = time.perf_counter()
        assert response.status == 200
        if n < 0:
            continue
        match_samples.append((matched - started) * 1_000_000)
        full_samples.append((done - started) * 1_000_000)
    return {"routes": routes, "match_us": _us(match_samples), "match_and_transform_us": _us(full_samples)}


def _tables(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName="gateway-data",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK", "GSI1PK", "GSI1SK")],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "GSI1",
                "KeySchema": [
                    {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                    {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName="gateway-rate-limits",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def bench_aws_calls(requests: int) -> dict[str, Any]:
    """Proxied requests through `functions.routes.proxy_handler.lambda_handler`, as API Gateway sends
    them after the gateway authorizer, to a JSON upstream on loopback; AWS calls counted per
    request once warm (the deployments index and client limits cached, as in a warm container)."""
    import boto3
    from moto import mock_aws

    from infra.local.moto_host import serialize_dynamodb_writes
    from tests.upstreams import JsonUpstream

    upstream = JsonUpstream(name="bench")
    env = {
        **_BASE_ENV,
        "STAGE": "bench",
        "TABLE_NAME": "gateway-data",
        "RATE_LIMIT_TABLE_NAME": "gateway-rate-limits",
        "UPSTREAM_ALLOW_CIDRS": "127.0.0.0/8",
    }
    try:
        with patched_environ(env, tuple(n for n in _DROPPED_ENV if n != "STAGE")), mock_aws():
            serialize_dynamodb_writes()
            _tables(boto3.client("dynamodb", region_name="us-east-1"))
            from functions.routes.dal.gateways_store import DynamoGatewayStore
            from functions.routes.logic import gateway_admin
            from functions.routes.logic.gateways import DeployRequest, GatewaySpec
            from functions.routes.logic.route_spec import RouteSpec
            from functions.routes.proxy_handler import lambda_handler
            from gateway_core import aws as gateway_aws
            from gateway_core.audit import Actor
            from gateway_core.clock import utc_now

            store = DynamoGatewayStore(gateway_aws.client("dynamodb"), "gateway-data")
            who = Actor(client_id="cl_admin", credential_kind="api_key", credential_id="k", request_id="bench")
            gateway = gateway_admin.create_gateway(store, GatewaySpec(name="bench"), who, utc_now())
            spec = {**_route(0, gateway.gateway_id), "targets": [{"url": upstream.url}], "response_transform": None}
            gateway_admin.create_route(store, RouteSpec.model_validate(spec), who, utc_now())
            gateway_admin.deploy(store, gateway.gateway_id, DeployRequest(), who, utc_now())

            def call(i: int) -> dict[str, Any]:
                event = proxy_event("GET", f"/gw/svc0/accounts/ACC-{i}/items/{i}", f"bench-proxy-{i}")
                event["resource"] = "/gw/{proxy+}"
                event["requestContext"]["authorizer"] = {
                    "client_id": "cl_bench",
                    "scopes": "banking:read",
                    "tier": "enterprise",
                    "credential_kind": "api_key",
                    "credential_id": "key_bench",
                }
                handler: Any = lambda_handler  # takes Lambda's context; the fake has its fields
                result: dict[str, Any] = handler(event, FakeLambdaContext())
                return result

            first = call(-1)
            assert first["statusCode"] == 200, first
            for i in range(5):
                call(i)  # warm: route table compiled, limiter's guess of the bucket's state made
            counter = CallCounter()
            gateway_aws.client("dynamodb").meta.events.register("before-call.*.*", counter, unique_id="bench-proxy")
            samples: list[float] = []
            with counter.counting():
                for i in range(requests):
                    started = time.perf_counter()
                    answer = call(i)
                    samples.append((time.perf_counter() - started) * 1000)
                    assert answer["statusCode"] == 200, answer
            return {"latency_ms": summarize(samples), **counter.per_request(requests), "upstream_calls": upstream.count}
    finally:
        upstream.close()


def run(iterations: int = 2000, requests: int = 200) -> dict[str, Any]:
    ensure_import_path()
    with patched_environ(_BASE_ENV, _DROPPED_ENV):
        small = bench_match_and_transform(10, iterations)
        large = bench_match_and_transform(1000, iterations)
    return {
        "match": [small, large],
        "match_ratio_1000_vs_10": round(large["match_us"]["p50"] / small["match_us"]["p50"], 2),
        "transform_ratio_1000_vs_10": round(
            large["match_and_transform_us"]["p50"] / small["match_and_transform_us"]["p50"], 2
        ),
        "aws_calls": bench_aws_calls(requests),
    }


def tables(section: dict[str, Any]) -> str:
    rows = [
        [
            entry["routes"],
            f"{entry['match_us']['p50']:.1f} / {entry['match_us']['p95']:.1f}",
            f"{entry['match_and_transform_us']['p50']:.1f} / {entry['match_and_transform_us']['p95']:.1f}",
        ]
        for entry in section["match"]
    ]
    rows.append(
        [
            "ratio 1000:10 (p50)",
            f"{section['match_ratio_1000_vs_10']:.2f}",
            f"{section['transform_ratio_1000_vs_10']:.2f}",
        ]
    )
    calls = section["aws_calls"]
    operations = ", ".join(f"{k} {v:g}" for k, v in calls["by_operation"].items()) or "none"
    return "\n\n".join(
        [
            format_table(
                "Proxy: route match and transformations, warm, in process (microseconds, p50 / p95)",
                ["routes", "match", "match + request and response transforms"],
                rows,
            ),
            format_table(
                "Proxy: AWS calls per proxied request (warm, proxy handler, moto in process, upstream on loopback)",
                ["measure", "value"],
                [
                    ["requests", calls["requests"]],
                    ["AWS calls per request", f"{calls['calls_per_request']:g}"],
                    ["by operation, per request", operations],
                    [
                        "handler latency p50 / p95 (moto + loopback)",
                        f"{calls['latency_ms']['p50_ms']:.2f} / {calls['latency_ms']['p95_ms']:.2f} ms",
                    ],
                ],
            ),
        ]
    )
