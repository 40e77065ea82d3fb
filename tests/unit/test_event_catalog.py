"""The webhook event catalog (layers/gateway_core/event_catalog.py): valid schemas, audit actions
that exist in the code, event data built from real resources that validates against its type's
schema (so a schema cannot drift from the `public()` it describes), and subscription patterns."""

from __future__ import annotations

import copy
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from functions.routes.logic import certificates, clients, keys
from functions.routes.logic.catalog import TIERS, RateLimits
from functions.routes.logic.certificates import Certificate, CertStatus
from functions.routes.logic.clients import Client, ClientSpec, Status
from functions.routes.logic.gateways import (
    CorsSpec,
    Deployment,
    DeployRequest,
    Gateway,
    activate,
    next_deployment,
    previous_version,
)
from functions.routes.logic.keys import ApiKey, KeyStatus
from functions.routes.logic.route_spec import Route
from gateway_core import event_catalog
from gateway_core.audit import Actor
from gateway_core.clock import iso
from gateway_core.credentials import new_key_record
from gateway_core.event_catalog import (
    AUDIT_EVENTS,
    EVENT_TYPES,
    FAMILIES,
    RESERVED_FAMILIES,
    event_data_for_audit,
    matches_type,
    validate_subscription,
)
from tests.certificates import make_certificate
from tests.unit.factories import make_client

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ACTOR = Actor("cl_admin", "api_key", "key_admin", "req-1")
Audit = tuple[str, dict[str, Any] | None, dict[str, Any] | None]


def closed(schema: Any) -> Any:
    """The schema with no members beyond the listed ones: the published schemas stay open for later
    members, the tests hold them to exactly what `public()` gives today."""
    if isinstance(schema, dict):
        result = {k: closed(v) for k, v in schema.items()}
        if "properties" in schema:
            result["additionalProperties"] = False
        return result
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


def check(event_type: str, data: dict[str, Any]) -> None:
    validator = Draft202012Validator(
        closed(EVENT_TYPES[event_type].schema), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(data)


def object_schemas(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, dict):
        found = [schema] if "properties" in schema else []
        return found + [s for v in schema.values() for s in object_schemas(v)]
    if isinstance(schema, list):
        return [s for v in schema for s in object_schemas(v)]
    return []


# -- stores that record audits as the DynamoDB stores do (functions/routes/dal/*_store.py) ---------


class Recorder:
    def __init__(self) -> None:
        self.audits: list[Audit] = []

    def record(self, action: str, before: Any, after: Any) -> None:
        self.audits.append(
            (action, before.public() if before is not None else None, after.public() if after is not None else None)
        )


class Clients:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.items: dict[str, Client] = {}

    def create(self, client: Client, actor: Actor) -> None:
        self.items[client.client_id] = client
        self.recorder.record("client.register", None, client)

    def get(self, client_id: str) -> Client | None:
        return self.items.get(client_id)

    def list(self, status: str | None, limit: int, cursor: str | None) -> tuple[list[Client], str | None]:
        return list(self.items.values()), None

    def replace(self, before: Client, after: Client, action: str, actor: Actor) -> None:
        self.items[after.client_id] = after
        self.recorder.record(action, before, after)

    def delete(self, client: Client, actor: Actor) -> None:
        del self.items[client.client_id]
        self.recorder.record("client.delete", client, None)


class Keys:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.items: dict[str, ApiKey] = {}

    def create(self, key: ApiKey, actor: Actor) -> None:
        self.items[key.key_id] = key
        self.recorder.record("key.create", None, key)

    def get(self, key_id: str) -> ApiKey | None:
        return self.items.get(key_id)

    def list_for_client(self, client_id: str, limit: int, cursor: str | None) -> tuple[list[ApiKey], str | None]:
        return [k for k in self.items.values() if k.client_id == client_id], None

    def replace(self, before: ApiKey, after: ApiKey, action: str, actor: Actor) -> None:
        self.items[after.key_id] = after
        self.recorder.record(action, before, after)

    def rotate(self, before: ApiKey, after: ApiKey, new_key: ApiKey, actor: Actor) -> None:
        self.items[after.key_id] = after
        self.items[new_key.key_id] = new_key
        self.recorder.record("key.rotate", before, after)
        self.recorder.record("key.create", None, new_key)

    def sync_client(self, client: Client, status: str | None = None) -> int:
        return 0


class Certificates:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.items: dict[str, Certificate] = {}

    def create(self, certificate: Certificate, actor: Actor) -> None:
        self.items[certificate.fingerprint] = certificate
        self.recorder.record("certificate.register", None, certificate)

    def get(self, fingerprint: str) -> Certificate | None:
        return self.items.get(fingerprint)

    def list_for_client(self, client_id: str) -> list[Certificate]:
        return [c for c in self.items.values() if c.client_id == client_id]

    def replace(self, before: Certificate, after: Certificate, action: str, actor: Actor) -> None:
        self.items[after.fingerprint] = after
        self.recorder.record(action, before, after)


def lifecycle_audits() -> list[Audit]:
    """A client, its keys and certificate through every audited change, by the product's own rules."""
    recorder = Recorder()
    client_store, key_store, cert_store = Clients(recorder), Keys(recorder), Certificates(recorder)
    spec = ClientSpec(
        name="Acme Treasury",
        client_type="integration",
        contact_email="ops@acme.example",
        allowed_scopes=["banking:read", "data:read"],
        ip_allowlist=["10.0.0.0/8"],
        allowed_endpoints=["/accounts/*"],
    )
    client, _ = clients.register(client_store, spec, ACTOR, NOW, "test")
    cid = client.client_id
    changes: dict[str, Any] = {
        "rate_limits": RateLimits(10, 100, 1000),
        "monthly_quota": 5000,
        "expires_at": iso(NOW + timedelta(days=90)),
        "tier": "professional",
    }
    clients.update(client_store, cid, changes, ACTOR, NOW, None)
    clients.rotate_secret(client_store, cid, ACTOR, NOW, "test")  # grace_until set: no event, still checked
    key, _ = keys.create(
        key_store,
        client_store,
        client_id=cid,
        name="ci",
        scopes=None,
        expires_at=iso(NOW + timedelta(days=30)),
        rate_limits=RateLimits(5, 50, 500),
        actor=ACTOR,
        now=NOW,
        environment="test",
    )
    new_key, _, _ = keys.rotate(key_store, client_store, key.key_id, None, ACTOR, NOW, "test")
    keys.revoke(key_store, new_key.key_id, ACTOR, NOW)
    pem, fingerprint = make_certificate("acme-client")
    real_now = datetime.now(UTC)  # the certificate is valid around the real time
    certificates.register(cert_store, client_store, cid, pem, ACTOR, real_now)
    certificates.revoke(cert_store, cid, fingerprint, ACTOR, real_now)
    clients.set_status(client_store, cid, "suspended", ACTOR, NOW)
    clients.set_status(client_store, cid, "active", ACTOR, NOW)
    clients.delete(client_store, cid, ACTOR)
    return recorder.audits


def operator_key_audit() -> Audit:
    """The admin CLI's bootstrap key (infra/admin/keys.py): an operator key without a client record."""
    record = new_key_record(
        key_hash="0" * 64,
        key_id="key_boot",
        client_id="bootstrap-admin",
        name="bootstrap admin key",
        scopes=["admin"],
        tier="enterprise",
        created_at=iso(NOW),
        prefix="gk_test_abc",
        last_four="wxyz",
    )
    key = ApiKey(**record, client_allowed_scopes=["admin"], lineage_id="key_boot", last_used_at=iso(NOW))
    return "key.bootstrap_create", None, key.public()


def gateway(**values: Any) -> Gateway:
    base: dict[str, Any] = {
        "name": "Partners",
        "base_path": "/partners",
        "gateway_id": "gw_1",
        "created_at": iso(NOW),
        "updated_at": iso(NOW),
        "version": 1,
    }
    return Gateway(**{**base, **values})


def gateway_audits() -> list[Audit]:
    draft = gateway(cors=CorsSpec(allow_origins=["https://app.example"]))
    staged = gateway(deployment=next_deployment(Deployment(), DeployRequest(strategy="staged")), version=2)
    live = gateway(deployment=next_deployment(staged.deployment, DeployRequest()), version=3)
    canary = gateway(
        deployment=next_deployment(live.deployment, DeployRequest(strategy="canary", canary_percent=10)),
        cors=CorsSpec(allow_origins=["*"], max_age_seconds=0),
        version=4,
    )
    back = gateway(deployment=activate(canary.deployment, previous_version(canary.deployment)), version=5)
    return [
        ("gateway.deploy", draft.public(), staged.public()),
        ("gateway.deploy", staged.public(), live.public()),
        ("gateway.deploy", live.public(), canary.public()),
        ("gateway.rollback", canary.public(), back.public()),
    ]


ROUTE_BASE: dict[str, Any] = {
    "route_id": "rt_1",
    "gateway_id": "gw_1",
    "name": "orders",
    "method": "GET",
    "path": "/orders/{id}",
    "targets": [{"url": "https://upstream-a.example"}],
    "version": 1,
    "created_at": iso(NOW),
    "updated_at": iso(NOW),
    "created_by": "cl_admin",
}


def route(**values: Any) -> Route:
    return Route.stored({**ROUTE_BASE, **values})


def route_audits() -> list[Audit]:
    minimal = route()
    full = route(
        description="Orders by id",
        upstream_path="/v2/orders/{id}",
        targets=[{"url": "https://svc:pw@a.example?api_key=k9", "weight": 3}, {"url": "https://b.example"}],
        load_balancing="weighted",
        required_scopes=["data:read"],
        rate_limits={"per_minute": 10, "burst": 5},
        total_rate_limits={"per_day": 100_000},
        request_transform={
            "headers": {"add": {"X-Partner": "{{ client.id }}"}},
            "query": {"remove": ["debug"]},
            "body": {"Amount": "{{ body.amount }}"},
        },
        response_transform={"headers": {"remove": ["server"]}, "body": {"balance": "{{ body.amount }}"}},
        timeout_seconds=5.5,
        retry={"max_attempts": 2},
        cache_ttl_seconds=60,
        cache_key_template="{{ path.id }}",
        health_check={"path": "/health", "expect_status": 204},
        deprecated=True,
        deprecation_date="2026-12-01",
        sunset_date="2027-06-01",
        version=2,
    )
    soap = route(
        route_id="rt_2",
        method="POST",
        protocol="soap",
        soap={"namespace": "urn:bank:accounts", "operation": "GetBalance", "action": "urn:bank:GetBalance"},
    )
    graphql = route(
        route_id="rt_3",
        method="POST",
        protocol="graphql",
        graphql={"query": "query Accounts { accounts { id } }", "operation_name": "Accounts", "variables": {"n": 1}},
        auth_required=False,
    )
    return [
        ("route.create", None, minimal.public()),
        ("route.update", minimal.public(), full.public()),
        ("route.create", None, soap.public()),
        ("route.create", None, graphql.public()),
        ("route.delete", full.public(), None),
    ]


def all_audits() -> list[Audit]:
    return [*lifecycle_audits(), operator_key_audit(), *gateway_audits(), *route_audits()]


# -- the catalog ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EVENT_TYPES)
def test_every_schema_is_a_valid_2020_12_json_schema(name: str) -> None:
    event_type = EVENT_TYPES[name]
    assert event_type.name == name
    assert event_type.description
    Draft202012Validator.check_schema(event_type.schema)
    assert Draft202012Validator.META_SCHEMA["$id"] == event_catalog.JSON_SCHEMA_DIALECT


def test_the_catalog_holds_the_issue_types_and_no_later_ones() -> None:
    assert set(EVENT_TYPES) == {
        *(f"client.{s}" for s in ("created", "updated", "suspended", "reactivated", "deleted")),
        *(f"key.{s}" for s in ("created", "rotated", "revoked")),
        "certificate.registered",
        "certificate.revoked",
        "gateway.deployed",
        "gateway.rolled_back",
        *(f"route.{s}" for s in ("created", "updated", "deleted")),
        "endpoint.disabled",
        "endpoint.enabled",
        "message.attempt.exhausted",
    }
    assert {name.split(".")[0] for name in EVENT_TYPES} <= set(FAMILIES)
    assert not any(name.split(".")[0] in RESERVED_FAMILIES for name in EVENT_TYPES)


def test_every_audit_action_maps_to_a_catalog_type_and_is_an_action_the_code_writes() -> None:
    sources = "\n".join(
        path.read_text()
        for folder in ("functions", "infra")
        for path in (ROOT / folder).rglob("*.py")
        if "tests" not in path.parts
    )
    for action, event_type in AUDIT_EVENTS.items():
        assert event_type in EVENT_TYPES
        assert f'"{action}"' in sources, f"no code writes the audit action {action!r}"


def test_every_object_lists_every_member_as_required() -> None:
    for event_type in EVENT_TYPES.values():
        for schema in object_schemas(event_type.schema):
            assert schema["required"] == list(schema["properties"]), event_type.name


def test_types_of_one_resource_share_no_schema_objects() -> None:
    created, deleted = EVENT_TYPES["client.created"].schema, EVENT_TYPES["client.deleted"].schema
    assert created == deleted
    assert created["properties"]["client"] is not deleted["properties"]["client"]


def test_the_enumerations_are_the_ones_of_the_code() -> None:
    client = EVENT_TYPES["client.created"].schema["properties"]["client"]["properties"]
    key = EVENT_TYPES["key.created"].schema["properties"]["key"]["properties"]
    certificate = EVENT_TYPES["certificate.registered"].schema["properties"]["certificate"]["properties"]
    assert tuple(TIERS) == event_catalog.TIERS
    assert client["tier"]["enum"] == key["tier"]["enum"] == list(TIERS)
    assert client["status"]["enum"] == list(get_args(Status))
    assert key["status"]["enum"] == list(get_args(KeyStatus))
    assert key["client_status"]["enum"] == [*get_args(Status), "deleted"]  # keys.sync_client(deleted=True)
    assert certificate["status"]["enum"] == list(get_args(CertStatus))


def _resolve(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return _resolve(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
    options = [o for o in schema.get("anyOf", []) if o.get("type") != "null"]
    return _resolve(options[0], definitions) if len(options) == 1 else schema


def _same_shape(ours: dict[str, Any], theirs: dict[str, Any], definitions: dict[str, Any], where: str) -> None:
    ours, theirs = _resolve(ours, definitions), _resolve(theirs, definitions)
    # Scopes stay plain strings: the scope list grows with the product, and stored routes keep theirs.
    if "enum" in theirs and not where.endswith("scopes[]"):
        assert set(ours.get("enum", [])) == set(theirs["enum"]), where
    if "items" in theirs and "items" in ours:
        _same_shape(ours["items"], theirs["items"], definitions, f"{where}[]")
    if "properties" in theirs:
        assert set(ours.get("properties", {})) == set(theirs["properties"]), where
        for name, member in theirs["properties"].items():
            _same_shape(ours["properties"][name], member, definitions, f"{where}.{name}")


@pytest.mark.parametrize(("event_type", "model"), [("gateway.deployed", Gateway), ("route.created", Route)])
def test_pydantic_resources_have_the_members_and_enumerations_of_their_models(event_type: str, model: Any) -> None:
    # Every nested member, even of settings no test route fills in, and every Literal's values.
    theirs = model.model_json_schema(mode="serialization")
    resource = event_type.split(".")[0]
    ours = EVENT_TYPES[event_type].schema["properties"][resource]
    _same_shape(ours, theirs, theirs.get("$defs", {}), resource)


# -- event data from real resources -----------------------------------------------------------------


def test_every_audited_change_of_the_product_validates_against_its_type() -> None:
    audits = all_audits()
    published: set[str] = set()
    for action, before, after in audits:
        event = event_data_for_audit(action, ACTOR.client_id, ACTOR.request_id, before, after)
        if action not in AUDIT_EVENTS:
            assert event is None, action
            continue
        assert event is not None
        event_type, data = event
        check(event_type, data)
        published.add(event_type)
    audited = {t for t in EVENT_TYPES if not t.startswith(("endpoint.", "message."))}
    assert published == audited  # every audited type was exercised
    assert {a for a, _, _ in audits} >= set(AUDIT_EVENTS)  # and every mapped action


def test_the_data_is_the_state_after_the_change_or_before_a_delete() -> None:
    client = make_client().public()
    changed = {**client, "status": "suspended", "version": 2}
    assert event_data_for_audit("client.suspend", "cl_admin", "req-9", client, changed) == (
        "client.suspended",
        {"client": changed, "actor": {"client_id": "cl_admin", "request_id": "req-9"}},
    )
    assert event_data_for_audit("client.delete", "cl_admin", "req-9", client, None) == (
        "client.deleted",
        {"client": client, "actor": {"client_id": "cl_admin", "request_id": "req-9"}},
    )


def test_a_rotation_publishes_the_old_key_rotated_and_the_new_key_created() -> None:
    audits = [a for a in lifecycle_audits() if a[0] in ("key.rotate", "key.create")]
    events = [event_data_for_audit(action, "cl_admin", "req-1", before, after) for action, before, after in audits]
    assert [e[0] for e in events if e] == ["key.created", "key.rotated", "key.created"]
    rotated, successor = events[1], events[2]
    assert rotated
    assert successor
    assert rotated[1]["key"]["rotated_to"] == successor[1]["key"]["key_id"]
    assert rotated[1]["key"]["grace_until"] is not None


@pytest.mark.parametrize(
    "action", ["key.update", "client.secret.rotate", "gateway.activate", "gateway.create", "issuer.register"]
)
def test_actions_outside_the_catalog_publish_nothing(action: str) -> None:
    assert event_data_for_audit(action, "cl_admin", "req-1", None, {"x": 1}) is None


def test_a_mapped_action_without_state_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no state"):
        event_data_for_audit("key.create", "cl_admin", "req-1", None, None)


def test_a_schema_refuses_data_that_drifted_from_public() -> None:
    # The checks above can fail: a missing member, an extra one, a wrong type, a bad time.
    data = {"client": make_client().public(), "actor": {"client_id": "a", "request_id": "r"}}
    check("client.created", data)
    for broken in (
        {k: v for k, v in data["client"].items() if k != "tier"},
        {**data["client"], "secret_hash": "x"},
        {**data["client"], "version": "1"},
        {**data["client"], "created_at": "yesterday"},
        {**data["client"], "status": "deleted"},
    ):
        with pytest.raises(ValidationError):
            check("client.created", {**data, "client": broken})
    with pytest.raises(ValidationError):
        check("client.created", {"client": data["client"]})  # no actor


def test_a_key_carries_no_hash_and_validates_with_every_optional_member_set() -> None:
    key = ApiKey(
        **new_key_record(
            key_hash="f" * 64,
            key_id="key_1",
            client_id="cl_1",
            name="k",
            scopes=["data:read"],
            tier="basic",
            created_at=iso(NOW),
            prefix="gk_test_abc",
            last_four="abcd",
        )
    )
    key = replace(key, revoked_at=iso(NOW), status="revoked", rate_limits=RateLimits(1, 2, 3), client_status="deleted")
    event = event_data_for_audit("key.revoke", "cl_admin", "req-1", None, key.public())
    assert event is not None
    assert "key_hash" not in event[1]["key"]
    check(*event)


def test_webhook_service_events_validate() -> None:
    check(
        "endpoint.disabled",
        {"endpoint_id": "ep_1", "url": "https://hooks.example/in", "reason": "gone", "disabled_at": iso(NOW)},
    )
    check("endpoint.enabled", {"endpoint_id": "ep_1", "url": "https://hooks.example/in"})
    exhausted = {
        "endpoint_id": "ep_1",
        "delivery_id": "dlv_" + "a" * 26,
        "event_id": "msg_" + "0A" * 13,
        "event_type": "key.rotated",
        "attempts": 8,
        "last_status": 503,
        "last_error": None,
    }
    check("message.attempt.exhausted", exhausted)
    check("message.attempt.exhausted", {**exhausted, "last_status": None, "last_error": "connect timeout"})
    for broken in ({"last_status": 99}, {"attempts": 0}, {"delivery_id": "dlv_x"}, {"last_error": 5}):
        with pytest.raises(ValidationError):
            check("message.attempt.exhausted", {**exhausted, **broken})
    with pytest.raises(ValidationError):
        check(
            "endpoint.disabled",
            {"endpoint_id": "ep_1", "url": "https://h.example", "reason": "bored", "disabled_at": iso(NOW)},
        )


def test_the_module_imports_with_the_standard_library_only() -> None:
    code = (
        "import sys, gateway_core.event_catalog; "
        "heavy = {'pydantic', 'jsonschema', 'boto3', 'botocore'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={"PYTHONPATH": str(ROOT / "layers")}, capture_output=True
    )
    assert result.returncode == 0, result.stderr.decode()


def test_the_published_schemas_stay_open_for_later_members() -> None:
    data = {"client": {**make_client().public(), "added_later": 1}, "actor": {"client_id": "a", "request_id": "r"}}
    Draft202012Validator(EVENT_TYPES["client.created"].schema).validate(data)
    assert "additionalProperties" not in str(EVENT_TYPES["client.created"].schema)
    assert copy.deepcopy(EVENT_TYPES["client.created"].schema) == EVENT_TYPES["client.created"].schema


# -- subscriptions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["*"], "key.rotated", True),
        (["*"], "payment.refund.created", True),
        (["key.rotated"], "key.rotated", True),
        (["key.rotated"], "key.revoked", False),
        (["key.*"], "key.revoked", True),
        (["key.*"], "keys.revoked", False),
        (["key.*"], "key", False),
        (["client.*"], "key.created", False),
        (["payment.*"], "payment.refund.created", True),  # a trailing .* takes every depth
        (["payment.refund.*"], "payment.refund.created", True),
        (["payment.refund.*"], "payment.refunded", False),
        (["message.*"], "message.attempt.exhausted", True),
        (["key.rot*"], "key.rotated", False),  # no partial-segment wildcards
        ([], "key.rotated", False),
        (["route.created", "key.*"], "key.created", True),
        (["route.created", "client.*"], "key.created", False),
    ],
)
def test_matching_types_against_patterns(patterns: list[str], event_type: str, expected: bool) -> None:
    assert matches_type(patterns, event_type) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "*",
        "key.rotated",
        "key.*",
        "message.*",
        "message.attempt.*",
        "message.attempt.exhausted",
        "endpoint.disabled",
        "payment.*",
        "payment.succeeded",
        "payment.refund.created",
        "integration.sync.*",
        "integration.sync.failed",
        "price.stale",
        "price.*",
    ],
)
def test_accepted_subscriptions(pattern: str) -> None:
    assert validate_subscription(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("key.deleted", "the key types are key.created, key.rotated, key.revoked"),
        ("client.created.*", "No event type starts with 'client.created.'"),
        ("message.attempt.failed", "Unknown event type 'message.attempt.failed'"),
        ("invoice.paid", "Unknown event family 'invoice'"),
        ("invoice.*", "Unknown event family 'invoice'; use '*' or one of client.*, key.*"),
        ("payment", "not an event type pattern"),  # a family is subscribed to as payment.*
        ("Key.rotated", "not an event type pattern"),
        ("key.*.x", "not an event type pattern"),
        ("key.rot*", "not an event type pattern"),
        ("key..rotated", "not an event type pattern"),
        ("**", "not an event type pattern"),
        (".*", "not an event type pattern"),
        ("", "not an event type pattern"),
        ("key.rotated ", "not an event type pattern"),
        ("payment." + "x" * 100, "at most 100 characters"),
    ],
)
def test_refused_subscriptions(pattern: str, message: str) -> None:
    error = validate_subscription(pattern)
    assert error is not None
    assert message in error


def test_the_unknown_family_message_lists_the_reserved_families_too() -> None:
    error = validate_subscription("foo.*")
    assert error is not None
    for family in FAMILIES:
        assert f"{family}.*" in error
