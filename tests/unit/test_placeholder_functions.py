"""The functions without an API yet answer anything with the API's 404 problem, cheaply."""

from __future__ import annotations

import importlib
import json

import pytest

from tests.integration.helpers import FakeLambdaContext, proxy_event


@pytest.mark.parametrize("folder", ["integrations", "marketdata"])
def test_a_function_without_routes_answers_a_route_not_found_problem(folder: str) -> None:
    handler = importlib.import_module(f"functions.{folder}.handler")

    result = handler.lambda_handler(proxy_event("GET", f"/api/v1/{folder}", request_id="req-p"), FakeLambdaContext())

    assert result["statusCode"] == 404
    assert result["headers"]["Content-Type"] == "application/problem+json"
    problem = json.loads(result["body"])
    assert (problem["code"], problem["request_id"], problem["instance"]) == (
        "route_not_found",
        "req-p",
        f"/api/v1/{folder}",
    )
