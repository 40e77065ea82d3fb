"""The REST API as the template defines it: resources, methods, authorizers, gateway responses.

Read from the synthesized template (the single source of truth) and resolved against the
deployed stack for physical names, so the data plane serves exactly what `cdk deploy` ships.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from infra.local.moto_host import ACCOUNT_ID, REGION, DeployedStack, resolve_properties


@dataclass(frozen=True)
class Authorizer:
    logical_id: str
    kind: str  # TOKEN or REQUEST
    function: str  # physical function name
    identity_sources: tuple[str, ...]
    ttl_seconds: int
    validation_expression: str | None


@dataclass(frozen=True)
class IntegrationResponse:
    status_code: str
    selection_pattern: str | None  # None: the default response
    parameters: dict[str, str]  # header name -> 'static' or context.<variable>
    templates: dict[str, str]  # content type -> template ($context variables only)


@dataclass(frozen=True)
class MockIntegration:
    request_templates: dict[str, str]
    passthrough_behavior: str
    responses: tuple[IntegrationResponse, ...]


@dataclass(frozen=True)
class Method:
    http_method: str
    resource_path: str
    resource_id: str
    authorization_type: str
    authorizer: Authorizer | None
    integration_type: str
    function: str | None
    mock: MockIntegration | None = None


@dataclass
class ResourceNode:
    path_part: str
    path: str
    resource_id: str
    children: list[ResourceNode] = field(default_factory=list)
    methods: dict[str, Method] = field(default_factory=dict)


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None
    templates: dict[str, str]
    headers: dict[str, str]


@dataclass
class ApiModel:
    api_id: str
    stage: str
    root: ResourceNode
    gateway_responses: dict[str, GatewayResponse]
    binary_media_types: tuple[str, ...] = ()

    def method_arn(self, http_method: str, path: str) -> str:
        return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{self.api_id}/{self.stage}/{http_method}{path}"


def _ref(value: Any) -> str | None:
    return value.get("Ref") if isinstance(value, dict) else None


def _function_in(value: Any, functions: set[str]) -> str | None:
    """The Lambda function logical id a (Join/Sub) integration URI points at."""
    if isinstance(value, dict):
        get_att = value.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att and get_att[0] in functions:
            return str(get_att[0])
        for inner in value.values():
            found = _function_in(inner, functions)
            if found:
                return found
    if isinstance(value, list):
        for inner in value:
            found = _function_in(inner, functions)
            if found:
                return found
    return None


# What the twin's MOCK integrations evaluate in a template: `$context.<variable>` references. VTL
# directives (#if, #set), $input, $util, ${formal} references and the like are not emulated.
_CONTEXT_REFERENCE = re.compile(r"\$context\.[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")
_STATIC = re.compile(r"'[^']*'")
_CONTEXT_SOURCE = re.compile(r"context\.[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")


def _plain_template(template: str) -> bool:
    rest = _CONTEXT_REFERENCE.sub("", template)
    return "$" not in rest and "#" not in rest


def mock_integration(method_props: dict[str, Any]) -> MockIntegration:
    """A MOCK method's integration as the twin serves it, or ValueError naming what it would not
    serve as API Gateway does, so the runtime refuses a template it would answer differently
    (tests/infra/test_method_not_allowed.py runs this on the product's template)."""
    integration = method_props.get("Integration") or {}
    where = f"{method_props.get('HttpMethod')} MOCK method"
    for unsupported in ("RequestParameters", "CacheKeyParameters", "TimeoutInMillis"):
        if integration.get(unsupported):
            raise ValueError(f"{where}: {unsupported} is not emulated locally")
    # Text in, text out: the only conversion a mock's empty payload and static templates need.
    if integration.get("ContentHandling") not in (None, "CONVERT_TO_TEXT"):
        raise ValueError(f"{where}: ContentHandling {integration.get('ContentHandling')} is not emulated locally")
    request_templates = {str(k).lower(): str(v) for k, v in (integration.get("RequestTemplates") or {}).items()}
    if not all(_plain_template(t) for t in request_templates.values()):
        raise ValueError(f"{where}: request templates may only use $context variables locally")
    declared = {
        str(r["StatusCode"]): {
            str(k).removeprefix("method.response.header.") for k in r.get("ResponseParameters") or {}
        }
        for r in method_props.get("MethodResponses") or []
    }
    responses = []
    for response in integration.get("IntegrationResponses") or []:
        status = str(response["StatusCode"])
        if status not in declared:
            # API Gateway refuses an integration response without its method response.
            raise ValueError(f"{where}: integration response {status} has no method response")
        if response.get("ContentHandling") not in (None, "CONVERT_TO_TEXT"):
            raise ValueError(f"{where}: ContentHandling {response.get('ContentHandling')} is not emulated locally")
        parameters: dict[str, str] = {}
        for key, source in (response.get("ResponseParameters") or {}).items():
            name = str(key).removeprefix("method.response.header.")
            if name == key or name not in declared[status]:
                raise ValueError(f"{where}: {key} is not a header of method response {status}")
            if not (_STATIC.fullmatch(str(source)) or _CONTEXT_SOURCE.fullmatch(str(source))):
                # A mock has no integration response headers or body to map from.
                raise ValueError(f"{where}: {key} maps {source}; only 'static' and context values run locally")
            parameters[name] = str(source)
        templates = {str(k).lower(): str(v) for k, v in (response.get("ResponseTemplates") or {}).items()}
        if not all(_plain_template(t) for t in templates.values()):
            raise ValueError(f"{where}: response templates may only use $context variables locally")
        pattern = response.get("SelectionPattern")
        responses.append(IntegrationResponse(status, str(pattern) if pattern else None, parameters, templates))
    return MockIntegration(
        request_templates=request_templates,
        passthrough_behavior=str(integration.get("PassthroughBehavior", "WHEN_NO_MATCH")),
        responses=tuple(responses),
    )


def load_api(deployed: DeployedStack) -> ApiModel | None:
    resources: dict[str, Any] = deployed.template.get("Resources", {})
    apis = [k for k, v in resources.items() if v["Type"] == "AWS::ApiGateway::RestApi"]
    if not apis:
        return None
    api_logical = apis[0]
    functions = {k for k, v in resources.items() if v["Type"] == "AWS::Lambda::Function"}

    def of_type(kind: str) -> dict[str, Any]:
        return {
            k: v
            for k, v in resources.items()
            if v["Type"] == kind and _ref(v.get("Properties", {}).get("RestApiId")) == api_logical
        }

    stages = of_type("AWS::ApiGateway::Stage")
    stage = next((s["Properties"].get("StageName", "prod") for s in stages.values()), "prod")

    authorizers: dict[str, Authorizer] = {}
    for logical, resource in of_type("AWS::ApiGateway::Authorizer").items():
        props = resource["Properties"]
        function_logical = _function_in(props.get("AuthorizerUri"), functions)
        if function_logical is None:
            continue
        sources = tuple(s.strip() for s in str(props.get("IdentitySource", "")).split(",") if s.strip())
        authorizers[logical] = Authorizer(
            logical_id=logical,
            kind=str(props.get("Type", "TOKEN")),
            function=deployed.physical_id(function_logical),
            identity_sources=sources,
            ttl_seconds=int(props.get("AuthorizerResultTtlInSeconds", 300)),
            validation_expression=props.get("IdentityValidationExpression"),
        )

    root = ResourceNode("", "/", deployed.physical_id(api_logical))
    nodes: dict[str, ResourceNode] = {}
    pending = dict(of_type("AWS::ApiGateway::Resource"))

    def parent_node(props: dict[str, Any]) -> ResourceNode | None:
        parent = props.get("ParentId")
        if isinstance(parent, dict) and "Fn::GetAtt" in parent:
            return root
        return nodes.get(_ref(parent) or "")

    while pending:  # parents may come after children in the template
        progressed = False
        for logical, resource in list(pending.items()):
            props = resource["Properties"]
            parent = parent_node(props)
            if parent is None:
                continue
            part = str(props["PathPart"])
            path = ("" if parent.path == "/" else parent.path) + "/" + part
            node = ResourceNode(part, path, deployed.physical_ids.get(logical, logical))
            parent.children.append(node)
            nodes[logical] = node
            del pending[logical]
            progressed = True
        if not progressed:
            raise ValueError(f"resources without a parent: {sorted(pending)}")

    for resource in of_type("AWS::ApiGateway::Method").values():
        props = resource["Properties"]
        resource_ref = props.get("ResourceId")
        node = (
            root if isinstance(resource_ref, dict) and "Fn::GetAtt" in resource_ref else nodes[_ref(resource_ref) or ""]
        )
        integration = props.get("Integration", {})
        function_logical = _function_in(integration.get("Uri"), functions)
        authorizer_ref = _ref(props.get("AuthorizerId"))
        integration_type = str(integration.get("Type", "MOCK"))
        node.methods[str(props["HttpMethod"]).upper()] = Method(
            http_method=str(props["HttpMethod"]).upper(),
            resource_path=node.path,
            resource_id=node.resource_id,
            authorization_type=str(props.get("AuthorizationType", "NONE")),
            authorizer=authorizers.get(authorizer_ref) if authorizer_ref else None,
            integration_type=integration_type,
            function=deployed.physical_id(function_logical) if function_logical else None,
            mock=mock_integration(props) if integration_type == "MOCK" else None,
        )

    responses: dict[str, GatewayResponse] = {}
    for logical in of_type("AWS::ApiGateway::GatewayResponse"):
        props = resolve_properties(deployed.name, logical)
        # Values stay as API Gateway reads them: 'literal' or a mapping such as
        # method.request.header.origin, resolved per request by the data plane.
        headers = {
            key.removeprefix("gatewayresponse.header."): str(value)
            for key, value in (props.get("ResponseParameters") or {}).items()
        }
        status = props.get("StatusCode")
        responses[str(props["ResponseType"])] = GatewayResponse(
            status=int(status) if status else None,
            templates=dict(props.get("ResponseTemplates") or {}),
            headers=headers,
        )
    binary = tuple(str(t) for t in resources[api_logical].get("Properties", {}).get("BinaryMediaTypes") or ())
    return ApiModel(deployed.physical_id(api_logical), str(stage), root, responses, binary)


def match(root: ResourceNode, path: str) -> tuple[ResourceNode, dict[str, str]] | None:
    """API Gateway's precedence: a literal segment beats {param}, which beats {proxy+}."""
    segments = [s for s in path.split("/") if s != ""]

    def walk(node: ResourceNode, index: int) -> tuple[ResourceNode, dict[str, str]] | None:
        if index == len(segments):
            return node, {}
        segment = segments[index]
        ordered = sorted(
            node.children,
            key=lambda c: 2 if c.path_part.endswith("+}") else (1 if c.path_part.startswith("{") else 0),
        )
        for child in ordered:
            part = child.path_part
            if part.startswith("{") and part.endswith("+}"):
                return child, {part[1:-2]: "/".join(segments[index:])}
            if part.startswith("{") and part.endswith("}"):
                found = walk(child, index + 1)
                if found:
                    node_found, params = found
                    return node_found, {part[1:-1]: segment, **params}
            elif part == segment:
                found = walk(child, index + 1)
                if found:
                    return found
        return None

    return walk(root, 0)
