"""The OpenAPI 3.1 document served at /api/v1/docs, for the whole API.

The management function serves it, being the one function that carries the OpenAPI machinery:
its own operations come from its routers (powertools builds them), and the operations the data
plane, OAuth2 and health functions serve come from their declarations (operations.py, the same
table those functions serve from), described with the models they validate and answer with.
A request for one of those paths never reaches this function: API Gateway sends it to the
function that serves it (infra/constructs/api.py; tests/infra checks the wiring against this
document).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from functions.routes.api.operations import OPERATIONS, Operation

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

_REF_TEMPLATE = "#/components/schemas/{model}"
# How a greedy resource (`/gw/{proxy+}`) is described: OpenAPI has no "any method" nor "any depth".
_ANY_METHODS = ("get", "post", "put", "patch", "delete")
_SUBTREE_PARAMETER = {
    "name": "path",
    "in": "path",
    "required": True,
    "description": "The rest of the path, any number of segments",
    "schema": {"type": "string"},
}


def _model(reference: str) -> type[BaseModel]:
    module, _, name = reference.partition(":")
    model = getattr(importlib.import_module(module), name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{reference} is not a pydantic model")
    return model


def _operation_id(operation: Operation, path: str, method: str) -> str:
    return re.sub(r"\W+", "_", f"{operation.function}{path}_{method}").strip("_")


def add_operations(document: dict[str, Any], operations: Iterable[Operation]) -> dict[str, Any]:
    """`document` with the given operations and the schemas of their models added. A schema name
    already in the document with another definition is an error, not an overwrite."""
    operations = list(operations)
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for operation in operations:
        if operation.body:
            wanted.append((_model(operation.body), "validation"))
        if operation.answer:
            wanted.append((_model(operation.answer), "serialization"))
    refs, definitions = models_json_schema(wanted, ref_template=_REF_TEMPLATE) if wanted else ({}, {})
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in definitions.get("$defs", {}).items():
        if schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas are named {name}")
    paths = document.setdefault("paths", {})
    for operation in operations:
        item: dict[str, Any] = {"tags": [operation.tag], "summary": operation.summary}
        if operation.description:
            item["description"] = operation.description
        if operation.body:
            schema = refs[(_model(operation.body), "validation")]
            item["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        answer: dict[str, Any] = {"description": operation.answer_description}
        if operation.answer:
            answer["content"] = {"application/json": {"schema": refs[(_model(operation.answer), "serialization")]}}
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


class DocumentedResolver(APIGatewayRestResolver):
    """The management API's resolver, whose document also describes the operations the other
    functions of this API serve."""

    def get_openapi_schema(self, **kwargs: Any) -> OpenAPI:
        from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

        own = super().get_openapi_schema(**kwargs)
        document = own.model_dump(mode="json", by_alias=True, exclude_none=True)
        return OpenAPI.model_validate(add_operations(document, OPERATIONS))


def page(app: APIGatewayRestResolver, *, title: str, version: str, description: str) -> Response[str]:
    """The document (`?format=json`) or Swagger UI over it, as powertools' `enable_swagger` serves
    them. Its OpenAPI models (about a third of the management function's cold start) are imported
    here, at the first request for the document, not when the function starts."""
    from aws_lambda_powertools.event_handler.openapi import swagger_ui
    from aws_lambda_powertools.event_handler.openapi.compat import model_json
    from aws_lambda_powertools.event_handler.openapi.models import Server

    event = app.current_event
    context = event.request_context
    # Called through the stage's URL the path starts with the stage; through a custom domain not.
    base = f"/{context.stage}" if context.stage and str(context.path).startswith(f"/{context.stage}") else ""
    spec = app.get_openapi_schema(
        title=title, version=version, description=description, servers=[Server(url=base or "/")]
    )
    # `</` escaped: the document is inlined in a <script> element of the page.
    text = model_json(spec, by_alias=True, exclude_none=True, indent=2).replace("</", "<\\/")
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
