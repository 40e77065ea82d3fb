"""The admin CLI (`python -m infra.admin`) and its key logic against moto: keys are stored hashed
with random ids and an audit event in the same transaction, never overwrite anything, are shown
once and never as a hash; rotation and revocation are the keys API's, checked by the real API key
authorizer; the local runtime's bootstrap goes through the same code."""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
import pytest

from functions.authorizer.core import Denied
from functions.routes.dal.clients_store import DynamoClientStore
from functions.routes.dal.keys_store import DynamoKeyStore
from functions.routes.logic import clients as client_rules
from functions.routes.logic import keys as key_rules
from functions.routes.logic.clients import ClientSpec
from gateway_core.audit import Actor
from gateway_core.clock import utc_now
from gateway_core.credentials import hash_api_key
from gateway_core.errors import Conflict, ValidationFailed
from infra.admin import keys as admin_keys
from infra.admin.__main__ import main
from infra.admin.deployment import Aws, DeploymentError, resolve
from infra.admin.keys import AdminKeys, BootstrapRefused, bootstrap_key, operator_actor
from tests.integration.conftest import create_data_table, table_items
from tests.integration.helpers import REGION

TABLE = "gateway-admin-cli"
API_ACTOR = Actor("bootstrap-admin", "api_key", "key_x", "req-1")
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def dynamodb(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    create_data_table(TABLE)
    monkeypatch.setenv("TABLE_NAME", TABLE)  # the authorizer reads the same table
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def cli(dynamodb: Any, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run the CLI in process against the moto table: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--table", TABLE, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def authorize(key: str) -> dict[str, Any]:
    """The deployed API key authorizer's decision on a key (raises Denied when refused)."""
    from functions.authorizer.api_key_handler import lambda_handler

    event = {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/api/v1/clients",
        "headers": {"x-api-key": key},
    }
    return dict(lambda_handler(event, None))


def audit_events(dynamodb: Any, key_id: str) -> list[dict[str, Any]]:
    found = dynamodb.query(
        TableName=TABLE,
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"AUDIT#TARGET#key/{key_id}"}},
        ScanIndexForward=False,
    )["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in found]


def created(cli: Cli, *args: str) -> dict[str, Any]:
    code, out, err = cli("create-key", "--json", *args)
    assert code == 0, err
    return dict(json.loads(out))


def test_create_key_shows_the_key_once_and_stores_only_its_hash(cli: Cli, dynamodb: Any) -> None:
    # When an operator creates the first admin key
    code, out, err = cli("create-key")

    # Then stdout holds the key alone (KEY=$(python -m infra.admin create-key) works)...
    assert code == 0, err
    key = out.strip()
    assert re.fullmatch(r"gk_live_[A-Za-z0-9_-]{43}", key), out
    assert key not in err
    assert "shown once" in err
    # ...the table holds its hash, never the key, and the authorizer accepts it as an admin
    items = json.dumps(table_items(dynamodb, TABLE))
    assert key not in items
    assert hash_api_key(key) in items
    context = authorize(key)["context"]
    assert (context["client_id"], context["scopes"], context["tier"]) == ("bootstrap-admin", "admin", "enterprise")


def test_created_keys_get_random_ids_and_their_audit_event_in_the_same_transaction(cli: Cli, dynamodb: Any) -> None:
    first, second = created(cli), created(cli, "--name", "second admin")

    assert first["key_id"] != second["key_id"]
    assert all(re.fullmatch(r"key_[0-9a-f]{32}", k["key_id"]) for k in (first, second))
    assert first["api_key"] != second["api_key"]
    assert second["name"] == "second admin"
    events = audit_events(dynamodb, first["key_id"])
    assert [e["action"] for e in events] == ["key.bootstrap_create"]
    assert events[0]["actor"] == f"cli:{getpass.getuser()}"
    assert events[0]["actor_credential"].startswith("cli:")
    assert events[0]["after_hash"]
    assert "before_hash" not in events[0]


def test_create_refuses_to_overwrite_an_existing_key(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = AdminKeys(dynamodb, TABLE)
    actor = operator_actor("cli")
    given = "gk_live_" + "A" * 43
    admin.create(actor=actor, now=utc_now(), environment="live", secret=given)
    before = table_items(dynamodb, TABLE)

    # The same secret again: the lookup item exists
    with pytest.raises(Conflict) as same_secret:
        admin.create(actor=actor, now=utc_now(), environment="live", secret=given)
    # Another secret under an existing key id: the pointer exists
    existing_id = admin.admin_keys()[0].key_id.removeprefix("key_")
    monkeypatch.setattr(admin_keys.uuid, "uuid4", lambda: type("U", (), {"hex": existing_id})())
    with pytest.raises(Conflict) as same_id:
        admin.create(actor=actor, now=utc_now(), environment="live")

    assert same_secret.value.code == same_id.value.code == "key_exists"
    assert table_items(dynamodb, TABLE) == before  # not a byte changed, no audit event either


def test_a_given_key_must_be_long_and_printable(dynamodb: Any) -> None:
    admin = AdminKeys(dynamodb, TABLE)
    for bad in ("gk_live_short", "gk_live_" + "a" * 30 + " with space"):
        with pytest.raises(ValidationFailed):
            admin.create(actor=operator_actor("cli"), now=utc_now(), environment="live", secret=bad)
    assert table_items(dynamodb, TABLE) == []


def test_a_registered_client_gets_an_admin_key_only_when_allowed_and_the_key_follows_it(
    cli: Cli, dynamodb: Any
) -> None:
    store = DynamoClientStore(dynamodb, TABLE)
    spec: dict[str, Any] = {"client_type": "integration", "contact_email": "ops@bank.example", "tier": "basic"}
    plain, _ = client_rules.register(
        store, ClientSpec(name="Plain", allowed_scopes=["data:read"], **spec), API_ACTOR, utc_now(), "test"
    )
    ops, _ = client_rules.register(
        store,
        ClientSpec(name="Ops", allowed_scopes=["admin"], ip_allowlist=["127.0.0.1/32"], **spec),
        API_ACTOR,
        utc_now(),
        "test",
    )

    refused = cli("create-key", "--client-id", plain.client_id)
    allowed = created(cli, "--client-id", ops.client_id)

    assert refused[0] == 1
    assert "scope_not_allowed" in refused[2]
    assert refused[1] == ""
    assert (allowed["client_id"], allowed["tier"], allowed["ip_allowlist"]) == (
        ops.client_id,
        "basic",
        ["127.0.0.1/32"],
    )


def test_list_keys_shows_admin_keys_with_prefix_and_last_four_only(cli: Cli, dynamodb: Any) -> None:
    admin_key = created(cli, "--name", "ops")
    store = DynamoKeyStore(dynamodb, TABLE)
    client, _ = client_rules.register(
        DynamoClientStore(dynamodb, TABLE),
        ClientSpec(name="Reader", client_type="integration", contact_email="a@b.example", allowed_scopes=["data:read"]),
        API_ACTOR,
        utc_now(),
        "test",
    )
    reader, reader_secret = key_rules.create(
        store,
        DynamoClientStore(dynamodb, TABLE),
        client_id=client.client_id,
        name="reader",
        scopes=None,
        expires_at=None,
        rate_limits=None,
        actor=API_ACTOR,
        now=utc_now(),
        environment="test",
    )

    code, text, _ = cli("list-keys")
    _, as_json, _ = cli("list-keys", "--json")

    assert code == 0
    assert admin_key["key_id"] in text
    assert f"gk_live_…{admin_key['api_key'][-4:]}" in text
    assert reader.key_id not in text + as_json  # not an admin key
    listed = json.loads(as_json)
    assert [k["key_id"] for k in listed] == [admin_key["key_id"]]
    assert "key_hash" not in listed[0]
    for secret in (admin_key["api_key"], reader_secret):
        assert secret not in text + as_json
        assert hash_api_key(secret) not in text + as_json


def test_rotation_keeps_the_old_key_for_its_grace_and_is_audited(cli: Cli, dynamodb: Any) -> None:
    old = created(cli)

    code, out, err = cli("rotate-key", old["key_id"], "--grace-seconds", "600", "--json")

    assert code == 0, err
    rotation = json.loads(out)
    new = rotation["new_key"]
    assert rotation["old_key"]["rotated_to"] == new["key_id"]
    assert rotation["old_key"]["grace_until"] > rotation["old_key"]["updated_at"]
    assert new["api_key"].startswith("gk_live_")  # the old key's environment
    assert (new["client_id"], new["scopes"], new["tier"]) == ("bootstrap-admin", ["admin"], "enterprise")
    assert "key_hash" not in new
    assert "key_hash" not in rotation["old_key"]
    # Both work during the grace, as the authorizer decides
    assert authorize(old["api_key"])["context"]["credential_id"] == old["key_id"]
    assert authorize(new["api_key"])["context"]["credential_id"] == new["key_id"]
    assert [e["action"] for e in audit_events(dynamodb, old["key_id"])] == ["key.rotate", "key.bootstrap_create"]
    assert [e["action"] for e in audit_events(dynamodb, new["key_id"])] == ["key.create"]
    # A rotation with a grace flushes too (the old key's cached Allows do not know the grace)
    assert "Could not flush the authorizer cache" in err  # no stack here: it says so
    # The keys API's rules: a key is rotated once
    again = cli("rotate-key", old["key_id"])
    assert again[0] == 1
    assert "key_already_rotated" in again[2]


def test_rotation_without_grace_retires_the_old_key_at_once(cli: Cli) -> None:
    old = created(cli)

    code, out, err = cli("rotate-key", old["key_id"], "--grace-seconds", "0")

    assert code == 0, err
    with pytest.raises(Denied):
        authorize(old["api_key"])
    assert authorize(out.strip())["principalId"] == "bootstrap-admin"
    assert "Could not flush the authorizer cache" in err  # no stack here: it says so


def test_revocation_is_immediate_audited_and_says_when_the_cache_cannot_be_flushed(cli: Cli, dynamodb: Any) -> None:
    key = created(cli)

    code, out, err = cli("revoke-key", key["key_id"])

    assert code == 0, err
    assert f"Revoked {key['key_id']}" in out
    assert "Could not flush the authorizer cache (the stack's REST API id or stage is unknown)" in err
    with pytest.raises(Denied):
        authorize(key["api_key"])
    assert [e["action"] for e in audit_events(dynamodb, key["key_id"])] == ["key.revoke", "key.bootstrap_create"]
    assert cli("revoke-key", key["key_id"])[0] == 0  # idempotent, as the keys API's


def test_keys_that_are_not_admin_keys_or_do_not_exist_are_refused(cli: Cli, dynamodb: Any) -> None:
    client, _ = client_rules.register(
        DynamoClientStore(dynamodb, TABLE),
        ClientSpec(name="Other", client_type="integration", contact_email="a@b.example", allowed_scopes=["data:read"]),
        API_ACTOR,
        utc_now(),
        "test",
    )
    reader, secret = key_rules.create(
        DynamoKeyStore(dynamodb, TABLE),
        DynamoClientStore(dynamodb, TABLE),
        client_id=client.client_id,
        name="reader",
        scopes=None,
        expires_at=None,
        rate_limits=None,
        actor=API_ACTOR,
        now=utc_now(),
        environment="test",
    )

    for command in ("rotate-key", "revoke-key"):
        code, out, err = cli(command, reader.key_id)
        assert (code, out) == (1, "")
        assert "not_an_admin_key" in err
        assert cli(command, "key_missing")[2].strip().endswith("(key_not_found)")
    assert authorize(secret)["principalId"] == client.client_id


def test_no_output_of_any_command_carries_a_hash(cli: Cli) -> None:
    key = created(cli)
    outputs = [json.dumps(key)]
    for args in (("list-keys",), ("list-keys", "--json")):
        _, out, err = cli(*args)
        outputs.append(out + err)
    _, out, err = cli("rotate-key", key["key_id"], "--json")
    rotated = json.loads(out)
    outputs.append(out + err)
    _, out, err = cli("revoke-key", rotated["new_key"]["key_id"], "--json")
    outputs.append(out + err)

    everything = "\n".join(outputs)
    for secret in (key["api_key"], rotated["new_key"]["api_key"]):
        assert hash_api_key(secret) not in everything
    assert not re.search(r"[0-9a-f]{64}", everything)


def _stack(api: bool = True) -> None:
    resources: dict[str, Any] = {
        "DataTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
                "AttributeDefinitions": [
                    {"AttributeName": "PK", "AttributeType": "S"},
                    {"AttributeName": "SK", "AttributeType": "S"},
                ],
                "BillingMode": "PAY_PER_REQUEST",
            },
        }
    }
    outputs: dict[str, Any] = {"TableName": {"Value": {"Ref": "DataTable"}}}
    if api:
        resources["Api"] = {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "gateway"}}
        outputs["ApiUrl"] = {
            "Value": {"Fn::Join": ["", ["https://", {"Ref": "Api"}, ".execute-api.us-east-1.amazonaws.com/live/"]]}
        }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="FinanceGateway", TemplateBody=json.dumps({"Resources": resources, "Outputs": outputs})
    )


def test_the_table_api_and_stage_come_from_the_stack(aws: None) -> None:
    _stack()
    deployment = resolve(Aws(None, None), "FinanceGateway", None)
    rest_api = boto3.client("apigateway", region_name=REGION).get_rest_apis()["items"][0]["id"]
    table = boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"][0]

    assert (deployment.table, deployment.rest_api_id, deployment.stage) == (table, rest_api, "live")
    assert deployment.environment == "live"
    assert resolve(Aws(None, None), "FinanceGateway", "other-table").table == "other-table"


def test_a_missing_stack_or_output_is_a_clear_error(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DeploymentError, match="cannot read stack Nope"):
        resolve(Aws(None, None), "Nope", None)
    assert main(["--stack", "Nope", "list-keys"]) == 1
    assert "give --stack and --region" in capsys.readouterr().err


def test_options_go_before_or_after_the_command(cli: Cli) -> None:
    code, out, _ = cli("list-keys", "--json")
    assert (code, json.loads(out)) == (0, [])
    assert main(["list-keys", "--table", TABLE, "--json"]) == 0


def test_the_local_runtime_bootstrap_stores_keeps_or_refuses_keys_through_the_same_path(dynamodb: Any) -> None:
    admin = AdminKeys(dynamodb, TABLE)
    actor = operator_actor("local-runtime")
    now = utc_now()

    def boot(given: str | None = None, saved: str | None = None) -> admin_keys.BootstrapKey:
        return bootstrap_key(admin, given=given, saved=saved, actor=actor, now=now, environment="local")

    generated = boot()
    kept = boot(saved=generated.secret)
    given = boot(given="gk_local_" + "G" * 43)
    given_again = boot(given="gk_local_" + "G" * 43)

    assert (generated.new, generated.source) == (True, "generated")
    assert generated.secret.startswith("gk_local_")
    assert (kept.new, kept.source, kept.key.key_id) == (False, "kept from the last run", generated.key.key_id)
    assert (given.new, given.source) == (True, "from GATEWAY_ADMIN_KEY")
    assert (given_again.new, given_again.key.key_id) == (False, given.key.key_id)
    assert len(admin.admin_keys()) == 2
    assert [e["action"] for e in audit_events(dynamodb, generated.key.key_id)] == ["key.bootstrap_create"]
    assert audit_events(dynamodb, given.key.key_id)[0]["actor"].startswith("local-runtime:")

    # A saved key that was revoked meanwhile is replaced; a given one is refused with a reason
    admin.revoke(generated.key.key_id, actor=actor, now=now)
    admin.revoke(given.key.key_id, actor=actor, now=now)
    replaced = boot(saved=generated.secret)
    assert replaced.new
    assert replaced.key.key_id != generated.key.key_id
    with pytest.raises(BootstrapRefused, match="revoked, rotated or expired"):
        boot(given="gk_local_" + "G" * 43)
    with pytest.raises(BootstrapRefused, match="GATEWAY_ADMIN_KEY: An API key has at least 32"):
        boot(given="too-short")


def test_a_rotated_bootstrap_key_is_not_kept(dynamodb: Any) -> None:
    admin = AdminKeys(dynamodb, TABLE)
    actor = operator_actor("cli")
    first = bootstrap_key(admin, given=None, saved=None, actor=actor, now=utc_now(), environment="local")
    admin.rotate(first.key.key_id, timedelta(hours=1), actor=actor, now=utc_now(), environment="local")

    second = bootstrap_key(admin, given=None, saved=first.secret, actor=actor, now=utc_now(), environment="local")

    assert second.new
    assert second.key.key_id != first.key.key_id
