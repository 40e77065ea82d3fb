"""What the JSON schemas of request bodies say beyond the Python types, so the OpenAPI document
states the rules the API enforces (a scope from the catalog, members that may be left out but not
sent as null) and generated clients and contract tests follow them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from functions.routes.logic.catalog import SCOPES
from gateway_core.jws_algorithms import SUPPORTED_ALGORITHMS

# A scope name from the catalog (functions/routes/logic/catalog.py).
Scope = Annotated[str, Field(json_schema_extra={"enum": list(SCOPES)})]
# A scope an external issuer's tokens may carry: never `admin` (functions/routes/logic/issuers.py).
IssuerScope = Annotated[str, Field(json_schema_extra={"enum": [s for s in SCOPES if s != "admin"]})]
# An asymmetric JWS algorithm the gateway verifies (RFC 8725).
Algorithm = Annotated[str, Field(json_schema_extra={"enum": sorted(SUPPORTED_ALGORITHMS)})]
# A member that is not blank (the operation refuses one with its own code, so schema only).
NonBlank = Annotated[str, Field(json_schema_extra={"minLength": 1, "pattern": r"\S"})]


def absent_or_set(*nullable: str) -> Callable[[dict[str, Any]], None]:
    """A `json_schema_extra` for partial updates: every member may be left out, but only those in
    `nullable` may be sent as null (the others answer 422 `null_not_allowed`)."""

    def strip(schema: dict[str, Any]) -> None:
        for name, member in schema.get("properties", {}).items():
            if name in nullable:
                continue
            options = member.get("anyOf")
            if options and {"type": "null"} in options:
                rest = [o for o in options if o != {"type": "null"}]
                del member["anyOf"]
                if len(rest) == 1:
                    member.update(rest[0])
                else:
                    member["anyOf"] = rest
            if "default" in member and member["default"] is None:
                del member["default"]

    return strip
