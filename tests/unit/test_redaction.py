"""Credentials written into routes, refused on write and masked on read:
functions.routes.logic.redaction, and the route models that serialize through it
(functions.routes.logic.route_spec)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from functions.routes.logic.gateways import GatewaySpec, GatewayVersion
from functions.routes.logic.redaction import (
    MASK,
    UNMASKED,
    literal_credential,
    literal_credentials,
    mask_rules,
    mask_url,
)
from functions.routes.logic.route_spec import Route, RouteSpec

# -- what is a literal credential ------------------------------------------------------------------

# A credential written into the route: refused on write, masked on read.
LITERALS = [
    ("Authorization", "Bearer eyJhbGciOi.payload.sig"),
    ("Authorization", "Basic dXNlcjpwYXNz"),
    ("authorization", "sk_live_123"),
    ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
    ("X-Api-Key", "k-123"),
    ("X-API-KEY", "letters-only"),
    ("Cookie", "session=abc"),
    ("X-Auth-Token", "t0k3n"),
    ("X-Client-Secret", "hunter2"),
    ("X-Password", "correct horse"),
    ("X-Signature", "deadbeef"),
    ("api_key", "k-123"),  # a query parameter
    ("access_token", "t-1"),
    ("X-Partner", "Bearer abc123"),  # any name: the value reads as a credential
    ("X-Upstream", "basic dXNlcjpwYXNz"),
    ("X-Api-Key", '{{ "k-123" }}'),  # a literal inside an expression
    ("X-Api-Key", '{{ headers.x-key | default("k-123") }}'),  # ... or as a default
    ("Authorization", "Bearer abc{{ secrets.t }}"),  # text glued to a reference
    ("Authorization", "{{ secrets.t }} and-more"),
    ("X-Api-Key", MASK),  # the mask of a read, written back
    ("X-Partner", "p-" + MASK),  # the mask, whatever the name
]
# References and caller-derived values: allowed, shown as they are.
REFERENCES = [
    ("Authorization", "Bearer {{ secrets.orders_token }}"),
    ("Authorization", "Basic {{ secrets.orders_basic }}"),
    ("Authorization", "  {{ secrets.orders_token }}  "),
    ("X-Api-Key", "{{ secrets.partner-key | trim }}"),
    ("X-Api-Key", "{{ headers.x-upstream-key }}"),  # the caller's own, passed on
    ("X-Signature", "{{ secrets.a }}:{{ secrets.b }}"),  # punctuation between references
    ("X-Partner", "{{ client.id }}"),  # not a credential at all
    ("X-Partner", "static-value"),
    ("v", "2"),
    ("X-Api-Key", ""),  # renders empty: sets nothing
]


@pytest.mark.parametrize(("name", "value"), LITERALS)
def test_given_a_credential_written_into_a_rule_when_checked_then_it_is_a_literal(name: str, value: str) -> None:
    assert literal_credential(name, value)


@pytest.mark.parametrize(("name", "value"), REFERENCES)
def test_given_references_or_plain_values_when_checked_then_they_are_not_literal_credentials(
    name: str, value: str
) -> None:
    assert not literal_credential(name, value)


def test_given_rules_when_masked_then_only_literal_add_values_become_the_mask() -> None:
    added = {"Authorization": "Bearer sk_live_1", "X-Ref": "Bearer {{ secrets.t }}", "X-Partner": "p-1"}
    rules: dict[str, Any] = {"remove": ["X-Debug"], "rename": {"X-Old": "X-New"}, "add": added}
    assert literal_credentials(rules) == ["Authorization"]
    assert mask_rules(rules) == {**rules, "add": {**added, "Authorization": MASK}}
    assert added["Authorization"] == "Bearer sk_live_1"  # the original is left alone
    assert mask_rules(None) is None
    assert mask_rules({"remove": ["x"]}) == {"remove": ["x"]}


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://user:pass@orders.example/v1", f"https://{MASK}@orders.example/v1"),
        ("https://token@orders.example", f"https://{MASK}@orders.example"),
        ("https://orders.example/v1?api_key=k1&page=2", f"https://orders.example/v1?api_key={MASK}&page=2"),
        (
            "https://orders.example?access_token=t&signature=s",
            f"https://orders.example?access_token={MASK}&signature={MASK}",
        ),
        ("https://orders.example?Password=p", f"https://orders.example?Password={MASK}"),
        ("https://orders.example/v1?page=2", "https://orders.example/v1?page=2"),
        ("https://orders.example:8443/v1", "https://orders.example:8443/v1"),
    ],
)
def test_given_upstream_urls_when_masked_then_userinfo_and_secret_query_values_are_hidden(
    url: str, masked: str
) -> None:
    assert mask_url(url) == masked


# -- routes: refused on write ----------------------------------------------------------------------


def _spec(**overrides: Any) -> dict[str, Any]:
    return {
        "gateway_id": "gw_1",
        "name": "orders",
        "method": "GET",
        "path": "/orders/{id}",
        "targets": [{"url": "https://orders.example"}],
        **overrides,
    }


@pytest.mark.parametrize(("name", "value"), LITERALS)
def test_given_a_literal_credential_in_a_request_header_rule_when_a_route_is_written_then_422_names_it_not_its_value(
    name: str, value: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        RouteSpec.model_validate(_spec(request_transform={"headers": {"add": {name: value}}}))
    # What the API answers of a validation error: each error's location, message and type.
    message = json.dumps([[e["loc"], e["msg"], e["type"]] for e in refused.value.errors()])
    assert name in message
    assert "secrets" in message
    assert value not in message


@pytest.mark.parametrize(("name", "value"), [("api_key", "k-123"), ("signature", "abc"), ("token", MASK)])
def test_given_a_literal_credential_in_a_query_rule_when_a_route_is_written_then_refused(name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=name):
        RouteSpec.model_validate(_spec(request_transform={"query": {"add": {name: value}}}))


@pytest.mark.parametrize(("name", "value"), REFERENCES)
def test_given_references_in_rules_when_a_route_is_written_then_accepted(name: str, value: str) -> None:
    spec = RouteSpec.model_validate(
        _spec(request_transform={"headers": {"add": {name: value}}, "query": {"add": {name.lower(): value}}})
    )
    assert spec.request_transform is not None
    assert spec.request_transform.headers == {"add": {name: value}}


@pytest.mark.parametrize(
    "overrides",
    [
        {"response_transform": {"headers": {"add": {"X-Leak": "{{ secrets.t }}"}}}},
        {"response_transform": {"body": {"leak": "{{ secrets.t }}"}}},
        {"cache_key_template": "{{ secrets.t }}"},
    ],
)
def test_given_a_secret_in_what_goes_back_to_callers_when_a_route_is_written_then_refused(
    overrides: dict[str, Any],
) -> None:
    with pytest.raises(ValidationError, match="secrets"):
        RouteSpec.model_validate(_spec(**overrides))


def test_given_secrets_in_every_upstream_template_when_a_route_is_written_then_accepted() -> None:
    spec = RouteSpec.model_validate(
        _spec(
            method="POST",
            path="/graph",
            protocol="graphql",
            graphql={"query": "query { a }", "variables": {"key": "{{ secrets.gql }}"}},
            request_transform={
                "headers": {"add": {"Authorization": "Bearer {{ secrets.t }}"}},
                "query": {"add": {"api_key": "{{ secrets.k }}"}},
                "body": {"password": "{{ secrets.p }}"},
            },
        )
    )
    assert spec.graphql is not None


# -- routes: masked on read ------------------------------------------------------------------------


def _stored_with_literals() -> Route:
    """A route written before literals were refused (stored routes are read as they are)."""
    return Route.stored(
        _spec(
            route_id="rt_1",
            version=3,
            created_at="2026-01-01T00:00:00.000Z",
            updated_at="2026-01-01T00:00:00.000Z",
            created_by="admin-1",
            targets=[{"url": "https://svc:pw@orders.example"}, {"url": "https://orders.example?api_key=k9"}],
            request_transform={
                "headers": {"add": {"Authorization": "Bearer sk_live_1", "X-Ref": "Bearer {{ secrets.t }}"}},
                "query": {"add": {"access_token": "t-1", "v": "2"}},
            },
        )
    )


SECRETS = ("sk_live_1", "t-1", "svc:pw", "k9")


def test_given_a_stored_route_with_literals_when_serialized_for_readers_then_every_literal_is_masked() -> None:
    route = _stored_with_literals()
    for text in (route.model_dump_json(), json.dumps(route.model_dump(mode="json")), json.dumps(route.public())):
        for secret in SECRETS:
            assert secret not in text
        assert "Bearer {{ secrets.t }}" in text  # references stay readable
    shown = route.model_dump(mode="json")
    assert shown["request_transform"]["headers"]["add"]["Authorization"] == MASK
    assert shown["request_transform"]["query"]["add"] == {"access_token": MASK, "v": "2"}
    assert [t["url"] for t in shown["targets"]] == [
        f"https://{MASK}@orders.example",
        f"https://orders.example?api_key={MASK}",
    ]


def test_given_a_version_holding_such_a_route_when_serialized_then_it_is_masked_too() -> None:
    version = GatewayVersion(
        gateway_id="gw_1",
        version=1,
        created_at="2026-01-01T00:00:00.000Z",
        created_by="admin-1",
        settings=GatewaySpec(name="g"),
        routes=[_stored_with_literals()],
    )
    text = version.model_dump_json()
    assert not any(secret in text for secret in SECRETS)


def test_given_a_stored_route_when_serialized_for_storage_then_the_values_are_kept() -> None:
    route = _stored_with_literals()
    stored = json.loads(route.model_dump_json(context=UNMASKED))
    assert stored["request_transform"]["headers"]["add"]["Authorization"] == "Bearer sk_live_1"
    assert stored["targets"][0]["url"] == "https://svc:pw@orders.example"
    assert Route.stored(stored) == route


def test_given_a_masked_route_when_written_back_then_refused_rather_than_storing_the_mask() -> None:
    shown = _stored_with_literals().model_dump(mode="json", include=set(RouteSpec.model_fields))
    shown["targets"] = [{"url": "https://orders.example"}]  # the SSRF guard refuses the others anyway
    with pytest.raises(ValidationError) as refused:
        RouteSpec.model_validate(shown)
    assert "Authorization" in str(refused.value)


# -- templates: the request body (SOAP's elements too), GraphQL variables and document -------------

BODY_SECRET = "s3cr3t-Body-Value"
# Credentials written into what a route sends upstream, outside header and query rules: each is
# refused on write naming its place (never the value) and masked on read. (place, template)
BODY_LITERALS: list[tuple[str, Any]] = [
    (
        "client_secret",
        {"grant_type": "client_credentials", "client_id": "{{ client.id }}", "client_secret": BODY_SECRET},
    ),
    ("auth.password", {"auth": {"username": "svc", "password": BODY_SECRET}}),
    ("credentials[1].apiKey", {"credentials": [{"apiKey": "{{ secrets.k }}"}, {"apiKey": BODY_SECRET}]}),
    ("api_keys[0]", {"api_keys": [BODY_SECRET]}),
    ("Password", {"Username": "svc", "Password": BODY_SECRET}),  # a SOAP element
    ("pwd", {"pwd": 12345678}),  # a number is a literal too
    ("pass", {"user": "svc", "pass": BODY_SECRET}),
    ("passwd", {"passwd": BODY_SECRET}),
    ("sig", {"sig": BODY_SECRET}),
    ("X-Signature", {"X-Signature": BODY_SECRET}),
    ("client_assertion", {"client_assertion": BODY_SECRET}),
    ("refreshToken", {"refreshToken": BODY_SECRET}),
    ("session_id", {"session_id": BODY_SECRET}),
    ("token", {"token": '{{ "' + BODY_SECRET + '" }}'}),  # a literal inside an expression
    ("token", {"token": '{{ body.t | default("' + BODY_SECRET + '") }}'}),  # ... or as a default
    ("token", {"token": BODY_SECRET + "{{ secrets.t }}"}),  # text glued to a reference
    ("note", {"note": "Bearer " + BODY_SECRET}),  # any name: the value reads as a credential
    ("form", {"form": "grant_type=client_credentials&client_secret=" + BODY_SECRET}),  # inside text
    ("envelope", {"envelope": "<wsse:Password>" + BODY_SECRET + "</wsse:Password>"}),
    ("raw", {"raw": '{"api_key": "' + BODY_SECRET + '"}'}),
    ("(the template)", "access_token=" + BODY_SECRET),  # the whole template is text
    ("password", {"password": MASK}),  # the mask of a read, written back
    ("comment", {"comment": "was " + MASK}),  # the mask, whatever the name
]
# Not credentials, or not written into the route: accepted, and read as written.
BODY_ACCEPTED: list[Any] = [
    {"password": "{{ secrets.p }}", "client_secret": "{{ secrets.cs | trim }}"},
    {"authorization": "Bearer {{ secrets.t }}"},
    {"password": "{{ body.password }}"},  # the caller's own, passed on
    {"token_type": "Bearer", "tokens_used": 12, "token_count": 3},
    {"idempotency_key": "fixed-1", "public_key": "MFkwEwYHKoZI", "sort_key": "created_at"},
    {"partition_key": "p", "cache_key": "c", "key_id": "kid-1", "secret_name": "orders"},
    {"code": "EUR", "currency_code": "EUR", "country_code": "DE", "error_code": "E1", "sort_code": "12-34-56"},
    {"key": "customer_id", "value": "{{ body.id }}"},  # a look-up, not a credential
    {"auth": {"type": "basic"}, "auth_required": True, "signature_method": "HMAC-SHA256"},
    {"password": None, "token": "", "secret": True},
    {"next_token": "abc", "page_token": "p2"},
    {"form": "grant_type=client_credentials&client_secret={{ secrets.cs }}&scope=read"},
    {"envelope": "<wsse:Password>{{ secrets.p }}</wsse:Password><Nonce>n-1</Nonce>"},
    {"monkey": "business", "keyword": "rates", "author": "svc", "bypass": "no"},
    {"amount": "{{ body.amount }}", "currency": "EUR", "memo": "secret santa"},
]


def _body_route(body: Any, **overrides: Any) -> dict[str, Any]:
    return _spec(method="POST", path="/pay", request_transform={"body": body}, **overrides)


def _graphql_route(variables: Any, query: str = "query($k: String) { a(k: $k) }") -> dict[str, Any]:
    return _spec(method="POST", path="/graph", protocol="graphql", graphql={"query": query, "variables": variables})


def _soap_route(body: Any) -> dict[str, Any]:
    return _body_route(body, protocol="soap", soap={"namespace": "urn:bank:accounts", "operation": "GetBalance"})


def _refusal(spec: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as refused:
        RouteSpec.model_validate(spec)
    return json.dumps([[e["loc"], e["msg"], e["type"]] for e in refused.value.errors()])


@pytest.mark.parametrize(("place", "body"), BODY_LITERALS)
def test_given_a_credential_written_into_the_body_template_when_a_route_is_written_then_422_names_its_place(
    place: str, body: Any
) -> None:
    message = _refusal(_body_route(body))
    assert f"request_transform.body: {place}" in message
    assert "secrets" in message
    assert BODY_SECRET not in message
    assert "12345678" not in message


@pytest.mark.parametrize(("place", "variables"), [(p, b) for p, b in BODY_LITERALS if isinstance(b, dict)])
def test_given_a_credential_written_into_graphql_variables_when_a_route_is_written_then_422_names_its_place(
    place: str, variables: Any
) -> None:
    message = _refusal(_graphql_route(variables))
    assert f"graphql.variables: {place}" in message
    assert BODY_SECRET not in message


@pytest.mark.parametrize(
    "body",
    [
        {"Credentials": {"Username": "svc", "Password": BODY_SECRET}},
        {"Auth": {"ApiKey": BODY_SECRET}},
        {"SecurityToken": BODY_SECRET},
    ],
)
def test_given_a_credential_in_a_soap_routes_elements_when_written_then_refused(body: Any) -> None:
    message = _refusal(_soap_route(body))
    assert "request_transform.body" in message
    assert BODY_SECRET not in message


@pytest.mark.parametrize(
    "query",
    [
        'mutation { login(user: "svc", password: "' + BODY_SECRET + '") { ok } }',
        'query { rates(apiKey: "' + BODY_SECRET + '") { ccy } }',
        'query { rates(auth: {clientSecret: "' + BODY_SECRET + '"}) { ccy } }',
        'query($token: String = "' + BODY_SECRET + '") { rates(token: $token) { ccy } }',
        'query { rates(apiKey: "' + MASK + '") { ccy } }',
    ],
)
def test_given_a_credential_written_into_the_graphql_document_when_a_route_is_written_then_refused(query: str) -> None:
    message = _refusal(_graphql_route(None, query))
    assert "graphql.query" in message
    assert BODY_SECRET not in message


@pytest.mark.parametrize("body", BODY_ACCEPTED)
def test_given_references_or_plain_values_in_templates_when_a_route_is_written_then_accepted_and_read_as_written(
    body: Any,
) -> None:
    for spec in (_body_route(body), _graphql_route(body), _soap_route(body)):
        route = RouteSpec.model_validate(spec)
        shown = route.model_dump(mode="json")
        assert shown == route.model_dump(mode="json", context=UNMASKED)
        assert MASK not in json.dumps(shown)
    graphql = RouteSpec.model_validate(
        _graphql_route(None, 'query($k: String = "EUR") { rates(token_type: "Bearer", code: "EUR", k: $k) { ccy } }')
    )
    assert graphql.graphql is not None


def _stored_templates() -> Route:
    """A route written before template literals were refused (read as it is stored)."""
    return Route.stored(
        _spec(
            route_id="rt_2",
            version=1,
            created_at="2026-01-01T00:00:00.000Z",
            updated_at="2026-01-01T00:00:00.000Z",
            created_by="admin-1",
            method="POST",
            path="/graph",
            protocol="graphql",
            graphql={
                "query": 'query($k: String) { rates(apiKey: "' + BODY_SECRET + '", k: $k, ccy: "EUR") { ccy } }',
                "variables": {"k": "{{ body.k }}", "auth": {"password": BODY_SECRET, "user": "svc"}},
            },
            request_transform={
                "body": {
                    "client_secret": BODY_SECRET,
                    "client_id": "{{ client.id }}",
                    "api_keys": [BODY_SECRET, "{{ secrets.k }}"],
                    "form": "scope=read&client_secret=" + BODY_SECRET,
                    "pin_hint": 12345678,
                    "pwd": 12345678,
                    "ref": "{{ secrets.t }}",
                }
            },
        )
    )


def test_given_a_stored_route_with_template_literals_when_read_then_each_is_masked_and_the_rest_reads_as_written() -> (
    None
):
    route = _stored_templates()

    shown = route.model_dump(mode="json")

    assert BODY_SECRET not in json.dumps(shown)
    assert BODY_SECRET not in route.model_dump_json()
    body = shown["request_transform"]["body"]
    assert body == {
        "client_secret": MASK,
        "client_id": "{{ client.id }}",
        "api_keys": [MASK, "{{ secrets.k }}"],
        "form": MASK,
        "pin_hint": 12345678,
        "pwd": MASK,
        "ref": "{{ secrets.t }}",
    }
    assert shown["graphql"]["variables"] == {"k": "{{ body.k }}", "auth": {"password": MASK, "user": "svc"}}
    assert shown["graphql"]["query"] == 'query($k: String) { rates(apiKey: "' + MASK + '", k: $k, ccy: "EUR") { ccy } }'
    # Storage keeps what was written; a read written back is refused rather than storing masks.
    stored = route.model_dump(mode="json", context=UNMASKED)
    assert stored["request_transform"]["body"]["client_secret"] == BODY_SECRET
    assert Route.stored(stored) == route
    message = _refusal(
        {k: v for k, v in shown.items() if k in RouteSpec.model_fields and k not in ("targets",)}
        | {"targets": [{"url": "https://orders.example"}]}
    )
    for place in ("request_transform.body: client_secret", "graphql.variables: auth.password", "graphql.query"):
        assert place in message
