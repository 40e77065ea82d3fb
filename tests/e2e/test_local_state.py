"""`make local` keeps its data across a restart: clients, keys, gateways and the admin key come
back after a stop (SIGTERM, like Ctrl-C), and `--fresh` really starts empty. Runtimes of its own,
on one state directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.conftest import RunningGateway, eventually, start_gateway, stop_gateway

# No admin key from the environment: the runtime generates one, then keeps it.
CLEAN_ENV = {"GATEWAY_ADMIN_KEY": "", "LOCAL_FRESH": ""}


def admin_key(state: Path) -> str:
    return str(json.loads((state / "admin.json").read_text())["api_key"])


def get(gateway: RunningGateway, path: str, key: str) -> Any:
    with gateway.client() as http:
        return http.get(path, headers={"x-api-key": key})


def register(gateway: RunningGateway, key: str, name: str) -> str:
    with gateway.client(headers={"x-api-key": key}) as http:
        created = http.post(
            "/api/v1/clients/register",
            json={
                "name": name,
                "client_type": "integration",
                "contact_email": "ops@restart.example",
                "allowed_scopes": ["data:read"],
            },
        )
    assert created.status_code == 201, created.text
    return str(created.json()["client_id"])


def test_data_survives_a_restart_and_fresh_starts_empty(tmp_path: Path) -> None:
    # Given a runtime where an admin registered a client, gave it a key and defined a gateway
    first = start_gateway(tmp_path, env=CLEAN_ENV)
    try:
        admin = admin_key(tmp_path)
        assert admin in "".join(first.output)  # a new key: shown in full, once
        client_id = register(first, admin, "Restart Bank")
        with first.client(headers={"x-api-key": admin}) as http:
            client_key = http.post("/api/v1/gateway/keys", json={"client_id": client_id, "name": "k"}).json()["api_key"]
            gateway_id = http.post("/api/v1/gateways", json={"name": "kept", "base_path": "/kept"}).json()["gateway_id"]
    finally:
        stop_gateway(first)
    assert first.process.returncode == 0, "".join(first.output[-30:])

    # When it is started again on the same state directory
    second = start_gateway(tmp_path, env=CLEAN_ENV)
    try:
        # Then the same admin key works (kept, and no longer printed in full), and so does the rest
        assert admin_key(tmp_path) == admin
        banner = "".join(second.output)
        assert "kept from the last run" in banner
        assert admin not in banner
        assert get(second, "/api/v1/whoami", admin).json()["scopes"] == ["admin"]
        assert get(second, f"/api/v1/clients/{client_id}", admin).json()["name"] == "Restart Bank"
        assert get(second, "/api/v1/whoami", client_key).json()["client_id"] == client_id
        assert get(second, f"/api/v1/gateways/{gateway_id}", admin).status_code == 200
        events = get(second, "/api/v1/audit/events", admin).json()["items"]
        assert "client.register" in [e["action"] for e in events]
        # And what this run writes is saved while it runs, not only at the stop
        later = register(second, admin, "Saved While Running")
        eventually(lambda: later in (tmp_path / "dynamodb.json").read_text(), timeout=15)
    finally:
        stop_gateway(second)

    # When it is started with --fresh, nothing of before is there, and the old admin key is gone
    third = start_gateway(tmp_path, "--fresh", env=CLEAN_ENV)
    try:
        assert "starting clean" in "".join(third.output)
        fresh_admin = admin_key(tmp_path)
        assert fresh_admin != admin
        assert get(third, "/api/v1/whoami", admin).status_code == 401
        assert get(third, "/api/v1/whoami", client_key).status_code == 401
        assert get(third, f"/api/v1/clients/{client_id}", fresh_admin).status_code == 404
        assert get(third, "/api/v1/clients", fresh_admin).json()["items"] == []
    finally:
        stop_gateway(third)
