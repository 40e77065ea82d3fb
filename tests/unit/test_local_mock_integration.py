"""MOCK integrations in the local API Gateway (infra/local/apigateway.py): the template's 405
methods (infra/constructs/api.py `method_not_allowed_integration`, synthesized here) answer as
API Gateway answers them, and the parser refuses what the twin would not answer faithfully."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_apigateway as apigw

from infra.constructs.api import CorsSettings, method_not_allowed_integration
from infra.local.api_model import ApiModel, Method, ResourceNode, mock_integration
from infra.local.apigateway import HttpRequest, HttpResponse, RestApiDataPlane

PROBLEM = "application/problem+json"


def _synthesized(allow: str, cors: CorsSettings | None = None) -> dict[str, Any]:
    """The properties of an ANY method the construct builds, as the template holds them."""
    app = App()
    stack = Stack(app, "Mock")
    api = apigw.RestApi(stack, "Api", binary_media_types=["*/*"])
    integration, responses = method_not_allowed_integration(allow, cors)
    api.root.add_resource("items").add_method("ANY", integration, method_responses=responses)
    template = app.synth().get_stack_by_name("Mock").template
    (props,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Method"]
    return dict(props)


@pytest.fixture(scope="module")
def refusal() -> dict[str, Any]:
    return _synthesized("GET")


class _Lambdas:
    def __init__(self) -> None:
        self.invoked: list[str] = []

    def invoke(self, name: str, event: dict[str, Any], timeout: float | None = None) -> Any:
        self.invoked.append(event["httpMethod"])
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


def _plane(any_props: dict[str, Any], lambdas: _Lambdas) -> RestApiDataPlane:
    get = Method("GET", "/items", "items", "NONE", None, "AWS_PROXY", "function")
    refuse = Method("ANY", "/items", "items", "NONE", None, "MOCK", None, mock_integration(any_props))
    items = ResourceNode("items", "/items", "items", methods={"GET": get, "ANY": refuse})
    api = ApiModel("abc123", "test", ResourceNode("", "/", "root", children=[items]), gateway_responses={})
    return RestApiDataPlane(api, cast(Any, lambdas), "127.0.0.1:8080")


def _headers(response: HttpResponse) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers}


@pytest.mark.parametrize(
    ("method", "headers", "body"),
    [
        ("PATCH", [("Content-Type", "application/json")], b'{"statusCode": 200}'),
        ("PUT", [("Content-Type", "text/plain")], b'{"statusCode": 200}'),  # passed through
        ("POST", [("Content-Type", "application/octet-stream")], b"\xff\x00\xfe"),
        ("DELETE", [("Accept", "application/xml")], b""),
        ("HEAD", [], b""),
        ("OPTIONS", [], b""),
    ],
)
def test_the_405_method_answers_every_other_method_with_allow_and_a_problem(
    refusal: dict[str, Any], method: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    lambdas = _Lambdas()
    plane = _plane(refusal, lambdas)

    response = plane.handle(HttpRequest(method, "/items", headers, body, "127.0.0.1"))

    assert response.status == 405
    found = _headers(response)
    assert found["allow"] == "GET"
    assert found["content-type"] == PROBLEM
    problem = json.loads(response.body)
    assert problem["code"] == "method_not_allowed"
    assert problem["status"] == 405
    assert problem["request_id"] == found["x-amzn-requestid"]
    assert lambdas.invoked == []


def test_the_explicit_method_still_wins_over_any(refusal: dict[str, Any]) -> None:
    lambdas = _Lambdas()

    response = _plane(refusal, lambdas).handle(HttpRequest("GET", "/items", [], b"", "127.0.0.1"))

    assert response.status == 200
    assert lambdas.invoked == ["GET"]


def test_a_single_cors_origin_rides_on_the_405() -> None:
    props = _synthesized("GET, OPTIONS", CorsSettings(allow_origins=("https://app.bank.example",)))

    response = _plane(props, _Lambdas()).handle(HttpRequest("PATCH", "/items", [], b"", "127.0.0.1"))

    found = _headers(response)
    assert found["allow"] == "GET, OPTIONS"
    assert found["access-control-allow-origin"] == "https://app.bank.example"
    assert found["vary"] == "Origin"


def _hand_written(**integration: Any) -> dict[str, Any]:
    responses = integration.pop("responses")
    return {
        "HttpMethod": "ANY",
        "Integration": {"Type": "MOCK", "IntegrationResponses": responses, **integration},
        "MethodResponses": [
            {"StatusCode": r["StatusCode"], "ResponseParameters": {"method.response.header.X-Seen": True}}
            for r in responses
        ],
    }


def test_the_integration_response_is_chosen_by_the_status_the_request_template_gives() -> None:
    props = _hand_written(
        RequestTemplates={"application/json": '{"statusCode": 503}'},
        responses=[
            {"StatusCode": "200", "ResponseTemplates": {"application/json": '{"ok":true}'}},
            {
                "StatusCode": "503",
                "SelectionPattern": "5\\d{2}",
                "ResponseParameters": {"method.response.header.X-Seen": "context.httpMethod"},
                "ResponseTemplates": {"application/json": '{"path":"$context.resourcePath","gone":"$context.nothing"}'},
            },
        ],
    )

    response = _plane(props, _Lambdas()).handle(HttpRequest("PUT", "/items", [], b"", "127.0.0.1"))

    assert response.status == 503
    assert _headers(response)["x-seen"] == "PUT"
    assert json.loads(response.body) == {"path": "/items", "gone": ""}  # unset variables render empty


def test_no_matching_and_no_default_integration_response_is_a_configuration_error() -> None:
    props = _hand_written(
        RequestTemplates={"application/json": '{"statusCode": 200}'},
        responses=[{"StatusCode": "500", "SelectionPattern": "5\\d{2}"}],
    )

    response = _plane(props, _Lambdas()).handle(HttpRequest("PUT", "/items", [], b"", "127.0.0.1"))

    assert response.status == 500


def test_passthrough_never_refuses_a_content_type_without_a_template() -> None:
    props = _hand_written(
        RequestTemplates={"application/json": '{"statusCode": 200}'},
        PassthroughBehavior="NEVER",
        responses=[{"StatusCode": "200"}],
    )
    plane = _plane(props, _Lambdas())

    refused = plane.handle(HttpRequest("PUT", "/items", [("Content-Type", "text/plain")], b"x", "127.0.0.1"))
    served = plane.handle(HttpRequest("PUT", "/items", [], b"", "127.0.0.1"))

    assert refused.status == 415
    assert served.status == 200


@pytest.mark.parametrize(
    ("change", "refusal_text"),
    [
        ({"RequestTemplates": {"application/json": '#if(1) {"statusCode": 200} #end'}}, "request templates"),
        ({"RequestTemplates": {"application/json": '{"statusCode": $input.json("$.s")}'}}, "request templates"),
        ({"ContentHandling": "CONVERT_TO_BINARY"}, "ContentHandling"),
        ({"RequestParameters": {"integration.request.header.x": "'1'"}}, "RequestParameters"),
    ],
)
def test_the_parser_refuses_mock_features_the_twin_does_not_emulate(change: dict[str, Any], refusal_text: str) -> None:
    props = _hand_written(responses=[{"StatusCode": "200"}], **change)

    with pytest.raises(ValueError, match=refusal_text):
        mock_integration(props)


@pytest.mark.parametrize(
    ("response", "refusal_text"),
    [
        ({"StatusCode": "200", "ResponseTemplates": {"application/json": "$util.escapeJavaScript('x')"}}, "response"),
        (
            {"StatusCode": "200", "ResponseParameters": {"method.response.header.X-Seen": "integration.response.body"}},
            "only 'static'",
        ),
        ({"StatusCode": "200", "ResponseParameters": {"method.response.header.Undeclared": "'x'"}}, "not a header"),
    ],
)
def test_the_parser_refuses_response_mappings_it_cannot_serve(response: dict[str, Any], refusal_text: str) -> None:
    with pytest.raises(ValueError, match=refusal_text):
        mock_integration(_hand_written(responses=[response]))


def test_an_integration_response_needs_its_method_response() -> None:
    props = _hand_written(responses=[{"StatusCode": "200"}])
    props["MethodResponses"] = []

    with pytest.raises(ValueError, match="no method response"):
        mock_integration(props)
