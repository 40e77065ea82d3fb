"""The OpenAPI document at /api/v1/docs describes the whole API, whichever function serves each
operation: the management function's own (from its routers), those of the data plane, OAuth2
and health functions (from the table they serve from, functions/routes/api/operations.py) and the
webhooks function's (from the fragment its routers generate, functions/routes/api/
openapi_webhooks.json; tests/integration/test_openapi_fragment.py keeps it current). Where API
Gateway sends each path is checked on the template (tests/infra/test_function_roles.py)."""

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
WEBHOOKS = {
    "/api/v1/docs/events": ["get"],
    "/api/v1/events/trigger": ["post"],
    "/api/v1/events/types": ["get"],
    "/api/v1/webhooks": ["get", "post"],
    "/api/v1/webhooks/dlq/redrive": ["post"],
    "/api/v1/webhooks/{endpoint_id}": ["delete", "get", "patch"],
    "/api/v1/webhooks/{endpoint_id}/deliveries": ["get"],
    "/api/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/attempts": ["get"],
    "/api/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay": ["post"],
    "/api/v1/webhooks/{endpoint_id}/enable": ["post"],
    "/api/v1/webhooks/{endpoint_id}/public-key": ["get"],
    "/api/v1/webhooks/{endpoint_id}/recover": ["post"],
    "/api/v1/webhooks/{endpoint_id}/rotate-secret": ["post"],
    "/api/v1/webhooks/{endpoint_id}/test": ["post"],
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
    assert described == {**MANAGEMENT, **SERVED_ELSEWHERE, **WEBHOOKS}
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


def test_the_document_passes_a_maintained_openapi_validator(document: dict[str, Any]) -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator

    validate(document, cls=OpenAPIV31SpecValidator)


def _resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    # The schema with the document's components beside it, for $refs to resolve.
    return {**schema, "components": document["components"]}


def test_every_request_body_has_an_example_its_schema_accepts(document: dict[str, Any]) -> None:
    import jsonschema

    seen = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue
            assert "example" in body, f"{method.upper()} {path} has no example"
            jsonschema.validate(body["example"], _resolved(document, body["schema"]))
            seen += 1
    assert seen >= 20


def test_every_error_is_a_problem_and_every_operation_names_its_success(document: dict[str, Any]) -> None:
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            assert {s for s in statuses if s.startswith("2")}, f"{method} {path}"
            assert {"429", "5XX"} <= statuses
            for status, answer in operation["responses"].items():
                if status.startswith("2"):
                    continue
                if status == "default":  # the data plane: the upstream's own answers
                    assert path == "/gw/{path}"
                    continue
                content = answer["content"]
                if status == "414":  # refused before the API: API Gateway's own body
                    assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/GatewayMessage"}}}
                elif path == "/oauth2/token" and status in ("400", "401"):
                    assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthErrorOut"}}}
                else:
                    assert content == {"application/problem+json": {"schema": problem}}, f"{method} {path} {status}"
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_creates_deletes_and_changes_say_what_they_really_answer(document: dict[str, Any]) -> None:
    paths = document["paths"]
    create = paths["/api/v1/gateway/keys"]["post"]["responses"]
    assert set(create["201"]["headers"]) >= {"Location", "Cache-Control"}
    assert create["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/KeyWithSecret"}
    assert "200" not in create
    delete = paths["/api/v1/gateways/{gateway_id}"]["delete"]["responses"]
    assert delete["204"] == {"description": "No content"}
    gateway = paths["/api/v1/gateways/{gateway_id}"]["get"]["responses"]["200"]
    assert gateway["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Gateway"}
    assert "ETag" in gateway["headers"]
    put = paths["/api/v1/gateways/{gateway_id}"]["put"]
    assert {"412", "428"} <= set(put["responses"])
    assert {"name": "If-Match", "in": "header"}.items() <= put["parameters"][-1].items()
    token = paths["/oauth2/token"]["post"]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]
    assert token["security"] == []


def test_webhooks_operations_say_what_the_webhooks_function_answers(document: dict[str, Any]) -> None:
    paths = document["paths"]
    schema = "#/components/schemas/{}".format
    create = paths["/api/v1/webhooks"]["post"]
    assert set(create["responses"]) >= {"201", "403", "422"}
    assert "200" not in create["responses"]
    created = create["responses"]["201"]
    assert created["content"]["application/json"]["schema"] == {"$ref": schema("EndpointCreated")}
    assert set(created["headers"]) == {"Location", "Cache-Control", "ETag"}
    assert create["security"] == [{"apiKey": []}, {"oauth2": ["admin", "webhooks:write"]}]
    patch = paths["/api/v1/webhooks/{endpoint_id}"]["patch"]
    assert {"409", "412", "428"} <= set(patch["responses"])
    assert {"name": "If-Match", "required": True}.items() <= patch["parameters"][-1].items()
    assert paths["/api/v1/webhooks/{endpoint_id}"]["delete"]["responses"]["204"] == {"description": "No content"}
    read = paths["/api/v1/webhooks/{endpoint_id}"]["get"]
    assert read["security"] == [{"apiKey": []}, {"oauth2": ["admin", "webhooks:read"]}]
    assert "ETag" in read["responses"]["200"]["headers"]
    replay = paths["/api/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay"]["post"]["responses"]
    assert replay["202"]["content"]["application/json"]["schema"] == {"$ref": schema("DeliveryOut")}
    assert {"404", "409"} <= set(replay)
    assert "200" not in replay
    rotate = paths["/api/v1/webhooks/{endpoint_id}/rotate-secret"]["post"]["responses"]["200"]
    assert set(rotate["headers"]) == {"Cache-Control", "ETag"}  # the new version, for the next PATCH
    trigger = paths["/api/v1/events/trigger"]["post"]
    assert "202" in trigger["responses"]
    assert trigger["security"] == [{"apiKey": []}, {"oauth2": ["admin", "events:write"]}]
    assert "events:write" in document["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["scopes"]
    assert paths["/api/v1/webhooks/dlq/redrive"]["post"]["security"][1] == {"oauth2": ["admin"]}
    assert paths["/api/v1/events/types"]["get"]["security"] == [{"apiKey": []}, {"oauth2": []}]


def test_security_schemes_let_swagger_ui_authorize_with_a_key_or_client_credentials(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "apiKey", "in": "header", "name": "x-api-key"}
    flow = schemes["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == document["servers"][0]["url"].rstrip("/") + "/oauth2/token"
    assert "admin" in flow["scopes"]
    assert schemes["mutualTLS"]["type"] == "mutualTLS"
    keys = document["paths"]["/api/v1/gateway/keys"]["get"]
    assert keys["security"] == [{"apiKey": []}, {"oauth2": ["admin"]}]
    gateways = document["paths"]["/api/v1/gateways"]["get"]
    assert gateways["security"] == [{"apiKey": []}, {"oauth2": ["admin", "gateway:read"]}]
    assert document["paths"]["/api/v1/whoami/certificate"]["get"]["security"] == [{"mutualTLS": []}]
    assert {} in document["paths"]["/gw/{path}"]["get"]["security"]
