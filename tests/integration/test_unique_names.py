"""Issue 11: clients and gateways whose names only look different (normalisation, invisible
characters, another script's look-alike letters, spaces, case) are one name, decided by the stores'
name guards on moto; control characters are refused; nothing is written for a refused name."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from functions.routes.dal.clients_store import DynamoClientStore
from functions.routes.dal.gateways_store import DynamoGatewayStore
from functions.routes.logic import clients, gateway_admin
from functions.routes.logic.gateways import DeployRequest, GatewaySpec
from gateway_core.audit import Actor
from gateway_core.clock import utc_now
from gateway_core.errors import Conflict, ValidationFailed
from tests.integration.conftest import create_data_table
from tests.integration.helpers import REGION
from tests.unit.test_names import fullwidth

TABLE = "gateway-unique-names"
ADMIN = Actor("admin", "api_key", "k0", "req-0")

LOOK_ALIKES = [
    fullwidth("Acme Treasury"),  # fullwidth (NFKC)
    "Acme Tre\u0430sury",  # Cyrillic a
    "\u0410cme Treasury",  # Cyrillic capital A
    "Acme Treasur\u0443",  # Cyrillic u, which is a Latin y to the eye
    "Acme\u200b Treasury",  # zero-width space
    "Ac\u200dme Treasury",  # zero-width joiner
    "Ac\u00adme Treasury",  # soft hyphen
    "  Acme   Treasury ",  # spaces around and between
    "ACME TREASURY",
]
CONTROL = ["Acme\nTreasury", "Acme\tTreasury", "Acme\x00Treasury", "Acme\u2028Treasury", "Acme\x85Treasury"]


@pytest.fixture
def dynamodb(aws: None) -> Any:
    create_data_table(TABLE)
    return boto3.client("dynamodb", region_name=REGION)


def item_count(dynamodb: Any) -> int:
    return int(dynamodb.scan(TableName=TABLE, Select="COUNT")["Count"])


def spec(name: str) -> clients.ClientSpec:
    return clients.ClientSpec(
        name=name, client_type="integration", contact_email="ops@acme.example", allowed_scopes=["data:read"]
    )


def register(dynamodb: Any, name: str) -> clients.Client:
    return clients.register(DynamoClientStore(dynamodb, TABLE), spec(name), ADMIN, utc_now(), "test")[0]


# --- clients ----------------------------------------------------------------------------------


@pytest.mark.parametrize("look_alike", LOOK_ALIKES)
def test_given_a_client_when_a_look_alike_name_registers_then_409_and_nothing_is_written(
    dynamodb: Any, look_alike: str
) -> None:
    register(dynamodb, "Acme Treasury")
    before = item_count(dynamodb)

    with pytest.raises(Conflict) as refused:
        register(dynamodb, look_alike)

    assert refused.value.code == "duplicate_name"
    assert item_count(dynamodb) == before


@pytest.mark.parametrize("name", CONTROL)
def test_given_a_client_name_with_control_characters_when_registered_then_422_and_nothing_is_written(
    dynamodb: Any, name: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        register(dynamodb, name)

    assert refused.value.code == "invalid_name"
    assert item_count(dynamodb) == 0


def test_given_a_client_name_when_registered_then_it_is_stored_normalised(dynamodb: Any) -> None:
    client = register(dynamodb, "  " + fullwidth("Nord") + "\u200b  Cafe\u0301 ")

    assert client.name == "Nord Café"
    stored = DynamoClientStore(dynamodb, TABLE).get(client.client_id)
    assert stored is not None
    assert stored.name == "Nord Café"


def test_given_two_clients_when_one_is_renamed_to_the_others_look_alike_then_409_and_nothing_changes(
    dynamodb: Any,
) -> None:
    register(dynamodb, "Acme Treasury")
    other = register(dynamodb, "Other Fund")
    store = DynamoClientStore(dynamodb, TABLE)

    with pytest.raises(Conflict) as refused:
        clients.update(store, other.client_id, {"name": "\u0410cme Tre\u0430sury"}, ADMIN, utc_now(), None)

    assert refused.value.code == "duplicate_name"
    assert store.get(other.client_id).name == "Other Fund"  # type: ignore[union-attr]


def test_given_a_client_when_renamed_to_a_look_alike_of_its_own_name_then_it_keeps_its_guard(dynamodb: Any) -> None:
    client = register(dynamodb, "Acme Treasury")
    store = DynamoClientStore(dynamodb, TABLE)

    renamed = clients.update(store, client.client_id, {"name": "ACME  TREASURY"}, ADMIN, utc_now(), None)

    assert renamed.name == "ACME TREASURY"
    with pytest.raises(Conflict):
        register(dynamodb, "acme tre\u0430sury")


# --- gateways ---------------------------------------------------------------------------------


def create_gateway(dynamodb: Any, name: str, base_path: str) -> Any:
    return gateway_admin.create_gateway(
        DynamoGatewayStore(dynamodb, TABLE), GatewaySpec(name=name, base_path=base_path), ADMIN, utc_now()
    )


@pytest.mark.parametrize(("index", "look_alike"), list(enumerate(LOOK_ALIKES)))
def test_given_a_gateway_when_a_look_alike_name_is_created_then_409_and_nothing_is_written(
    dynamodb: Any, index: int, look_alike: str
) -> None:
    create_gateway(dynamodb, "Acme Treasury", "/acme")
    before = item_count(dynamodb)

    with pytest.raises(Conflict) as refused:
        create_gateway(dynamodb, look_alike, f"/other-{index}")

    assert refused.value.code == "duplicate_gateway"
    assert item_count(dynamodb) == before


@pytest.mark.parametrize("name", CONTROL)
def test_given_a_gateway_name_with_control_characters_when_given_then_it_is_invalid(name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        GatewaySpec(name=name)

    assert refused.value.errors()[0]["loc"] == ("name",)


def test_given_a_gateway_name_when_created_then_it_is_stored_normalised(dynamodb: Any) -> None:
    gateway = create_gateway(dynamodb, "\u202a" + fullwidth("Payments") + "\u202c  EU ", "/payments")

    assert gateway.name == "Payments EU"
    stored = DynamoGatewayStore(dynamodb, TABLE).gateway(gateway.gateway_id)
    assert stored is not None
    assert stored.name == "Payments EU"


def test_given_two_gateways_when_one_is_renamed_to_the_others_look_alike_then_409(dynamodb: Any) -> None:
    create_gateway(dynamodb, "Acme Treasury", "/acme")
    other = create_gateway(dynamodb, "Other", "/other")
    store = DynamoGatewayStore(dynamodb, TABLE)
    renamed = GatewaySpec(**{**other.spec(), "name": "Acm\u0435 Treasury"})

    with pytest.raises(Conflict) as refused:
        gateway_admin.update_gateway(store, other.gateway_id, renamed, ADMIN, utc_now(), None)

    assert refused.value.code == "duplicate_gateway"


def test_given_a_gateway_stored_with_a_name_refused_today_when_read_and_deployed_then_it_still_works(
    dynamodb: Any,
) -> None:
    # Given a gateway written before names were checked (its stored document edited to say so)
    gateway = create_gateway(dynamodb, "Old Name", "/old")
    key = {"PK": {"S": f"GATEWAY#{gateway.gateway_id}"}, "SK": {"S": "GATEWAY"}}
    doc = dynamodb.get_item(TableName=TABLE, Key=key)["Item"]["doc"]["S"]
    dynamodb.update_item(
        TableName=TABLE,
        Key=key,
        UpdateExpression="SET doc = :d",
        ExpressionAttributeValues={":d": {"S": doc.replace('"Old Name"', '"Old\\tName"')}},
    )
    store = DynamoGatewayStore(dynamodb, TABLE)

    # When it is read, listed and deployed, Then it loads as stored (a 500 otherwise)
    stored = store.gateway(gateway.gateway_id)
    assert stored is not None
    assert stored.name == "Old\tName"
    assert [g.name for g in store.gateways(10, None)[0]] == ["Old\tName"]
    deployed = gateway_admin.deploy(store, gateway.gateway_id, DeployRequest(), ADMIN, utc_now())
    assert deployed.deployment.active_version == 1
