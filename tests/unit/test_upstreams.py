"""The loopback upstream servers the end-to-end proxy tests rely on, checked directly over HTTP
through the proxy's own upstream adapter (pooled keep-alive connections behind the SSRF guard)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from ipaddress import ip_network
from typing import Any

import pytest
from urllib3 import HTTPHeaderDict

from functions.routes.dal.upstream import UpstreamClient
from functions.routes.logic.proxy_ports import UpstreamConnectFailed, UpstreamTransportFailed
from gateway_core.ssrf import SsrfPolicy
from tests.upstreams import SOAP11, SOAP12, GraphqlUpstream, JsonUpstream, SoapUpstream

LOOPBACK = SsrfPolicy(allow_networks=(ip_network("127.0.0.0/8"),), require_https=False)


class Answer:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_code = status
        self.headers = HTTPHeaderDict(headers)  # names looked up in any case
        self.content = body

    def json(self) -> Any:
        return json.loads(self.content)


class Http:
    """Calls to one loopback upstream through UpstreamClient (one pool, connections kept alive)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.client = UpstreamClient(LOOPBACK)

    def __enter__(self) -> Http:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.pools.clear()

    def request(
        self, method: str, path: str, content: bytes = b"", headers: dict[str, str] | None = None, json: Any = None
    ) -> Answer:
        sent = dict(headers or {})
        if json is not None:
            content = _json_body(json)
            sent.setdefault("content-type", "application/json")
        return Answer(*self.client.send(method, self.base_url + path, sent, content, 5.0))

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def head(self, path: str) -> Answer:
        return self.request("HEAD", path)

    def delete(self, path: str) -> Answer:
        return self.request("DELETE", path)

    def post(self, path: str, **kwargs: Any) -> Answer:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Answer:
        return self.request("PUT", path, **kwargs)


def _json_body(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture
def echo() -> Iterator[JsonUpstream]:
    server = JsonUpstream(name="orders-a")
    yield server
    server.close()


@pytest.fixture
def soap() -> Iterator[SoapUpstream]:
    server = SoapUpstream()
    yield server
    server.close()


@pytest.fixture
def graphql() -> Iterator[GraphqlUpstream]:
    server = GraphqlUpstream()
    yield server
    server.close()


def envelope(version: str, account: str, qualified: bool = True) -> bytes:
    child = f"<b:accountId>{account}</b:accountId>" if qualified else f"<accountId>{account}</accountId>"
    return (
        f'<e:Envelope xmlns:e="{version}"><e:Header/><e:Body>'
        f'<b:GetBalance xmlns:b="urn:bank:accounts">{child}</b:GetBalance></e:Body></e:Envelope>'
    ).encode()


def test_json_echo_keeps_the_body_verbatim_over_one_keep_alive_connection(echo: JsonUpstream) -> None:
    with Http(echo.url) as http:
        answer = http.post(
            "/v2/orders/42?ccy=EUR&ccy=USD&empty=", content=b'{"amount":1234.50}', headers={"X-Partner": "p-1"}
        )
        assert answer.status_code == 200
        assert answer.headers["X-Upstream-Name"] == "orders-a"
        assert b'"body":{"amount":1234.50}' in answer.content
        seen = answer.json()
        assert list(seen) == ["upstream", "method", "path", "query", "headers", "body"]
        assert (seen["upstream"], seen["method"], seen["path"]) == ("orders-a", "POST", "/v2/orders/42")
        assert seen["query"] == {"ccy": ["EUR", "USD"], "empty": [""]}
        assert seen["headers"]["x-partner"] == "p-1"
        assert http.put("/x", content=b"not json").json()["body"] == "not json"
        assert http.delete("/x").json()["body"] is None
        assert http.post("/x", content=b"NaN").json()["body"] == "NaN"  # not JSON, so echoed as a string
        head = http.head("/x")
        assert head.status_code == 200
        assert head.content == b""
        assert int(head.headers["Content-Length"]) > 0
    assert echo.count == 5


def test_fail_next_fails_exactly_n_requests_and_they_count(echo: JsonUpstream) -> None:
    echo.fail_next(2, status=502)
    with Http(echo.url) as http:
        statuses = [http.get("/a").status_code for _ in range(3)]
        assert statuses == [502, 502, 200]
        echo.fail_next(5)
        failed = http.get("/a")
        assert (failed.status_code, failed.json()) == (503, {"error": "induced failure"})
        echo.fail_next(0)
        assert http.get("/a").status_code == 200
    assert echo.count == 5


def test_health_follows_the_flag_and_counts_apart(echo: JsonUpstream) -> None:
    with Http(echo.url) as http:
        assert http.get("/health").json() == {"status": "ok"}
        echo.healthy = False
        assert http.get("/health").status_code == 503
        echo.fail_next(1)  # failures are for traffic, not health checks
        echo.healthy = True
        assert http.get("/health").status_code == 200
    assert (echo.health_checks, echo.count) == (3, 0)


def test_soap_11_balance_and_fault(soap: SoapUpstream) -> None:
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"urn:bank:accounts#GetBalance"'}
    with Http(soap.url) as http:
        ok = http.post("/soap", content=envelope(SOAP11, "ACC-1"), headers=headers)
        assert ok.status_code == 200
        assert ok.headers["content-type"] == "text/xml; charset=utf-8"
        assert f'<soap:Envelope xmlns:soap="{SOAP11}">'.encode() in ok.content
        assert (
            b'<GetBalanceResponse xmlns="urn:bank:accounts"><accountId>ACC-1</accountId>'
            b"<balance>1234.56</balance><currency>EUR</currency></GetBalanceResponse>"
        ) in ok.content
        assert soap.last_headers["soapaction"] == '"urn:bank:accounts#GetBalance"'
        unqualified = http.post("/soap", content=envelope(SOAP11, "ACC-2", qualified=False), headers=headers)
        assert b"<balance>0.10</balance>" in unqualified.content
        fault = http.post("/soap", content=envelope(SOAP11, "NOPE"), headers=headers)
        assert fault.status_code == 500
        assert b"<faultcode>soap:Client</faultcode><faultstring>Unknown account NOPE</faultstring>" in fault.content
        broken = http.post("/soap", content=b"<oops", headers=headers)
        assert broken.status_code == 500
        assert b"<faultcode>soap:Server</faultcode>" in broken.content
        assert http.get("/soap").status_code == 405
    assert soap.last_request == b"<oops"
    assert soap.count == 5


def test_soap_12_balance_and_fault(soap: SoapUpstream) -> None:
    headers = {"Content-Type": "application/soap+xml; charset=utf-8"}
    with Http(soap.url) as http:
        ok = http.post("/soap", content=envelope(SOAP12, "ACC-2"), headers=headers)
        assert ok.status_code == 200
        assert ok.headers["content-type"] == "application/soap+xml; charset=utf-8"
        assert f'<env:Envelope xmlns:env="{SOAP12}">'.encode() in ok.content
        assert b"<accountId>ACC-2</accountId><balance>0.10</balance>" in ok.content
        fault = http.post("/soap", content=envelope(SOAP12, "NOPE"), headers=headers)
        assert fault.status_code == 500
        assert b"<env:Value>env:Sender</env:Value>" in fault.content
        assert b'<env:Text xml:lang="en">Unknown account NOPE</env:Text>' in fault.content


def test_graphql_account_and_errors(graphql: GraphqlUpstream) -> None:
    query = "query Account($id: ID!) { account(id: $id) { id balance currency } }"
    with Http(graphql.url) as http:
        ok = http.post("/graphql", json={"query": query, "operationName": "Account", "variables": {"id": "ACC-1"}})
        assert ok.status_code == 200
        assert ok.headers["content-type"] == "application/json"
        assert ok.json() == {"data": {"account": {"id": "ACC-1", "balance": "1234.56", "currency": "EUR"}}}
        assert graphql.last_request["operationName"] == "Account"
        missing = http.post("/graphql", json={"query": query, "variables": {"id": "NOPE"}})
        assert missing.status_code == 200
        assert missing.json() == {
            "data": {"account": None},
            "errors": [{"message": "Account not found", "path": ["account"], "extensions": {"code": "NOT_FOUND"}}],
        }
        for bad in (b"{not json", json.dumps({"variables": {}}).encode()):
            refused = http.post("/graphql", content=bad)
            assert refused.status_code == 400
            assert refused.json()["errors"][0]["message"]


def test_close_takes_the_server_down_even_with_a_keep_alive_connection_open() -> None:
    server = JsonUpstream()
    with Http(server.url) as http:
        assert http.get("/x").status_code == 200
        server.close()
        with pytest.raises((UpstreamConnectFailed, UpstreamTransportFailed)):
            http.get("/x")
