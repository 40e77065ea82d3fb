"""No function answers with a header HTTP cannot carry: route rules whose text holds such a
character are refused when written (422), and whatever a rule renders at call time, or a handler
puts in a header, is left out of the answer rather than sent (gateway_core.fields)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from functions.routes.logic.route_spec import RouteSpec
from gateway_core.endpoints import Endpoint, Endpoints, Reply, Request
from gateway_core.fields import writable, writable_headers
from tests.unit.proxy_fakes import harness, make_route
from tests.unit.test_http import proxy_event

UNWRITABLE = [
    "line\u2028separator",
    "paragraph\u2029separator",
    "split\r\nSet-Cookie: stolen=1",
    "lf\nonly",
    "cr\ronly",
    "nul\x00",
    "bell\x07",
    "del\x7f",
    "euro \u20ac",
    "emoji \U0001f4b6",
]
WRITABLE = ["plain", "caf\u00e9", "tab\tinside", "", "quotes \"'; q=0.9, */*"]


@pytest.mark.parametrize("value", UNWRITABLE)
def test_values_http_cannot_carry_are_not_writable(value: str) -> None:
    assert not writable("X-Name", value)


@pytest.mark.parametrize("value", WRITABLE)
def test_values_http_carries_are_writable(value: str) -> None:
    assert writable("X-Name", value)


@pytest.mark.parametrize("name", ["Bad Name", "X-Colon:", "", "X-\u00e9", "X\r\nY", "X-Trail\n"])
def test_names_that_are_not_tokens_are_not_writable(name: str) -> None:
    assert not writable(name, "v")
    assert writable_headers({name: "v", "X-Ok": "v"}) == ({"X-Ok": "v"}, [name])


# -- every answer of a resolver-free function ----------------------------------------------------------


@pytest.mark.parametrize("value", UNWRITABLE)
def test_an_unwritable_header_is_left_out_of_the_answer_and_the_rest_is_kept(value: str) -> None:
    def handler(request: Request) -> Reply:
        return Reply.json(200, "{}", {"X-Echo": value, "X-Kept": "yes"})

    result = Endpoints([Endpoint("GET", "/api/v1/echo", handler)])(proxy_event("GET", "/api/v1/echo"))

    assert result["statusCode"] == 200
    assert "X-Echo" not in result["headers"]
    assert result["headers"]["X-Kept"] == "yes"
    assert all(writable(k, v) for k, v in result["headers"].items())


# -- route rules -----------------------------------------------------------------------------------------


def _spec(**transforms: Any) -> dict[str, Any]:
    return {
        "gateway_id": "gw_1",
        "name": "orders",
        "method": "GET",
        "path": "/orders/{id}",
        "targets": [{"url": "https://upstream-a.example"}],
        **transforms,
    }


@pytest.mark.parametrize("value", UNWRITABLE[:7])
@pytest.mark.parametrize("direction", ["request_transform", "response_transform"])
def test_a_header_rule_whose_text_cannot_be_a_header_is_refused_when_written(direction: str, value: str) -> None:
    rule = {"headers": {"add": {"X-Note": f"{{{{ query.ccy }}}} {value}"}}}

    with pytest.raises(ValidationError) as caught:
        RouteSpec.model_validate(_spec(**{direction: rule}))

    assert caught.value.errors()[0]["loc"][0] == direction


def test_header_rules_that_can_be_written_and_query_rules_with_any_text_are_accepted() -> None:
    spec = RouteSpec.model_validate(
        _spec(
            request_transform={
                "headers": {"add": {"X-Ccy": "{{ query.ccy }}"}},
                "query": {"add": {"label": "\u20ac \u2028 any text a query may carry"}},
            },
            response_transform={"headers": {"add": {"X-Note": "caf\u00e9 {{ headers.x-trace }}"}}},
        )
    )
    assert spec.request_transform is not None


def test_a_stored_route_with_such_a_rule_is_still_read_and_served_without_the_header() -> None:
    # Given a route stored before the rule existed, whose response rule renders a U+2028
    route = make_route(response_transform={"headers": {"add": {"X-Note": "a\u2028{{ query.ccy }}", "X-Ok": "ok"}}})
    h = harness([route])

    # When it is called
    response = h.call(query={"ccy": ["EUR"]})

    # Then the answer is served; the unwritable header does not leave the function
    assert response.status == 200
    event = proxy_event("GET", "/gw/orders/1")
    from functions.routes.api.proxy import to_reply

    result = Endpoints([Endpoint("ANY", "/gw", lambda request: to_reply(response), subtree=True)])(event)
    assert result["statusCode"] == 200
    assert "X-Note" not in result["headers"]
    assert result["headers"]["X-Ok"] == "ok"
