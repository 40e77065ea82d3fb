"""Request bodies are validated strictly (a JSON `true` is not the integer 1, "5" is not 5), and
JSON's one number type is honoured where the schema asks for an integer (4.0 is 4), and only
there: a route's free-form body template keeps 100.0 as the admin wrote it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from functions.routes.api.client_models import ClientSecretRotate, KeyRotate
from functions.routes.api.gateways import CanaryIn, DeployIn
from functions.routes.logic.gateways import GatewaySpec
from functions.routes.logic.route_spec import RouteSpec
from gateway_core.json_numbers import integers_where_the_schema_says


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (DeployIn, {"canary_percent": False}),
        (CanaryIn, {"percent": True}),
        (KeyRotate, {"grace_seconds": "60"}),
        (ClientSecretRotate, {"grace_seconds": True}),
        (DeployIn, {"canary_percent": 10.5}),
    ],
)
def test_a_value_of_another_json_type_is_refused(model: type[BaseModel], body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(integers_where_the_schema_says(body, model))


def test_an_integral_number_is_an_integer_where_the_schema_asks_for_one() -> None:
    body = {"name": "g", "retry": {"max_attempts": 4.0, "initial_delay": 1.0, "multiplier": 2.0}}
    taken = integers_where_the_schema_says(body, GatewaySpec)
    assert taken["retry"] == {"max_attempts": 4, "initial_delay": 1.0, "multiplier": 2.0}
    assert type(taken["retry"]["max_attempts"]) is int
    assert type(taken["retry"]["initial_delay"]) is float
    assert GatewaySpec.model_validate(taken).retry.max_attempts == 4
    assert (
        DeployIn.model_validate(integers_where_the_schema_says({"canary_percent": 10.0}, DeployIn)).canary_percent == 10
    )


def test_a_free_form_member_keeps_its_numbers_as_written() -> None:
    spec = {
        "gateway_id": "gw_1",
        "name": "r",
        "method": "POST",
        "path": "/pay",
        "targets": [{"url": "https://bank.example", "weight": 2.0}],
        "request_transform": {"body": {"amount": 100.0, "fee": -0.0}},
    }
    taken = integers_where_the_schema_says(spec, RouteSpec)
    assert taken["targets"][0]["weight"] == 2
    assert type(taken["targets"][0]["weight"]) is int
    assert taken["request_transform"]["body"] == {"amount": 100.0, "fee": -0.0}
    assert type(taken["request_transform"]["body"]["amount"]) is float
