"""The OpenAPI document at /api/v1/docs describes the whole API, whichever function serves each
operation: the management function's own (from its routers) and those of the data plane, OAuth2
and health functions (from the table they serve from, functions/routes/api/operations.py). Where
API Gateway sends each path is checked on the template (tests/infra/test_function_roles.py)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from functions.routes.api.operations import OPERATIONS
from tests.integration.helpers import FakeLambdaContext, proxy_event, response_header

MANAGEMENT = {
    "/api/v1/audit/events": ["get"],
    "/api/v1/clients": ["get"],
    "/api/v1/clients/register": ["post"],
    "/api/v1/clients/{client_id}": ["delete", "get", "put"],
    "/api/v1/clients/{client_id}/certificates": ["get", "post"],
    "/api/v1/clients/{client_id}/certificates/{fingerprint}": ["delete"],
    "/api/v1/clients/{client_id}/reactivate": ["post"],
    "/api/v1/clients/{client_id}/secret": ["post"],
    "/api/v1/clients/{client_id}/suspend": ["post"],
    "/api/v1/gateway/ip-denylist": ["get", "put"],
    "/api/v1/gateway/issuers": ["get", "post"],
    "/api/v1/gateway/issuers/{issuer_id}": ["delete", "get", "patch"],
    "/api/v1/gateway/keys": ["get", "post"],
    "/api/v1/gateway/keys/{key_id}": ["delete", "get", "put"],
    "/api/v1/gateway/keys/{key_id}/rotate": ["post"],
    "/api/v1/gateway/routes": ["get", "post"],
    "/api/v1/gateway/routes/{route_id}": ["delete", "get", "put"],
    "/api/v1/gateways": ["get", "post"],
    "/api/v1/gateways/{gateway_id}": ["delete", "get", "put"],
    "/api/v1/gateways/{gateway_id}/activate": ["post"],
    "/api/v1/gateways/{gateway_id}/canary": ["put"],
    "/api/v1/gateways/{gateway_id}/deploy": ["post"],
    "/api/v1/gateways/{gateway_id}/promote": ["post"],
    "/api/v1/gateways/{gateway_id}/rollback": ["post"],
    "/api/v1/gateways/{gateway_id}/secrets": ["get"],
    "/api/v1/gateways/{gateway_id}/secrets/{name}": ["delete", "get", "put"],
    "/api/v1/gateways/{gateway_id}/versions": ["get"],
    "/api/v1/gateways/{gateway_id}/versions/{version}": ["get"],
    "/api/v1/whoami": ["get"],
    "/api/v1/whoami/certificate": ["get"],
    "/api/v1/whoami/token": ["get"],
}
SERVED_ELSEWHERE = {
    "/api/v1/batch": ["post"],
    "/gw/{path}": ["delete", "get", "patch", "post", "put"],
    "/oauth2/token": ["post"],
    "/.well-known/jwks.json": ["get"],
    "/.well-known/openid-configuration": ["get"],
    "/api/v1/gateway/health": ["get"],
}


@pytest.fixture
def document(aws: None) -> dict[str, Any]:
    from functions.routes.management_handler import lambda_handler

    handler: Any = lambda_handler  # takes Lambda's context; the fake has its fields
    event = proxy_event("GET", "/api/v1/docs")
    event["queryStringParameters"] = {"format": "json"}
    event["multiValueQueryStringParameters"] = {"format": ["json"]}
    response = handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200
    found: dict[str, Any] = json.loads(response["body"])
    return found


def test_every_operation_of_the_api_is_described_once(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    described = {path: sorted(item) for path, item in document["paths"].items()}
    assert described == {**MANAGEMENT, **SERVED_ELSEWHERE}
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"]} if isinstance(value.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value))
    return set()


def test_every_schema_the_document_refers_to_is_in_it(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert {r.removeprefix("#/components/schemas/") for r in _refs(document)} <= set(schemas)


def test_operations_served_elsewhere_are_described_with_the_models_their_functions_use(
    document: dict[str, Any],
) -> None:
    batch = document["paths"]["/api/v1/batch"]["post"]
    assert batch["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/BatchIn"}
    assert document["components"]["schemas"]["BatchIn"]["properties"]["requests"]["maxItems"] == 25
    health = document["paths"]["/api/v1/gateway/health"]["get"]
    assert health["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HealthOut"
    }
    for operation in OPERATIONS:
        for reference in (operation.body, operation.answer):
            if reference:
                module, _, name = reference.partition(":")
                assert hasattr(importlib.import_module(module), name)
                assert name in document["components"]["schemas"]


@pytest.mark.parametrize("function", ["proxy", "oauth", "health"])
def test_each_function_serves_exactly_the_operations_declared_for_it(function: str) -> None:
    handler = importlib.import_module(f"functions.routes.{function}_handler")
    served = {(e.method, e.path, e.subtree) for e in handler.endpoints.endpoints}
    declared = {(o.method, o.path, o.subtree) for o in OPERATIONS if o.function == function}
    assert served == declared


def test_swagger_ui_shows_the_same_document(aws: None) -> None:
    from functions.routes.management_handler import lambda_handler

    handler: Any = lambda_handler
    response = handler(proxy_event("GET", "/api/v1/docs"), FakeLambdaContext())

    assert response["statusCode"] == 200
    assert response_header(response, "Content-Type") == "text/html"
    assert 'id="swagger-ui"' in response["body"]
    assert '"/oauth2/token"' in response["body"]


def test_the_management_function_loads_the_openapi_models_only_for_the_document() -> None:
    # A fresh interpreter, as a cold start; a third of the function's start is those models.
    code = "import sys, functions.routes.management_handler; print(sorted(sys.modules))"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "layers")])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120, cwd=root, env=env
    )
    for absent in ("aws_lambda_powertools.event_handler.openapi.models", "aws_xray_sdk", "httpx", "cryptography"):
        assert f"'{absent}'" not in done.stdout, f"{absent} is on the management function's import path"
