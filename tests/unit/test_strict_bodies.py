"""Request bodies are validated strictly (a JSON `true` is not the integer 1, "5" is not 5), and
JSON's one number type is honoured (4.0 is the integer 4, as JSON Schema says)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from functions.routes.api.client_models import ClientSecretRotate, KeyRotate
from functions.routes.api.gateways import CanaryIn, DeployIn
from gateway_core.http import integral_numbers


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
        model.model_validate(integral_numbers(body))


def test_an_integral_number_is_an_integer_and_a_float_member_takes_it() -> None:
    assert integral_numbers({"a": [4.0, 4.5, True, "4.0"], "b": {"c": -0.0}}) == {
        "a": [4, 4.5, True, "4.0"],
        "b": {"c": 0},
    }
    assert DeployIn.model_validate(integral_numbers({"canary_percent": 10.0})).canary_percent == 10
