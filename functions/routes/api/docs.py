"""The OpenAPI 3.1 document served at /api/v1/docs, for the whole API.

The management function serves it, being the one function that carries the OpenAPI machinery:
its own operations come from its routers (powertools builds them from what each handler
validates), the operations the data plane, OAuth2 and health functions serve come from their
declarations (operations.py, the same table those functions serve from), and the webhooks
function's from the fragment its routers generate (openapi_webhooks.json, written by
functions/webhooks/openapi.py: this function's asset cannot import them). What no signature can
say (success statuses and headers, every error an operation returns, who may call it, examples)
comes from contract.py. A request for one of the other functions' paths never reaches this
function: API Gateway sends it to the function that serves it (infra/constructs/api.py;
tests/infra checks the wiring against this document).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from functions.routes.api.contract import CONTRACTS, ERRORS, GATEWAY_MESSAGES, HEADERS, PATH_PATTERNS, Contract
from functions.routes.api.operations import OPERATIONS, Operation
from functions.routes.logic.catalog import SCOPES

_REF_TEMPLATE = "#/components/schemas/{model}"
_PROBLEM = "functions.routes.api.models:Problem"
_OAUTH_ERROR = "functions.routes.api.models:OAuthErrorOut"
_GATEWAY_MESSAGE = "functions.routes.api.models:GatewayMessage"
_PROBLEM_JSON = "application/problem+json"
# How a greedy resource (`/gw/{proxy+}`) is described: OpenAPI has no "any method" nor "any depth".
_ANY_METHODS = ("get", "post", "put", "patch", "delete")
_SUBTREE_PARAMETER = {
    "name": "path",
    "in": "path",
    "required": True,
    "description": "The rest of the path, any number of segments",
    "schema": {"type": "string"},
}
# Powertools' own error models, replaced by the one Problem schema.
# What caller.if_match_version reads: a version, quoted or weak, or `*`.
_IF_MATCH = r'^\s*(\*|(W/)?("[0-9]{1,12}"|[0-9]{1,12}))\s*$'
_POWERTOOLS_ERRORS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
# Staged with this package (infra/build.py copies the folder whole; tests/infra checks the asset).
WEBHOOKS_FRAGMENT = Path(__file__).with_name("openapi_webhooks.json")


def _model(reference: str) -> type[BaseModel]:
    module, _, name = reference.partition(":")
    model = getattr(importlib.import_module(module), name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{reference} is not a pydantic model")
    return model


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _add_schemas(document: dict[str, Any], wanted: list[tuple[str, JsonSchemaMode]]) -> dict[tuple[str, str], Any]:
    """The $refs of the given models, their schemas added to the document's components. A schema
    name already in the document with another definition is an error, not an overwrite."""
    if not wanted:
        return {}
    models = [(_model(reference), mode) for reference, mode in wanted]
    refs, definitions = models_json_schema(models, ref_template=_REF_TEMPLATE)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in definitions.get("$defs", {}).items():
        # The resolver's schemas went through a dump without None values (`default: null`).
        if _without_nulls(schemas.setdefault(name, schema)) != _without_nulls(schema):
            raise ValueError(f"two different schemas are named {name}")
    return {
        (reference, mode): refs[(model, mode)] for (reference, mode), (model, _) in zip(wanted, models, strict=True)
    }


def _answer_schema(document: dict[str, Any], reference: str) -> dict[str, str]:
    """The $ref of an answer model. The resolver names a model used both in bodies and answers
    `<Name>-Output` in answers: a model it described already is referred to under its name."""
    name = reference.partition(":")[2]
    schemas = document["components"]["schemas"]
    for described in (f"{name}-Output", name):
        if described in schemas:
            return {"$ref": _REF_TEMPLATE.format(model=described)}
    return dict(_add_schemas(document, [(reference, "serialization")])[(reference, "serialization")])


def add_fragment(document: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    """`document` with another function's generated paths and schemas added: a path described
    already, or a schema name with another definition, is an error, not an overwrite."""
    paths = document.setdefault("paths", {})
    for path, item in fragment["paths"].items():
        if path in paths:
            raise ValueError(f"{path} is described twice")
        paths[path] = item
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in fragment.get("components", {}).get("schemas", {}).items():
        if _without_nulls(schemas.setdefault(name, schema)) != _without_nulls(schema):
            raise ValueError(f"two different schemas are named {name}")
    return document


def _operation_id(operation: Operation, path: str, method: str) -> str:
    return re.sub(r"\W+", "_", f"{operation.function}{path}_{method}").strip("_")


def add_operations(document: dict[str, Any], operations: Iterable[Operation]) -> dict[str, Any]:
    """`document` with the given operations and the schemas of their models added."""
    operations = list(operations)
    wanted: list[tuple[str, JsonSchemaMode]] = []
    for operation in operations:
        if operation.body:
            wanted.append((operation.body, "validation"))
        if operation.answer:
            wanted.append((operation.answer, "serialization"))
    refs = _add_schemas(document, wanted)
    paths = document.setdefault("paths", {})
    for operation in operations:
        item: dict[str, Any] = {"tags": [operation.tag], "summary": operation.summary}
        if operation.description:
            item["description"] = operation.description
        if operation.body:
            schema = refs[(operation.body, "validation")]
            item["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        elif operation.form:
            item["requestBody"] = {
                "required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": operation.form}},
            }
        answer: dict[str, Any] = {"description": operation.answer_description}
        if operation.answer:
            answer["content"] = {"application/json": {"schema": refs[(operation.answer, "serialization")]}}
        item["responses"] = {"200": answer}
        path = operation.path + "/{path}" if operation.subtree else operation.path
        methods = _ANY_METHODS if operation.method == "ANY" else (operation.method.lower(),)
        for method in methods:
            described = {**item, "operationId": _operation_id(operation, path, method)}
            if operation.subtree:
                described["parameters"] = [_SUBTREE_PARAMETER]
            if method in paths.get(path, {}):
                raise ValueError(f"{method.upper()} {path} is described twice")
            paths.setdefault(path, {})[method] = described
    return document


def _errors(operation: dict[str, Any], contract: Contract) -> set[int | str]:
    """The error statuses an operation of this shape can return (contract.py's docstring)."""
    found: set[int | str] = {429, "5XX", *contract.errors}
    if contract.schemes:
        found |= {401, 403}
    parameters = operation.get("parameters", [])
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        found |= {400, 413, 415, 422}
    elif "requestBody" in operation:  # the token endpoint's form: its errors are RFC 6749's 400s
        found |= {400, 413}
    if parameters:
        found.add(422)
    if any(p["in"] == "query" for p in parameters):
        found.add(414)
    if any(p["in"] == "path" for p in parameters):
        found.add(404)
    if contract.if_match:
        found |= {400, 412} | ({428} if contract.if_match in ("required", "when_exists") else set())
    return found


def _headers(names: Iterable[str]) -> dict[str, Any]:
    return {name: {"description": HEADERS[name], "schema": {"type": "string"}} for name in names}


def _security(contract: Contract) -> list[dict[str, list[str]]]:
    # Alternatives: any one suffices. OAuth2 lists the scopes (any one of them); an API key's or a
    # certificate's scopes are its client's, checked by the operation alike.
    required: list[dict[str, list[str]]] = [
        {name: list(contract.scopes) if name == "oauth2" else []} for name in contract.schemes
    ]
    return required + ([{}] if contract.anonymous else [])


def _security_schemes(base: str) -> dict[str, Any]:
    return {
        "apiKey": {
            "type": "apiKey",
            "in": "header",
            "name": "x-api-key",
            "description": "An API key issued by an admin (POST /api/v1/gateway/keys)",
        },
        "oauth2": {
            "type": "oauth2",
            "description": "An access token from the client credentials grant, sent as `Authorization: Bearer`",
            "flows": {"clientCredentials": {"tokenUrl": f"{base}/oauth2/token", "scopes": dict(SCOPES)}},
        },
        "mutualTLS": {
            "type": "mutualTLS",
            "description": "A client certificate registered for the client, on the mTLS domain",
        },
    }


def apply_contracts(document: dict[str, Any], base: str) -> dict[str, Any]:
    """Every operation answered as contract.py says: statuses, models, headers, errors as
    problem+json, security and examples. An operation without a contract is an error."""
    paths: dict[str, dict[str, Any]] = document["paths"]
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    refs = _add_schemas(
        document, [(_PROBLEM, "serialization"), (_OAUTH_ERROR, "serialization"), (_GATEWAY_MESSAGE, "serialization")]
    )
    for reference in {c.model for c in CONTRACTS.values() if c.model}:
        refs[(reference, "serialization")] = _answer_schema(document, reference)
    problem = {_PROBLEM_JSON: {"schema": refs[(_PROBLEM, "serialization")]}}
    message = {"application/json": {"schema": refs[(_GATEWAY_MESSAGE, "serialization")]}}
    described = set()
    for path, item in paths.items():
        for method, operation in item.items():
            key = f"{method.upper()} {path}"
            contract = CONTRACTS.get(key)
            if contract is None:
                raise ValueError(f"{key} has no contract (functions/routes/api/contract.py)")
            described.add(key)
            success = operation["responses"].get("200", {"description": "Successful Response"})
            if contract.model:
                success["content"] = {"application/json": {"schema": refs[(contract.model, "serialization")]}}
            if contract.empty_body:
                success = {"description": "No content"}
            if contract.headers:
                success["headers"] = _headers(contract.headers)
            responses: dict[str, Any] = {str(status): success for status in (contract.status, *contract.also)}
            for status in sorted(_errors(operation, contract), key=str):
                description, headers = ERRORS[status]
                answer: dict[str, Any] = {
                    "description": description,
                    "content": message if status in GATEWAY_MESSAGES else problem,
                }
                if headers:
                    answer["headers"] = _headers(headers)
                responses[str(status)] = answer
            if key == "POST /oauth2/token":  # RFC 6749 §5.2: its own error body
                oauth_error = {"application/json": {"schema": refs[(_OAUTH_ERROR, "serialization")]}}
                responses["400"] = {"description": "The request or grant is refused", "content": oauth_error}
                responses["401"] = {
                    "description": "The client could not be authenticated (`invalid_client`)",
                    "content": oauth_error,
                    "headers": _headers(("WWW-Authenticate",)),
                }
            if contract.passthrough:
                responses["default"] = {
                    "description": "The upstream's answer, passed through (any status and media type)",
                    "content": {"*/*": {"schema": {}}},
                }
            operation["responses"] = responses
            operation["security"] = _security(contract)
            if contract.if_match:
                operation.setdefault("parameters", []).append(
                    {
                        "name": "If-Match",
                        "in": "header",
                        "required": contract.if_match == "required",
                        "description": 'The ETag read by GET ("<n>"), or `*` to change whatever is current',
                        "schema": {"type": "string", "pattern": _IF_MATCH},
                    }
                )
            if contract.if_match == "when_exists":
                operation["parameters"].append(
                    {
                        "name": "If-None-Match",
                        "in": "header",
                        "required": False,
                        "description": "`*`: create only, 412 when it exists already (other values are not read)",
                        "schema": {"type": "string"},
                    }
                )
            for parameter in operation.get("parameters", []):
                pattern = PATH_PATTERNS.get(parameter["name"]) if parameter["in"] == "path" else None
                if pattern and path.startswith(pattern[0]):
                    parameter["schema"] = {**parameter["schema"], "pattern": pattern[1]}
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                if contract.example is not None:
                    body["example"] = contract.example
                target = schemas.get(body["schema"].get("$ref", "").removeprefix("#/components/schemas/"), {})
                # A body whose every field has a default may be left out (taken as {}).
                operation["requestBody"]["required"] = bool(target.get("required"))
    missing = set(CONTRACTS) - described
    if missing:
        raise ValueError(f"contracts for operations that do not exist: {sorted(missing)}")
    for name in _POWERTOOLS_ERRORS:
        schemas.pop(name, None)
    document["components"]["securitySchemes"] = _security_schemes(base)
    return document


class DocumentedResolver(APIGatewayRestResolver):
    """The management API's resolver, whose document also describes the operations the other
    functions of this API serve."""

    def openapi_document(self, *, title: str, version: str, description: str, base: str) -> dict[str, Any]:
        own = super().get_openapi_schema(title=title, version=version, description=description)
        document = own.model_dump(mode="json", by_alias=True, exclude_none=True)
        document["servers"] = [{"url": base or "/"}]
        webhooks = json.loads(WEBHOOKS_FRAGMENT.read_text(encoding="utf-8"))
        return apply_contracts(add_operations(add_fragment(document, webhooks), OPERATIONS), base)


def page(app: APIGatewayRestResolver, *, title: str, version: str, description: str) -> Response[str]:
    """The document (`?format=json`) or Swagger UI over it, as powertools' `enable_swagger` serves
    them. Its OpenAPI models (about a third of the management function's cold start) are imported
    here, at the first request for the document, not when the function starts."""
    from aws_lambda_powertools.event_handler.openapi import swagger_ui

    if not isinstance(app, DocumentedResolver):
        raise TypeError("the document is served by a DocumentedResolver")
    event = app.current_event
    context = event.request_context
    # Called through the stage's URL the path starts with the stage; through a custom domain not.
    base = f"/{context.stage}" if context.stage and str(context.path).startswith(f"/{context.stage}") else ""
    spec = app.openapi_document(title=title, version=version, description=description, base=base)
    # `</` escaped: the document is inlined in a <script> element of the page.
    text = json.dumps(spec, indent=2).replace("</", "<\\/")
    if (event.query_string_parameters or {}).get("format") == "json":
        return Response(status_code=200, content_type="application/json", body=text)
    assets = Path(swagger_ui.__file__).parent
    html = swagger_ui.generate_swagger_html(
        text,
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
        False,
    )
    return Response(status_code=200, content_type="text/html", body=html)
