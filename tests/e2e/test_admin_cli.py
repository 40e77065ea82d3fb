"""`python -m infra.admin` against a running local runtime's moto, as an operator runs it against
AWS: a key it creates works on the admin API, is listed without its secret, rotates with both keys
working during the grace, and is refused at once when revoked; every step is audited."""

from __future__ import annotations

import getpass
import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from gateway_core.credentials import hash_api_key
from tests.e2e.conftest import ROOT, RunningGateway
from tests.e2e.test_product import ADMIN_KEY


@pytest.fixture(scope="module")
def gateway(product_gateway: RunningGateway) -> RunningGateway:
    return product_gateway


def cli(gateway: RunningGateway, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update({"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "PYTHONUNBUFFERED": "1"})
    return subprocess.run(
        [sys.executable, "-m", "infra.admin", "--endpoint-url", gateway.aws_endpoint, *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def status(gateway: RunningGateway, key: str, path: str = "/api/v1/clients") -> int:
    with gateway.client() as http:
        return http.get(path, headers={"x-api-key": key}).status_code


def audit(gateway: RunningGateway, target: str) -> list[dict[str, Any]]:
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        response = http.get("/api/v1/audit/events", params={"target": target})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_a_key_from_the_cli_administers_rotates_and_is_revoked(gateway: RunningGateway) -> None:
    # Given an admin key created from a terminal
    created = cli(gateway, "create-key", "--name", "e2e operator", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    secret, key_id = key["api_key"], key["key_id"]
    assert re.fullmatch(r"key_[0-9a-f]{32}", key_id)
    assert secret.startswith("gk_local_")
    assert secret not in created.stderr

    # Then it works on the admin API
    assert status(gateway, secret) == 200

    # And it is listed by prefix and last four, never by secret or hash
    listed = cli(gateway, "list-keys")
    assert listed.returncode == 0, listed.stderr
    assert key_id in listed.stdout
    assert f"gk_local_…{secret[-4:]}" in listed.stdout
    assert secret not in listed.stdout
    assert hash_api_key(secret) not in listed.stdout + listed.stderr

    # When it is rotated with a grace period, both keys work
    rotated = cli(gateway, "rotate-key", key_id, "--grace-seconds", "600", "--json")
    assert rotated.returncode == 0, rotated.stderr
    rotation = json.loads(rotated.stdout)
    new_secret, new_id = rotation["new_key"]["api_key"], rotation["new_key"]["key_id"]
    assert rotation["old_key"]["rotated_to"] == new_id
    assert status(gateway, secret) == 200  # also warms API Gateway's authorizer cache for it
    assert status(gateway, new_secret) == 200

    # When both are revoked, each is refused from the next request (the cache was flushed)
    for revoked_id, revoked_secret in ((key_id, secret), (new_id, new_secret)):
        revoked = cli(gateway, "revoke-key", revoked_id)
        assert revoked.returncode == 0, revoked.stderr
        assert "Authorizer cache flushed" in revoked.stderr
        assert status(gateway, revoked_secret) == 401
    assert status(gateway, ADMIN_KEY) == 200

    # And every step is in the audit trail, by the operator who ran the CLI
    actor = f"cli:{getpass.getuser()}"
    old_events = audit(gateway, f"key/{key_id}")
    new_events = audit(gateway, f"key/{new_id}")
    assert [e["action"] for e in old_events] == ["key.revoke", "key.rotate", "key.bootstrap_create"]
    assert [e["action"] for e in new_events] == ["key.revoke", "key.create"]
    assert {e["actor"] for e in old_events + new_events} == {actor}
    assert all(e["actor_credential"].startswith("cli:") for e in old_events)
    logged = "".join(gateway.output)
    assert secret not in logged
    assert new_secret not in logged


def test_the_runtime_bootstrapped_its_admin_key_through_the_same_path(gateway: RunningGateway) -> None:
    listed = cli(gateway, "list-keys", "--json")
    assert listed.returncode == 0, listed.stderr
    runtime_key = next(
        k for k in json.loads(listed.stdout) if k["prefix"] == "gk_local_" and k["last_four"] == ADMIN_KEY[-4:]
    )

    assert re.fullmatch(r"key_[0-9a-f]{32}", runtime_key["key_id"])  # a random id, not a fixed one
    assert runtime_key["client_id"] == "bootstrap-admin"
    saved = json.loads((gateway.state_dir / "admin.json").read_text())
    assert saved["key_id"] == runtime_key["key_id"]
    events = audit(gateway, f"key/{runtime_key['key_id']}")
    assert [e["action"] for e in events][-1] == "key.bootstrap_create"
    assert events[-1]["actor"].startswith("local-runtime:")


def test_refusals_are_clear_and_change_nothing(gateway: RunningGateway) -> None:
    missing = cli(gateway, "revoke-key", "key_nothere")
    wrong_stack = cli(gateway, "--stack", "NoSuchStack", "list-keys")

    assert (missing.returncode, missing.stdout) == (1, "")
    assert "(key_not_found)" in missing.stderr
    assert wrong_stack.returncode == 1
    assert "cannot read stack NoSuchStack" in wrong_stack.stderr
    assert status(gateway, ADMIN_KEY) == 200
