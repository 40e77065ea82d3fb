"""JSON has one number type: `4.0` is the integer 4, as JSON Schema says. Request models are
validated strictly (`true` is not 1, `"5"` is not 5), and strict pydantic refuses a float for an
int member, so an integral float is made an int where the body's schema asks for an integer, and
nowhere else: free-form members (a route's body template) keep exactly what the admin wrote."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel


@cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def integers_where_the_schema_says(value: Any, model: type[BaseModel]) -> Any:
    schema = _schema(model)
    return _walk(value, schema, schema.get("$defs", {}))


def _resolved(schema: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = definitions.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
    return schema if isinstance(schema, dict) else {}


def _options(schema: dict[str, Any], definitions: dict[str, Any]) -> list[dict[str, Any]]:
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if not alternatives:
        return [schema]
    return [_resolved(option, definitions) for option in alternatives]


def _walk(value: Any, schema: Any, definitions: dict[str, Any]) -> Any:
    options = _options(_resolved(schema, definitions), definitions)
    if isinstance(value, float):
        wants_integer = any(o.get("type") == "integer" for o in options)
        wants_number = any(o.get("type") == "number" for o in options)
        return int(value) if value.is_integer() and wants_integer and not wants_number else value
    if isinstance(value, dict):
        shape = next((o for o in options if o.get("type") == "object" or "properties" in o), None)
        if shape is None:
            return value
        members, rest = shape.get("properties", {}), shape.get("additionalProperties")
        return {
            k: _walk(v, members.get(k, rest if isinstance(rest, dict) else {}), definitions) for k, v in value.items()
        }
    if isinstance(value, list):
        shape = next((o for o in options if o.get("type") == "array"), None)
        if shape is None:
            return value
        return [_walk(v, shape.get("items", {}), definitions) for v in value]
    return value
