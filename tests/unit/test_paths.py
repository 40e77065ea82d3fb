"""Route path templates and the matching table."""

from __future__ import annotations

import pytest

from functions.routes.logic.paths import Match, MethodNotAllowedHere, RouteTable, parse_template, render, shape


def table(*routes: tuple[str, str]) -> RouteTable[str]:
    built: RouteTable[str] = RouteTable()
    for method, path in routes:
        built.add(method, path, f"{method} {path}")
    return built


def hit(routes: RouteTable[str], method: str, path: str) -> Match[str]:
    found = routes.match(method, path)
    assert found is not None, f"{method} {path} matched nothing"
    return found


def test_literals_beat_parameters_and_parameters_beat_greedy() -> None:
    routes = table(("GET", "/orders/{id}"), ("GET", "/orders/latest"), ("GET", "/orders/{rest+}"))
    assert hit(routes, "GET", "/orders/latest").value == "GET /orders/latest"
    found = hit(routes, "GET", "/orders/42")
    assert (found.value, found.params) == ("GET /orders/{id}", {"id": "42"})
    deep = hit(routes, "GET", "/orders/42/lines/3")
    assert (deep.value, deep.params) == ("GET /orders/{rest+}", {"rest": "42/lines/3"})


def test_parameters_are_named_per_route_and_decoded() -> None:
    routes = table(("GET", "/a/{x}/b/{y}"), ("POST", "/a/{other}/c"))
    assert hit(routes, "GET", "/a/1/b/two%20words").params == {"x": "1", "y": "two words"}
    assert hit(routes, "POST", "/a/9/c").params == {"other": "9"}


def test_exact_method_beats_any_and_other_methods_give_405_with_allow() -> None:
    routes = table(("ANY", "/files/{id}"), ("GET", "/files/{id}"), ("POST", "/upload"))
    assert hit(routes, "GET", "/files/1").value == "GET /files/{id}"
    assert hit(routes, "DELETE", "/files/1").value == "ANY /files/{id}"
    with pytest.raises(MethodNotAllowedHere) as refused:
        routes.match("GET", "/upload")
    assert refused.value.allowed == ["POST"]
    assert routes.match("GET", "/nothing") is None


def test_empty_segments_do_not_match_parameters() -> None:
    routes = table(("GET", "/orders/{id}"))
    assert routes.match("GET", "/orders/") is None


def test_clashing_routes_are_refused() -> None:
    routes = table(("GET", "/orders/{id}"))
    with pytest.raises(ValueError, match="clashes"):
        routes.add("GET", "/orders/{other}", "x")


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("orders", "starts with '/'"),
        ("/orders/{id}/{id}", "twice"),
        ("/files/{rest+}/tail", "last segment"),
        ("/bad segment", "neither"),
        ("/a//b", "neither"),
    ],
)
def test_invalid_templates_say_why(template: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_template(template)


def test_shape_erases_names_and_render_fills_them() -> None:
    assert shape("/orders/{id}/lines/{line}") == shape("/orders/{oid}/lines/{n}") == "/orders/{}/lines/{}"
    assert render("/v2/orders/{id}/{rest+}", {"id": "42", "rest": "a/b"}) == "/v2/orders/42/a/b"


def test_a_thousand_routes_match_by_walking_segments_not_scanning() -> None:
    routes = table(*[("GET", f"/svc{i}/items/{{id}}") for i in range(1000)])
    assert routes.size == 1000
    assert hit(routes, "GET", "/svc999/items/7").params == {"id": "7"}
