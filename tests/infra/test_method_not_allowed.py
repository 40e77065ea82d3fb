"""405 Method Not Allowed in the template: every resource with explicit methods has an `ANY`
method with a MOCK integration answering 405, `Allow` naming exactly the methods the resource
defines, and a problem document; API Gateway prefers an explicit method over `ANY`, so only the
others reach it. Resources served by `ANY` already (the greedy admin resources, /gw) have none:
their function answers 405 itself (tests/integration/test_method_not_allowed.py). The local
runtime serves these MOCK methods from the same template and refuses any MOCK feature it does not
emulate; the last test holds it to this template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.constructs.api import METHOD_ORDER
from infra.local.api_model import mock_integration
from tests.infra.template_guards import resources
from tests.infra.test_template import _synth

PROBLEM = "application/problem+json"


def _by_resource(template: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Resource reference -> HTTP method -> the method's properties."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for method in resources(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        found.setdefault(json.dumps(props["ResourceId"]), {})[props["HttpMethod"]] = props
    return found


def _response(props: dict[str, Any]) -> dict[str, Any]:
    (response,) = props["Integration"]["IntegrationResponses"]
    return dict(response)


def test_every_resource_with_explicit_methods_answers_other_methods_with_405_and_allow(
    template_json: dict[str, Any],
) -> None:
    checked = 0
    for methods in _by_resource(template_json).values():
        explicit = [m for m, p in methods.items() if p["Integration"]["Type"] != "MOCK"]
        if "ANY" in explicit:
            # A greedy or catch-all resource: every method reaches its function, no MOCK beside it
            assert all(p["Integration"]["Type"] == "AWS_PROXY" for p in methods.values())
            continue
        refusal = methods["ANY"]
        assert refusal["Integration"]["Type"] == "MOCK"
        # Nothing runs, so nothing to authorize and no role to assume
        assert refusal["AuthorizationType"] == "NONE"
        assert "AuthorizerId" not in refusal
        assert "Credentials" not in refusal["Integration"]
        response = _response(refusal)
        # The default (and only) integration response: every request the mock sees is a 405
        assert response["StatusCode"] == "405"
        assert "SelectionPattern" not in response
        parameters = response["ResponseParameters"]
        assert parameters["method.response.header.Allow"] == "'{}'".format(
            ", ".join(m for m in METHOD_ORDER if m in explicit)
        )
        assert parameters["method.response.header.Content-Type"] == f"'{PROBLEM}'"
        (declared,) = refusal["MethodResponses"]
        assert declared["StatusCode"] == "405"
        assert set(declared["ResponseParameters"]) == set(parameters)
        # With `*/*` binary media types a MOCK fails (500) unless its payloads stay text
        assert refusal["Integration"]["ContentHandling"] == "CONVERT_TO_TEXT"
        assert response["ContentHandling"] == "CONVERT_TO_TEXT"
        (template_text,) = response["ResponseTemplates"].values()
        problem = json.loads(template_text.replace("$context.requestId", "r-1"))
        allow = parameters["method.response.header.Allow"].strip("'")
        assert problem == {
            "type": "urn:gateway:problem:method_not_allowed",
            "title": "Method Not Allowed",
            "status": 405,
            "detail": f"This path does not serve this method; it serves {allow}.",
            "code": "method_not_allowed",
            "request_id": "r-1",
        }
        checked += 1
    # health, docs, token, JWKS, discovery, whoami x3, clients, audit, keys, denylist, issuers,
    # routes, gateways, batch
    assert checked == 20


def test_the_greedy_admin_resources_and_the_proxy_keep_their_any_method(template_json: dict[str, Any]) -> None:
    methods = resources(template_json, "AWS::ApiGateway::Method")
    greedy = [p["Properties"] for k, p in methods.items() if "proxy" in k.lower() and "ANY" in k]
    assert len(greedy) == 7  # clients, keys, issuers, routes, gateways, webhooks, /gw
    for props in greedy:
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert props["AuthorizationType"] == "CUSTOM"


def test_with_cors_the_405_lists_the_preflight_and_carries_a_single_origin(tmp_path: Path) -> None:
    one = _by_resource(_synth({"corsAllowOrigins": "https://app.bank.example"}, tmp_path / "one"))
    several = _by_resource(
        _synth({"corsAllowOrigins": "https://app.bank.example,https://ops.bank.example"}, tmp_path / "several")
    )

    def refusals(template: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, str]]:
        return [
            _response(methods["ANY"])["ResponseParameters"]
            for methods in template.values()
            if methods.get("ANY", {}).get("Integration", {}).get("Type") == "MOCK"
        ]

    assert len(refusals(one)) == len(refusals(several)) == 20
    for parameters in refusals(one):
        # The preflight is served (OPTIONS methods), so Allow names it
        assert parameters["method.response.header.Allow"].strip("'").endswith(", OPTIONS")
        assert parameters["method.response.header.Access-Control-Allow-Origin"] == "'https://app.bank.example'"
        assert parameters["method.response.header.Vary"] == "'Origin'"
    # A MOCK response cannot read the request's Origin, so several origins get no CORS headers
    for parameters in refusals(several):
        assert "method.response.header.Access-Control-Allow-Origin" not in parameters
        assert parameters["method.response.header.Allow"].strip("'").endswith(", OPTIONS")


def test_the_local_runtime_serves_every_mock_method_of_the_template(template_json: dict[str, Any]) -> None:
    # The twin refuses (ValueError) a MOCK feature it would not answer as API Gateway does.
    mocks = [
        m["Properties"]
        for m in resources(template_json, "AWS::ApiGateway::Method").values()
        if m["Properties"]["Integration"]["Type"] == "MOCK"
    ]
    assert mocks
    for props in mocks:
        parsed = mock_integration(props)
        (response,) = parsed.responses
        assert response.status_code == "405"
        assert response.selection_pattern is None
        assert set(response.parameters) >= {"Allow", "Content-Type"}
