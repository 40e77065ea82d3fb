"""A webhook endpoint's filters as the API validates them (pydantic), kept apart from their
evaluation (filters.py) so the fan-out's cold start does not load pydantic."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from functions.webhooks.logic.filters import (
    _ORDERING,
    BODY_MEMBERS,
    MAX_FILTERS,
    MAX_LIST_VALUES,
    MAX_PATH_LENGTH,
    MAX_PATH_SEGMENTS,
    Op,
    _check_json,
    _number,
)


class Filter(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    field: str = Field(
        min_length=1,
        max_length=MAX_PATH_LENGTH,
        description="Dot path into the webhook body, e.g. `data.key.client_id` or `type`",
    )
    op: Op
    value: Any = Field(
        default=None,
        description="A JSON value; a list for `in`/`not_in`, a number (or numeric string) for gt/gte/lt/lte, "
        "a string for `prefix`, true (default) or false for `exists`",
    )

    @model_validator(mode="before")
    @classmethod
    def _exists_defaults_to_true(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("op") == "exists" and "value" not in data:
            return {**data, "value": True}
        return data

    @field_validator("field")
    @classmethod
    def _path(cls, path: str) -> str:
        segments = path.split(".")
        if len(segments) > MAX_PATH_SEGMENTS:
            raise ValueError(f"a field path has at most {MAX_PATH_SEGMENTS} segments")
        if not all(segments):
            raise ValueError("a field path is names separated by single dots")
        if segments[0] not in BODY_MEMBERS:
            raise ValueError(f"a field path starts with a member of the webhook body: {', '.join(BODY_MEMBERS)}")
        return path

    @model_validator(mode="after")
    def _value_fits_the_op(self) -> Filter:
        op, value = self.op, self.value
        if "value" not in self.model_fields_set:
            raise ValueError(f"'{op}' needs a value")
        _check_json(value, 0)
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST_VALUES:
                raise ValueError(f"'{op}' takes a list of 1 to {MAX_LIST_VALUES} values")
        elif op in _ORDERING:
            if _number(value) is None:
                raise ValueError(f"'{op}' compares numbers: give a number or a string holding one")
        elif op == "exists":
            if not isinstance(value, bool):
                raise ValueError("'exists' takes true or false")
        elif op == "prefix" and not (isinstance(value, str) and value):
            raise ValueError("'prefix' takes a non-empty string")
        return self


Filters = Annotated[list[Filter], Field(max_length=MAX_FILTERS)]
_FILTERS: TypeAdapter[list[Filter]] = TypeAdapter(Filters)


def parse_filters(raw: Any) -> list[Filter]:
    """The filters of a request, validated (raises pydantic's ValidationError)."""
    return _FILTERS.validate_python(raw)
