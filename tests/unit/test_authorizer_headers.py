"""functions.authorizer.core.header: the credential an authorizer checks is the only one the
request carries. Sent twice with different values (one spelling or two), which one API Gateway's
identity source, its cache key and the function would each read is not ours to rely on: the
request is refused (401), never checked on one value and served or cached under another."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from functions.authorizer import gateway_handler
from functions.authorizer.core import Denied, header


def _event(pairs: list[tuple[str, str]], *, single: bool = True) -> dict[str, Any]:
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        multi.setdefault(name, []).append(value)
    event: dict[str, Any] = {"multiValueHeaders": multi}
    if single:
        event["headers"] = {name: values[-1] for name, values in multi.items()}
    return event


@pytest.mark.parametrize(
    "pairs",
    [
        [("X-Api-Key", "key-a"), ("x-api-key", "key-b")],
        [("x-api-key", "key-a"), ("x-api-key", "key-b")],
        [("X-API-KEY", "key-a"), ("X-Api-Key", "key-b"), ("x-api-key", "key-a")],
    ],
)
@pytest.mark.parametrize("single", [True, False])
def test_a_credential_sent_with_two_values_is_refused(pairs: list[tuple[str, str]], single: bool) -> None:
    with pytest.raises(Denied) as caught:
        header(_event(pairs, single=single), "x-api-key")
    assert caught.value.reason == "ambiguous_credential"


def test_the_same_value_under_two_spellings_is_one_credential() -> None:
    event = _event([("X-Api-Key", "key-a"), ("x-api-key", "key-a"), ("Accept", "a"), ("accept", "b")])
    assert header(event, "x-api-key") == "key-a"
    assert header(event, "authorization") == ""


def test_an_api_gateway_event_with_headers_only_is_read_as_before() -> None:
    assert header({"headers": {"Authorization": "Bearer t"}}, "authorization") == "Bearer t"
    assert header({"headers": None, "multiValueHeaders": None}, "authorization") == ""


@pytest.mark.parametrize("name", ["x-api-key", "Authorization"])
def test_the_proxys_authorizer_refuses_rather_than_serving_anonymously(name: str) -> None:
    request = SimpleNamespace(event=_event([(name, "one"), (name.upper(), "two")]))
    with pytest.raises(Denied):
        gateway_handler._check(cast(Any, request))
