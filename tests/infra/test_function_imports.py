"""Every function of the synthesized template imports its handler as Lambda would: in an isolated
interpreter whose path is only that function's code asset, its layers and the runtime's SDK (the
local twin's own worker, infra/local/worker.py). A package missing from the dependency layer, a
module left out of an asset, or an import of tests/ or infra/ fails here, not after a deploy."""

from __future__ import annotations

import ast
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from infra.app import STACK_NAME
from infra.config import FUNCTIONS_SRC, LAYER_SRC, local_deps_layer_dir
from infra.local.assembly import shipped_functions
from infra.local.lambdas import FunctionError, LambdaRuntime, LocalFunction, Worker
from tests.infra.template_guards import render

# Where the function would find AWS: nothing listens there, and nothing is called at import.
_AWS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-east-1"}


def _init(function: LocalFunction) -> float:
    runtime = LambdaRuntime(Path("unused"), {}, aws_environment=_AWS)
    worker = Worker(function, runtime.environment(function))
    try:
        return worker.initialize()
    finally:
        worker.kill()
        runtime.shutdown()


@pytest.fixture(scope="module")
def functions(template_json: dict[str, Any], assembly_dir: Path) -> list[LocalFunction]:
    found = shipped_functions(template_json, assembly_dir, STACK_NAME, lambda v: render(v, template_json))
    assert found
    return found


def test_every_shipped_handler_imports_from_its_own_assets_and_layers_alone(functions: list[LocalFunction]) -> None:
    failures = {}
    for function in functions:
        try:
            _init(function)
        except FunctionError as error:
            failures[function.name] = error.payload["errorMessage"]
    assert failures == {}


def test_a_package_missing_from_the_layer_fails_the_import_and_names_the_module(
    functions: list[LocalFunction], tmp_path: Path
) -> None:
    # The dependency layer without PyJWT: every entry but `jwt` linked into a new layer.
    layer = tmp_path / "python"
    layer.mkdir()
    for entry in (local_deps_layer_dir() / "python").iterdir():
        if entry.name != "jwt":
            os.symlink(entry, layer / entry.name)
    jwt_authorizer = next(f for f in functions if "JwtAuthorizer" in f.name)
    deps = local_deps_layer_dir() / "python"
    jwt_authorizer.layer_dirs = [layer if d == deps else d for d in jwt_authorizer.layer_dirs]
    with pytest.raises(FunctionError) as failed:
        _init(jwt_authorizer)
    assert failed.value.payload["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'jwt'" in failed.value.payload["errorMessage"]


def test_the_management_function_serves_the_webhooks_operations_from_its_own_asset(
    functions: list[LocalFunction],
) -> None:
    # The document's webhooks part is a generated file beside docs.py, not an import of the
    # webhooks routers (absent from this asset): it must be staged with the code.
    (management,) = [f for f in functions if f.handler == "functions.routes.management_handler.lambda_handler"]
    assert not (management.code_dir / "functions" / "webhooks").exists()
    runtime = LambdaRuntime(Path("unused"), {}, aws_environment=_AWS)
    worker = Worker(management, runtime.environment(management))
    try:
        worker.initialize()
        reply = worker.call(_document_request(), "docs-1", time.monotonic() + 60)
    finally:
        worker.kill()
        runtime.shutdown()
    assert reply["type"] == "result", reply
    assert reply["result"]["statusCode"] == 200, reply["result"]["body"][:500]
    paths = json.loads(reply["result"]["body"])["paths"]
    webhooks = json.loads((FUNCTIONS_SRC / "routes" / "api" / "openapi_webhooks.json").read_text(encoding="utf-8"))
    assert set(webhooks["paths"]) <= set(paths)
    assert "/api/v1/webhooks/{endpoint_id}" in paths


def _document_request() -> dict[str, Any]:
    context = {"stage": "prod", "path": "/prod/api/v1/docs", "requestId": "docs-1", "httpMethod": "GET"}
    return {
        "resource": "/api/v1/docs",
        "path": "/api/v1/docs",
        "httpMethod": "GET",
        "headers": {"Accept": "application/json"},
        "multiValueHeaders": {"Accept": ["application/json"]},
        "queryStringParameters": {"format": "json"},
        "multiValueQueryStringParameters": {"format": ["json"]},
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {**context, "identity": {"sourceIp": "127.0.0.1"}},
        "body": None,
        "isBase64Encoded": False,
    }


def _imported_top_levels(root: Path) -> set[str]:
    names: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_function_and_layer_code_never_imports_tests_or_infra() -> None:
    for root in (FUNCTIONS_SRC, LAYER_SRC):
        assert _imported_top_levels(root) & {"tests", "infra"} == set(), root
