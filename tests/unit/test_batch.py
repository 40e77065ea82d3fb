"""The batch's answer stays inside a Lambda response (the largest sub-answers give way first), and a
batch that comes back to this gateway through a route is refused at once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.routes.api.batch import MAX_BATCH_BYTES, _wire_size, _within_size, handle
from functions.routes.logic.proxy import LoopDetected
from gateway_core.endpoints import Request
from tests.unit.proxy_fakes import harness, make_route


def answer(sub_id: str, size: int, char: str = "x") -> dict[str, Any]:
    return {"id": sub_id, "status": 200, "headers": {"Content-Type": "text/plain"}, "body": char * size}


def test_a_batch_that_fits_is_returned_as_it_is() -> None:
    answers = [answer("a", 1000), answer("b", 2000)]
    assert _within_size(list(answers), "req") == answers


def test_the_largest_answers_become_problems_until_the_batch_fits() -> None:
    big = MAX_BATCH_BYTES // 2
    answers = [answer("small", 100), answer("big1", big), answer("big2", big + 10), answer("big3", big - 10)]
    out = _within_size(answers, "req-9")
    assert [a["id"] for a in out] == ["small", "big1", "big2", "big3"]  # order kept
    assert [a["status"] for a in out] == [200, 502, 502, 200]
    assert out[2]["body"]["code"] == "batch_too_large"
    assert out[2]["body"]["request_id"] == "req-9"
    assert sum(_wire_size(a) for a in out) <= MAX_BATCH_BYTES


def test_sizes_count_the_escaping_the_lambda_response_adds() -> None:
    # Cyrillic is 2 bytes in UTF-8 but 6 once escaped as ASCII-only JSON, twice over
    plain, cyrillic = answer("a", 1000), answer("b", 1000, "д")
    assert _wire_size(cyrillic) > 5 * _wire_size(plain)
    out = _within_size([answer("c", MAX_BATCH_BYTES // 5, "д")], "req")  # 1 M characters, 6 MB escaped
    assert out[0]["status"] == 502


def batch_request(body: dict[str, Any], headers: dict[str, str]) -> Request:
    return Request(
        method="POST",
        path="/api/v1/batch",
        headers={"content-type": "application/json", **{k.lower(): v for k, v in headers.items()}},
        query={},
        body=json.dumps(body).encode(),
        request_id="req-b",
        source_ip="203.0.113.7",
        authorizer={},
        client_cert_pem="",
    )


OPEN_ROUTE = make_route(auth_required=False)
THREE = {"requests": [{"method": "GET", "path": f"/gw/orders/{i}"} for i in range(3)]}


def test_a_batch_that_already_passed_this_gateway_is_refused_whole() -> None:
    h = harness([OPEN_ROUTE])
    with pytest.raises(LoopDetected):
        handle(batch_request(THREE, {"X-Gateway-Hop": f"gw-x, {h.proxy.hop_id}"}), h.proxy)
    assert h.upstream.calls == []


def test_a_batchs_hops_go_upstream_with_every_sub_request_and_sub_requests_cannot_set_them() -> None:
    h = harness([OPEN_ROUTE])
    body = {"requests": [{**r, "headers": {"X-Gateway-Hop": "gw-forged"}} for r in THREE["requests"]]}
    reply = handle(batch_request(body, {"X-Gateway-Hop": "gw-x"}), h.proxy)
    assert reply.status == 200
    assert [c.headers["x-gateway-hop"] for c in h.upstream.calls] == [f"gw-x, {h.proxy.hop_id}"] * 3


def test_a_sub_request_cannot_claim_this_gateways_hop_to_refuse_itself_either() -> None:
    h = harness([OPEN_ROUTE])
    body = {"requests": [{"method": "GET", "path": "/gw/orders/1", "headers": {"X-Gateway-Hop": h.proxy.hop_id}}]}
    answers = json.loads(handle(batch_request(body, {}), h.proxy).body)["responses"]
    assert answers[0]["status"] == 200
