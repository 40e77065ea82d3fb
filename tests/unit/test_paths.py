"""Route path templates and the matching table."""

from __future__ import annotations

import pytest

from functions.routes.logic.paths import (
    InvalidPath,
    Match,
    MethodNotAllowedHere,
    RouteTable,
    fully_decoded,
    parse_template,
    render,
    shape,
    upstream_values,
)


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


# -- parameters on their way to the upstream path ------------------------------------------------

# Values as the route table hands them over (percent-decoded once). Each one reaches a path the
# route never exposed once some upstream, URL library or file system decodes, normalises or maps
# it further: an encoded or double-encoded separator, a backslash, dots in any spelling,
# overlong UTF-8, look-alike characters NFKC or "best fit" mappings turn into separators or dots,
# control characters that truncate, Tomcat's `..;` path parameter.
CLIMBING_SEGMENTS = [
    "../../admin",
    "..%2F..%2Fadmin",  # double-encoded on the wire: %252F
    "..%2f..%2fadmin",
    "..%252F..%252Fadmin",  # triple
    "..\\..\\admin",
    "..%5C..%5Cadmin",
    "..%255c",
    "a/b",
    "a%2Fb",
    ".",
    "..",
    "%2E%2E",
    "%2e",
    ".%2E",
    "%252E%252E",
    "...",
    " .. ",
    "..;",
    "..;jsessionid=1",
    "%2E%2E%3Bx",
    "..?x=1",  # an upstream that decodes before splitting off the query sees `..` and a query
    "..%3Fx",
    "..%253F",
    "..#frag",
    "..%23",
    ".%3F",
    "\ufffd\ufffd",  # overlong UTF-8 (%c0%af) decoded once, with replacement characters
    "%c0%af",  # overlong '/'
    "..%c0%af..",
    "%c0%ae%c0%ae",  # overlong '.'
    "%e0%80%af",  # three-byte overlong '/'
    "..%ef%bc%8f..",  # U+FF0F fullwidth solidus, UTF-8 encoded
    "..\uff0f..",
    "..\uff3c..",  # fullwidth reverse solidus
    "\uff0e\uff0e",  # fullwidth full stops: '..' after NFKC
    "%ef%bc%8e%ef%bc%8e",
    "\u2024\u2024",  # one dot leaders
    "\ufe52\ufe52",  # small full stops
    "..\u2215admin",  # division slash
    "..\u2044admin",  # fraction slash
    "..\ufe68admin",  # small reverse solidus
    "a\u2100b",  # ACCOUNT OF: 'a/c' after NFKC
    "..%00",  # NUL truncates in C upstreams
    "a\x00b",
    "a\nb",
    "a%0D%0Ab",
    "%25%32%65%25%32%65",  # '..' encoded three times over, one character at a time
]


@pytest.mark.parametrize("value", CLIMBING_SEGMENTS, ids=repr)
def test_a_one_segment_parameter_is_refused_in_any_encoding_of_a_separator_or_dot_segment(value: str) -> None:
    with pytest.raises(InvalidPath, match="'id'"):
        upstream_values("/accounts/{id}", {"id": value})


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("42", "42"),
        ("DE89 3704", "DE89%203704"),
        ("a.b", "a.b"),
        ("..a", "..a"),  # a name with dots, not a dot segment
        ("v1.2.", "v1.2."),
        ("50%", "50%25"),  # a percent sign that encodes nothing stays a percent sign
        ("100%41", "100%2541"),  # sent as it was given; only the check decodes further
        ("café", "caf%C3%A9"),
        ("a?b#c", "a%3Fb%23c"),
        ("a;b", "a%3Bb"),
    ],
)
def test_a_one_segment_parameter_is_sent_percent_encoded_as_given(value: str, sent: str) -> None:
    assert upstream_values("/accounts/{id}", {"id": value}) == {"id": sent}


@pytest.mark.parametrize(
    "value",
    [
        "../admin",
        "a/../../admin",
        "a/b/../../../admin",
        "./../admin",
        "a/..%2F..%2Fadmin",  # an encoded separator inside one segment
        "a/%2E%2E/%2E%2E/admin",  # encoded dot segments are refused, not normalised
        "a\\..\\..\\admin",
        "a/..%5C..%5Cadmin",
        "a//b",  # an empty segment
        "a/%c0%af",
        "a/\uff0e\uff0e/b",
        "a/b%00",
    ],
    ids=repr,
)
def test_a_greedy_parameter_may_not_climb_out_or_hide_separators(value: str) -> None:
    with pytest.raises(InvalidPath, match="'key'"):
        upstream_values("/files/{key+}", {"key": value})


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("2026/q1 report.pdf", "2026/q1%20report.pdf"),
        ("a/./b/../c.pdf", "a/c.pdf"),  # dot segments inside the parameter are resolved
        ("a/b/..", "a"),
        ("a/..", ""),
        ("x/café/50%", "x/caf%C3%A9/50%25"),
    ],
)
def test_a_greedy_parameter_is_normalised_and_encoded_segment_by_segment(value: str, sent: str) -> None:
    assert upstream_values("/files/{key+}", {"key": value}) == {"key": sent}


def test_fully_decoded_stops_at_a_bound_and_refuses_what_is_not_utf8() -> None:
    assert fully_decoded("%252F") == "/"
    assert fully_decoded("50%") == "50%"
    with pytest.raises(InvalidPath, match="not UTF-8"):
        fully_decoded("%c0%af")
    with pytest.raises(InvalidPath, match="encoded too many times"):
        fully_decoded("%" + "25" * 8 + "2F")
