"""Hostile input over real HTTP through the local runtime: oversized and duplicated headers, body
framings that could hold a connection, a function answer HTTP cannot carry (the fixture stack),
and bad bodies on the product's endpoints (each a 4xx problem that changes nothing)."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import RunningGateway
from tests.e2e.test_product import ADMIN_KEY

PROBLEM = "application/problem+json"


def _raw(gateway: RunningGateway, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request written as bytes; the answer read until the server closes the connection (a
    hang fails the test at the socket's timeout, never a timing assertion)."""
    address = urlsplit(gateway.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(data)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


# -- API Gateway's front door (the fixture stack) ------------------------------------------------------


def test_a_100_kb_token_is_api_gateways_json_431_not_an_html_page(fixture_gateway: RunningGateway) -> None:
    with fixture_gateway.client() as http:
        response = http.get("/token", headers={"Authorization": "allow-" + "a" * 100_000})
        after = http.get("/token", headers={"Authorization": "allow-again"})

    assert response.status_code == 431
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"message"}
    assert after.status_code == 200  # a new connection serves normally


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: -1\r\n",
        b"Content-Length: 5\r\nContent-Length: 7\r\n",
        b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
    ],
    ids=["negative", "two lengths", "length and chunked"],
)
def test_a_body_framing_that_could_hold_the_connection_is_a_400_at_once(
    fixture_gateway: RunningGateway, framing: bytes
) -> None:
    status, headers, body = _raw(fixture_gateway, b"POST /public HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n")

    assert status == 400
    assert headers["content-type"] == "application/json"
    assert "message" in json.loads(body)


def test_two_spellings_of_an_identity_source_are_one_header_checked_by_its_last_value(
    fixture_gateway: RunningGateway,
) -> None:
    # The fixture's REQUEST authorizer allows X-Tenant values starting with "tenant-".
    with fixture_gateway.client() as http:
        allowed_first = http.get("/tenant?region=eu", headers=[("X-Tenant", "tenant-a"), ("x-tenant", "outsider")])
        outsider = http.get("/tenant?region=eu", headers={"x-tenant": "outsider"})
        allowed_last = http.get("/tenant?region=eu", headers=[("X-Tenant", "outsider"), ("x-tenant", "tenant-b")])

    assert allowed_first.status_code == 401  # the last value was checked and refused
    assert outsider.status_code == 401  # and no Allow was cached under it
    assert allowed_last.status_code == 200
    event = allowed_last.json()
    assert event["authorizer"]["tenant"] == "tenant-b"
    tenant_headers = {k: v for k, v in event["multiValueHeaders"].items() if k.lower() == "x-tenant"}
    assert tenant_headers == {"X-Tenant": ["outsider", "tenant-b"]}


@pytest.mark.parametrize("value", ["line\u2028separator", "split\r\nSet-Cookie: stolen=1", "nul\x00"])
def test_a_function_answer_with_a_header_http_cannot_carry_is_a_502(
    fixture_gateway: RunningGateway, value: str
) -> None:
    with fixture_gateway.client() as http:
        response = http.get("/public", params={"header": value})
        after = http.get("/public/items/1")  # the same client, and the runtime, carry on

    assert response.status_code == 502
    assert "set-cookie" not in response.headers
    assert after.status_code == 200


# -- the product's endpoints ----------------------------------------------------------------------------


def _probe_clients(http: httpx.Client) -> int:
    listed = http.get("/api/v1/clients", params={"limit": 100}).json()["items"]
    return sum(1 for c in listed if c["name"].startswith("hostile-probe"))


BAD_BODIES: list[tuple[str, bytes, str, int, str]] = [
    ("json as text/plain", b'{"name": "hostile-probe"}', "text/plain", 415, "unsupported_media_type"),
    ("xml", b"<client><name>hostile-probe</name></client>", "application/xml", 415, "unsupported_media_type"),
    ("invalid utf-8", b'{"name": "hostile-probe \xff"}', "application/json", 400, "invalid_body"),
    ("nested 10,000 deep", b"[" * 10_000 + b"]" * 10_000, "application/json", 400, "invalid_body"),
    ("5,000-digit number", b'{"monthly_quota": ' + b"9" * 5000 + b"}", "application/json", 400, "invalid_body"),
    ("NaN", b'{"name": "hostile-probe", "monthly_quota": NaN}', "application/json", 400, "invalid_body"),
    ("byte order mark", b'\xef\xbb\xbf{"name": "hostile-probe"}', "application/json", 400, "invalid_body"),
    ("top-level array", b"[]", "application/json", 422, "validation_failed"),
]


@pytest.mark.parametrize(
    ("path", "method"),
    [("/api/v1/clients/register", "POST"), ("/api/v1/gateway/ip-denylist", "PUT"), ("/api/v1/batch", "POST")],
)
def test_bad_bodies_are_4xx_problems_that_change_nothing(
    product_gateway: RunningGateway, path: str, method: str
) -> None:
    with product_gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        clients, denylist = _probe_clients(http), http.get("/api/v1/gateway/ip-denylist").json()
        wrong: list[str] = []
        for name, body, content_type, status, code in BAD_BODIES:
            response = http.request(method, path, content=body, headers={"Content-Type": content_type})
            problem: dict[str, Any] = response.json() if response.headers.get("content-type") == PROBLEM else {}
            if (response.status_code, problem.get("code")) != (status, code):
                wrong.append(f"{name}: {response.status_code} {response.text[:160]}")
        quota = json.dumps(
            {
                "name": "hostile-probe",
                "client_type": "integration",
                "contact_email": "ops@probe.example",
                "allowed_scopes": ["data:read"],
                "monthly_quota": 10**39,
            }
        )
        out_of_range = http.post(
            "/api/v1/clients/register", content=quota, headers={"Content-Type": "application/json"}
        )

        assert wrong == []
        assert out_of_range.status_code == 422
        assert _probe_clients(http) == clients
        assert http.get("/api/v1/gateway/ip-denylist").json() == denylist


# -- methods (the product stack's gateway responses) ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("TRACE", "/api/v1/gateway/health"),
        ("PROPFIND", "/api/v1/gateway/health"),
        ("get", "/api/v1/gateway/health"),
        ("BREW", "/api/v1/gateway/health"),
        ("CONNECT", "127.0.0.1:443"),
        ("TRACE", "/api/v1/nowhere"),
        ("GET", "/api/v1/nowhere"),
    ],
)
def test_a_method_no_resource_defines_is_the_templates_404_problem_never_html(
    product_gateway: RunningGateway, method: str, target: str
) -> None:
    # TRACE and other names are not among the seven methods `ANY` stands for in API Gateway, so
    # even a path served for other methods cannot answer them with the 405 below.
    request = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()

    status, headers, body = _raw(product_gateway, request)

    # What API Gateway answers from the template: MISSING_AUTHENTICATION_TOKEN's gateway response
    assert status == 404, body[:200]
    assert headers["content-type"] == PROBLEM
    assert json.loads(body)["code"] == "route_not_found"


@pytest.mark.parametrize(
    ("method", "path", "allow", "admin"),
    [
        # resources with explicit methods: the template's MOCK ANY method, no credential needed
        ("PATCH", "/api/v1/gateway/health", "GET", False),
        ("DELETE", "/api/v1/gateway/health", "GET", False),
        ("POST", "/api/v1/gateway/health", "GET", False),
        ("GET", "/oauth2/token", "POST", False),
        ("PATCH", "/api/v1/clients", "GET", False),
        ("DELETE", "/api/v1/gateway/ip-denylist", "GET, PUT", False),
        # below a greedy admin resource: the management function, behind the admin authorizer
        ("PATCH", "/api/v1/clients/c-405-probe", "GET, PUT, DELETE", True),
        ("GET", "/api/v1/clients/c-405-probe/suspend", "POST", True),
    ],
)
def test_a_method_a_known_path_does_not_serve_is_a_405_problem_with_allow(
    product_gateway: RunningGateway, method: str, path: str, allow: str, admin: bool
) -> None:
    headers = {"x-api-key": ADMIN_KEY} if admin else {}
    with product_gateway.client(headers=headers) as http:
        response = http.request(method, path, content=b'{"any": "body"}', headers={"Content-Type": "text/plain"})
        head = http.head(path)

    assert response.status_code == 405, response.text[:300]
    assert response.headers["allow"] == allow
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "urn:gateway:problem:method_not_allowed"
    assert problem["code"] == "method_not_allowed"
    assert problem["status"] == 405
    assert problem["title"] == "Method Not Allowed"
    assert allow in problem["detail"]
    assert problem["request_id"] == response.headers["x-amzn-requestid"]
    # HEAD is a method of its own in API Gateway (no resource defines it): 405 too, without a body
    assert head.status_code == 405
    assert head.headers["allow"] == allow
    assert head.content == b""


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_any_method_on_an_unknown_path_stays_404(product_gateway: RunningGateway, method: str) -> None:
    with product_gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        outside = http.request(method, "/api/v1/nowhere")
        below_admin = http.request(method, "/api/v1/clients/c-405-probe/nowhere")

    for response in (outside, below_admin):
        assert response.status_code == 404, response.text[:300]
        assert "allow" not in response.headers
        assert response.json()["code"] == "route_not_found"
