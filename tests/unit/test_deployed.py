"""The data plane reads deployed versions into gateway_core.deployed's named tuples, not the
management API's pydantic models they were validated and stored with. The two must not drift:
every model field has its twin, and a stored version reads back to the same values, defaults
included."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import BaseModel

from functions.routes.logic import gateways, route_spec
from gateway_core import deployed
from tests.unit.proxy_fakes import make_route, make_version

TWINS: list[tuple[type[BaseModel], type[Any]]] = [
    (route_spec.Route, deployed.DeployedRoute),
    (route_spec.TargetSpec, deployed.Target),
    (route_spec.LimitsSpec, deployed.RouteLimits),
    (route_spec.RetrySpec, deployed.RetrySettings),
    (route_spec.CircuitBreakerSpec, deployed.CircuitBreakerSettings),
    (route_spec.RequestTransformSpec, deployed.RequestTransform),
    (route_spec.ResponseTransformSpec, deployed.ResponseTransform),
    (route_spec.SoapSpec, deployed.SoapSettings),
    (route_spec.GraphqlSpec, deployed.GraphqlSettings),
    (route_spec.HealthCheckSpec, deployed.HealthCheck),
    (gateways.GatewaySpec, deployed.GatewaySettings),
    (gateways.CorsSpec, deployed.CorsSettings),
    (gateways.GatewayVersion, deployed.DeployedVersion),
    (gateways.Deployment, deployed.Deployment),
]


@pytest.mark.parametrize(("model", "twin"), TWINS, ids=lambda t: t.__name__)
def test_every_field_of_the_stored_models_has_a_twin(model: type[BaseModel], twin: type[Any]) -> None:
    assert set(model.model_fields) == set(twin._fields)


def _plain(value: Any) -> Any:
    """A deployed value as JSON would hold it, to compare with a model's JSON dump."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {name: _plain(getattr(value, name)) for name in value._fields}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, date):
        return value.isoformat()
    return value


FULL: dict[str, Any] = {
    "description": "Balances of one account",
    "upstream_path": "/v2/accounts/{id}",
    "path": "/accounts/{id}",
    "targets": [{"url": "https://a.example", "weight": 3}, {"url": "https://b.example", "weight": 1}],
    "load_balancing": "weighted",
    "required_scopes": ["banking:read"],
    "rate_limits": {"per_minute": 60, "burst": 10},
    "total_rate_limits": {"per_day": 10_000},
    "request_transform": {"headers": {"add": {"X-Partner": "{{ client.id }}"}}, "query": {"remove": ["debug"]}},
    "response_transform": {"headers": {"remove": ["server"]}, "body": {"balance": "{{ body.amount }}"}},
    "timeout_seconds": 4.5,
    "retry": {"max_attempts": 2, "initial_delay": 0.2, "max_delay": 1.0, "multiplier": 3.0},
    "cache_ttl_seconds": 30,
    "cache_key_template": "{{ path.id }}",
    "health_check": {"path": "/ping", "expect_status": 204},
    "deprecated": True,
    "deprecation_date": "2026-01-01",
    "sunset_date": "2026-06-30",
}
PROTOCOLS: list[dict[str, Any]] = [
    {**FULL, "method": "GET"},
    {
        **FULL,
        "method": "POST",
        "cache_ttl_seconds": 0,
        "cache_key_template": None,
        "protocol": "soap",
        "soap": {"version": "1.2", "namespace": "urn:bank", "operation": "GetBalance", "action": "urn:bank#get"},
    },
    {
        **FULL,
        "method": "POST",
        "cache_ttl_seconds": 0,
        "cache_key_template": None,
        "protocol": "graphql",
        "graphql": {"query": "query B($id: ID!) { b(id: $id) }", "operation_name": "B", "variables": {"id": "x"}},
    },
]


@pytest.mark.parametrize("route", PROTOCOLS, ids=["rest", "soap", "graphql"])
def test_a_stored_version_reads_back_with_every_value(route: dict[str, Any]) -> None:
    version = make_version(
        [make_route(**route)],
        description="spring release",
        base_path="/banking",
        default_timeout_seconds=7,
        retry={"max_attempts": 4},
        circuit_breaker={"failure_threshold": 9, "reset_timeout_seconds": 30},
        cors={"allow_origins": ["https://app.bank.example"], "max_age_seconds": 60},
    )
    stored = version.model_dump(mode="json")

    read = deployed.DeployedVersion.from_json(stored)

    assert _plain(read) == stored


def test_defaults_are_the_models_defaults() -> None:
    # A version stored before a field existed reads with that field's default, as the model would.
    minimal = {
        "gateway_id": "gw_1",
        "version": 1,
        "created_at": "2026-01-01T00:00:00.000Z",
        "created_by": "admin",
        "settings": {"name": "gw", "cors": {"allow_origins": ["*"]}},
        "routes": [
            {
                "route_id": "rt_1",
                "gateway_id": "gw_1",
                "name": "n",
                "method": "GET",
                "path": "/x",
                "targets": [{"url": "https://a.example"}],
                "version": 1,
                "created_at": "2026-01-01T00:00:00.000Z",
                "updated_at": "2026-01-01T00:00:00.000Z",
                "created_by": "admin",
            }
        ],
    }
    through_model = gateways.GatewayVersion.stored(minimal).model_dump(mode="json")

    assert _plain(deployed.DeployedVersion.from_json(minimal)) == through_model


def test_protocol_settings_leave_out_what_is_unset_as_the_bridges_expect() -> None:
    soap = route_spec.SoapSpec(namespace="urn:bank", operation="Get")
    graphql = route_spec.GraphqlSpec(query="{ a }")
    soap_read = deployed.SoapSettings.from_json(soap.model_dump(mode="json"))
    graphql_read = deployed.GraphqlSettings.from_json(graphql.model_dump(mode="json"))
    assert soap_read is not None
    assert graphql_read is not None
    assert soap_read.config() == soap.model_dump(exclude_none=True)
    assert graphql_read.config() == graphql.model_dump(exclude_none=True)
