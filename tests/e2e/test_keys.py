"""API keys through the local runtime: created by an admin, used, rotated with a grace period,
narrowed and revoked, with API Gateway's authorizer cache flushed as in AWS."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import RunningGateway
from tests.e2e.test_product import ADMIN_KEY


@pytest.fixture(scope="module")
def gateway(product_gateway: RunningGateway) -> RunningGateway:
    return product_gateway


@pytest.fixture(scope="module")
def client_id(gateway: RunningGateway) -> str:
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        response = http.post(
            "/api/v1/clients/register",
            json={
                "name": "Keys Test Fund",
                "client_type": "integration",
                "contact_email": "ops@fund.example",
                "allowed_scopes": ["data:read", "banking:read"],
                "tier": "basic",
            },
        )
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"])


def _admin(gateway: RunningGateway) -> Any:
    return gateway.client(headers={"x-api-key": ADMIN_KEY})


def _whoami(gateway: RunningGateway, key: str) -> Any:
    with gateway.client() as http:
        return http.get("/api/v1/whoami", headers={"x-api-key": key})


def test_key_is_shown_once_and_then_only_as_prefix_and_last_four(gateway: RunningGateway, client_id: str) -> None:
    with _admin(gateway) as http:
        created = http.post("/api/v1/gateway/keys", json={"client_id": client_id, "name": "reporting"})
        assert created.status_code == 201, created.text
        key = created.json()["api_key"]
        key_id = created.json()["key_id"]
        fetched = http.get(f"/api/v1/gateway/keys/{key_id}")
        listed = http.get("/api/v1/gateway/keys", params={"client_id": client_id})
    assert key.startswith("gk_live_")
    assert len(key) >= len("gk_live_") + 43  # 256 bits, urlsafe base64
    body = fetched.json()
    assert (body["prefix"], body["last_four"]) == ("gk_live_", key[-4:])
    assert key not in fetched.text
    assert key not in listed.text
    assert key_id in [k["key_id"] for k in listed.json()["items"]]
    assert sorted(body["scopes"]) == ["banking:read", "data:read"]
    who = _whoami(gateway, key)
    assert who.status_code == 200
    assert who.json()["client_id"] == client_id
    assert who.json()["tier"] == "basic"
    assert key not in "".join(gateway.output), "the key was logged"


def test_scopes_beyond_the_client_are_refused_and_nothing_is_created(gateway: RunningGateway, client_id: str) -> None:
    with _admin(gateway) as http:
        refused = http.post("/api/v1/gateway/keys", json={"client_id": client_id, "name": "x", "scopes": ["admin"]})
        listed = http.get("/api/v1/gateway/keys", params={"client_id": client_id}).json()["items"]
        missing = http.post("/api/v1/gateway/keys", json={"client_id": "cl_nobody", "name": "x"})
    assert (refused.status_code, refused.json()["code"]) == (422, "scope_not_allowed")
    assert refused.json()["not_allowed"] == ["admin"]
    assert all(k["name"] != "x" for k in listed)
    assert (missing.status_code, missing.json()["code"]) == (404, "client_not_found")


def test_rotation_keeps_the_old_key_for_its_grace_and_revocation_is_immediate(
    gateway: RunningGateway, client_id: str
) -> None:
    with _admin(gateway) as http:
        created = http.post("/api/v1/gateway/keys", json={"client_id": client_id, "name": "rotating"}).json()
        old_key, old_id = created["api_key"], created["key_id"]
        assert _whoami(gateway, old_key).status_code == 200  # now cached by the authorizer cache

        rotation = http.post(f"/api/v1/gateway/keys/{old_id}/rotate", json={})
        assert rotation.status_code == 201, rotation.text
        new_key = rotation.json()["new_key"]["api_key"]
        assert rotation.json()["old_key"]["rotated_to"] == rotation.json()["new_key"]["key_id"]
        assert rotation.json()["old_key"]["grace_until"] > rotation.json()["old_key"]["updated_at"]
        assert _whoami(gateway, old_key).status_code == 200  # within its 24 h grace
        assert _whoami(gateway, new_key).status_code == 200
        again = http.post(f"/api/v1/gateway/keys/{old_id}/rotate", json={})
        assert (again.status_code, again.json()["code"]) == (409, "key_already_rotated")

        revoked = http.delete(f"/api/v1/gateway/keys/{rotation.json()['new_key']['key_id']}")
        assert revoked.json()["status"] == "revoked"
    # The revocation flushed the cached authorizer result: refused at once, not after the TTL.
    assert _whoami(gateway, new_key).status_code == 401
    assert _whoami(gateway, old_key).status_code == 200


def test_rotation_without_grace_retires_the_old_key_at_once(gateway: RunningGateway, client_id: str) -> None:
    with _admin(gateway) as http:
        created = http.post("/api/v1/gateway/keys", json={"client_id": client_id, "name": "no-grace"}).json()
        assert _whoami(gateway, created["api_key"]).status_code == 200
        rotation = http.post(f"/api/v1/gateway/keys/{created['key_id']}/rotate", json={"grace_seconds": 0}).json()
    assert _whoami(gateway, created["api_key"]).status_code == 401
    assert _whoami(gateway, rotation["new_key"]["api_key"]).status_code == 200


def test_narrowing_scopes_takes_effect_at_once(gateway: RunningGateway, client_id: str) -> None:
    with _admin(gateway) as http:
        created = http.post("/api/v1/gateway/keys", json={"client_id": client_id, "name": "narrow"}).json()
        assert sorted(_whoami(gateway, created["api_key"]).json()["scopes"]) == ["banking:read", "data:read"]
        path = f"/api/v1/gateway/keys/{created['key_id']}"
        changed = http.put(path, json={"scopes": ["data:read"]}, headers={"If-Match": http.get(path).headers["ETag"]})
        assert changed.status_code == 200
        audit = http.get("/api/v1/audit/events", params={"target": f"key/{created['key_id']}"}).json()["items"]
    assert _whoami(gateway, created["api_key"]).json()["scopes"] == ["data:read"]
    assert [e["action"] for e in audit] == ["key.update", "key.create"]


def _new_client(gateway: RunningGateway, name: str, **extra: Any) -> str:
    with _admin(gateway) as http:
        response = http.post(
            "/api/v1/clients/register",
            json={
                "name": name,
                "client_type": "integration",
                "contact_email": "ops@example.com",
                "allowed_scopes": ["data:read"],
                **extra,
            },
        )
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"])


def _key_for(gateway: RunningGateway, client: str) -> str:
    with _admin(gateway) as http:
        created = http.post("/api/v1/gateway/keys", json={"client_id": client, "name": "k"})
    assert created.status_code == 201, created.text
    return str(created.json()["api_key"])


def test_suspending_a_client_stops_its_keys_at_once_with_a_reason(gateway: RunningGateway) -> None:
    client = _new_client(gateway, "Suspended Later Ltd")
    key = _key_for(gateway, client)
    assert _whoami(gateway, key).status_code == 200
    with _admin(gateway) as http:
        assert http.post(f"/api/v1/clients/{client}/suspend").status_code == 200
        refused = _whoami(gateway, key)
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["reason"] == "client_not_active"
        assert http.post(f"/api/v1/clients/{client}/reactivate").status_code == 200
        assert _whoami(gateway, key).status_code == 200
        assert http.delete(f"/api/v1/clients/{client}").status_code == 204
    assert _whoami(gateway, key).json()["reason"] == "client_not_active"


def test_ip_allowlist_is_enforced_and_its_changes_apply_at_once(gateway: RunningGateway) -> None:
    # Given a client that may call only from a documentation network, not from 127.0.0.1
    client = _new_client(gateway, "Allowlisted Bank", ip_allowlist=["203.0.113.0/24", "2001:db8::/32"])
    key = _key_for(gateway, client)
    refused = _whoami(gateway, key)
    assert refused.status_code == 403
    assert refused.json()["reason"] == "ip_not_allowed"
    # When loopback is added, Then the same key works at once (the cached Deny was flushed)
    with _admin(gateway) as http:
        etag = http.get(f"/api/v1/clients/{client}").headers["ETag"]
        changed = http.put(
            f"/api/v1/clients/{client}",
            json={"ip_allowlist": ["203.0.113.0/24", "127.0.0.1/32"]},
            headers={"If-Match": etag},
        )
    assert changed.status_code == 200
    assert _whoami(gateway, key).status_code == 200
