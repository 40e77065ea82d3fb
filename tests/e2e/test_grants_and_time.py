"""Issue 11, grants and time, through the local runtime (API Gateway's authorizer result cache
included): a key whose client lost a scope loses it on the very next request, everywhere (the
admin API, a rotation, a batch's sub-requests); an expired key, a rotated key past its grace and
an expired client's key are refused from their second although their Allow is still cached; a
rotated pair of keys shares the key's own rate budget."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningGateway
from tests.e2e.test_product import ADMIN_KEY
from tests.unit.test_names import fullwidth
from tests.upstreams import JsonUpstream

BASE = "/gw/grants"


@pytest.fixture(scope="module")
def gateway(product_gateway: RunningGateway) -> RunningGateway:
    return product_gateway


def admin(gateway: RunningGateway) -> httpx.Client:
    return gateway.client(headers={"x-api-key": ADMIN_KEY})


def new_client(gateway: RunningGateway, name: str, scopes: list[str], **extra: Any) -> str:
    with admin(gateway) as http:
        created = http.post(
            "/api/v1/clients/register",
            json={
                "name": name,
                "client_type": "integration",
                "contact_email": "ops@grants.example",
                "allowed_scopes": scopes,
                **extra,
            },
        )
    assert created.status_code == 201, created.text
    return str(created.json()["client_id"])


def new_key(gateway: RunningGateway, client_id: str, **extra: Any) -> tuple[str, str]:
    with admin(gateway) as http:
        created = http.post("/api/v1/gateway/keys", json={"client_id": client_id, "name": "grants", **extra})
    assert created.status_code == 201, created.text
    return str(created.json()["key_id"]), str(created.json()["api_key"])


def change_client(gateway: RunningGateway, client_id: str, **fields: Any) -> None:
    with admin(gateway) as http:
        etag = http.get(f"/api/v1/clients/{client_id}").headers["ETag"]
        changed = http.put(f"/api/v1/clients/{client_id}", json=fields, headers={"If-Match": etag})
    assert changed.status_code == 200, changed.text


def rotate(gateway: RunningGateway, key_id: str, **body: Any) -> dict[str, Any]:
    with admin(gateway) as http:
        rotation = http.post(f"/api/v1/gateway/keys/{key_id}/rotate", json=body)
    assert rotation.status_code == 201, rotation.text
    answer: dict[str, Any] = rotation.json()
    return answer


def get(gateway: RunningGateway, path: str, key: str) -> httpx.Response:
    with gateway.client() as http:
        return http.get(path, headers={"x-api-key": key})


def soon(seconds: float) -> tuple[str, float]:
    """An ISO time `seconds` ahead, and when (epoch) to call again to be past it."""
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds"), moment.timestamp() + 0.5


def wait_until(epoch: float) -> None:
    time.sleep(max(0.0, epoch - time.time()))


def assert_expired(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "credential_expired"


@pytest.fixture(scope="module")
def routes(gateway: RunningGateway) -> Iterator[JsonUpstream]:
    """A gateway under /gw/grants: one route that needs banking:read, one any key may call."""
    upstream = JsonUpstream(name="grants")
    with admin(gateway) as http:
        created = http.post("/api/v1/gateways", json={"name": "grants and time", "base_path": "/grants"})
        assert created.status_code == 201, created.text
        gateway_id = created.json()["gateway_id"]
        for spec in (
            {"name": "accounts", "method": "GET", "path": "/accounts/{id}", "required_scopes": ["banking:read"]},
            {"name": "open", "method": "GET", "path": "/open"},
        ):
            made = http.post(
                "/api/v1/gateway/routes", json={"gateway_id": gateway_id, "targets": [{"url": upstream.url}], **spec}
            )
            assert made.status_code == 201, made.text
        deployed = http.post(f"/api/v1/gateways/{gateway_id}/deploy", json={"description": "grants"})
        assert deployed.status_code == 201, deployed.text
    yield upstream
    upstream.close()


# --- privilege that outlived its grant -------------------------------------------------------


def test_the_admin_api_refuses_a_key_whose_client_lost_admin_on_the_very_next_request(
    gateway: RunningGateway,
) -> None:
    # Given a client allowed admin, and its key, used on the admin API (its Allow now cached)
    client_id = new_client(gateway, "Delegated Admin Ltd", ["admin", "data:read"])
    key_id, key = new_key(gateway, client_id)
    assert get(gateway, "/api/v1/clients", key).status_code == 200

    # When the client loses admin
    change_client(gateway, client_id, allowed_scopes=["data:read"])

    # Then the very next request with the same key is refused
    refused = get(gateway, "/api/v1/clients", key)
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    assert get(gateway, "/api/v1/whoami", key).json()["scopes"] == ["data:read"]

    # And a rotation hands on only what the client still allows
    rotation = rotate(gateway, key_id)
    assert rotation["new_key"]["scopes"] == ["data:read"]
    new = rotation["new_key"]["api_key"]
    assert get(gateway, "/api/v1/clients", new).status_code == 403
    assert get(gateway, "/api/v1/whoami", new).json()["scopes"] == ["data:read"]


def test_a_batch_sub_request_holds_only_what_the_client_still_allows(
    gateway: RunningGateway, routes: JsonUpstream
) -> None:
    client_id = new_client(gateway, "Batch Reader Bank", ["banking:read", "data:read"])
    _, key = new_key(gateway, client_id)
    batch = {"requests": [{"id": "acc", "method": "GET", "path": f"{BASE}/accounts/1"}]}

    with gateway.client(headers={"x-api-key": key}) as http:
        before = http.post("/api/v1/batch", json=batch)
        change_client(gateway, client_id, allowed_scopes=["data:read"])
        after = http.post("/api/v1/batch", json=batch)
        direct = http.get(f"{BASE}/accounts/1")

    assert before.status_code == 200, before.text
    assert before.json()["responses"][0]["status"] == 200
    answer = after.json()["responses"][0]
    assert answer["status"] == 403
    assert answer["body"]["code"] == "insufficient_scope"
    assert direct.status_code == 403


# --- time through caches ---------------------------------------------------------------------


def test_an_expired_key_is_refused_from_its_second_although_its_allow_is_cached(gateway: RunningGateway) -> None:
    client_id = new_client(gateway, "Short Lived Key Fund", ["data:read"])
    expires_at, past = soon(3)
    key_id, key = new_key(gateway, client_id, expires_at=expires_at)
    assert get(gateway, "/api/v1/whoami", key).status_code == 200  # cached by the API key authorizer
    assert get(gateway, f"/api/v1/gateway/keys/{key_id}", ADMIN_KEY).json()["status"] == "active"

    wait_until(past)

    assert_expired(get(gateway, "/api/v1/whoami", key))
    # Its record says what it is now, in the key and in its client's listing.
    assert get(gateway, f"/api/v1/gateway/keys/{key_id}", ADMIN_KEY).json()["status"] == "expired"
    listing = get(gateway, f"/api/v1/gateway/keys?client_id={client_id}", ADMIN_KEY).json()["items"]
    assert [(k["key_id"], k["status"]) for k in listing] == [(key_id, "expired")]


def test_a_rotated_key_is_refused_when_its_grace_ends_although_its_allow_is_cached(gateway: RunningGateway) -> None:
    client_id = new_client(gateway, "Rotating Grace Fund", ["data:read"])
    key_id, key = new_key(gateway, client_id)
    assert get(gateway, "/api/v1/whoami", key).status_code == 200

    rotation = rotate(gateway, key_id, grace_seconds=3)
    past = datetime.fromisoformat(rotation["old_key"]["grace_until"]).timestamp() + 0.5
    assert get(gateway, "/api/v1/whoami", key).status_code == 200  # within its grace: cached again

    wait_until(past)

    assert_expired(get(gateway, "/api/v1/whoami", key))
    assert get(gateway, "/api/v1/whoami", rotation["new_key"]["api_key"]).status_code == 200
    assert get(gateway, f"/api/v1/gateway/keys/{key_id}", ADMIN_KEY).json()["status"] == "rotated"


def test_an_expired_clients_key_is_refused_from_its_second_although_its_allow_is_cached(
    gateway: RunningGateway, routes: JsonUpstream
) -> None:
    client_id = new_client(gateway, "Expiring Client Partners", ["data:read"])
    _, key = new_key(gateway, client_id)
    expires_at, past = soon(3)
    change_client(gateway, client_id, expires_at=expires_at)
    assert get(gateway, "/api/v1/whoami", key).status_code == 200
    assert get(gateway, f"{BASE}/open", key).status_code == 200

    wait_until(past)

    assert_expired(get(gateway, "/api/v1/whoami", key))
    # The data plane's authorizer is not cached; it refuses the expired client itself.
    refused = get(gateway, f"{BASE}/open", key)
    assert (refused.status_code, refused.json()["reason"]) == (403, "client_expired")


# --- one budget per key lineage ----------------------------------------------------------------


def test_a_rotated_pair_of_keys_shares_the_keys_own_rate_budget(gateway: RunningGateway, routes: JsonUpstream) -> None:
    # Given a key limited to 4 calls (per minute, hour and day alike: nothing refills meanwhile)
    client_id = new_client(gateway, "Budgeted Key Corp", ["data:read"])
    key_id, old = new_key(gateway, client_id, rate_limits={"per_minute": 4, "per_hour": 4, "per_day": 4})
    statuses = {"old": [get(gateway, f"{BASE}/open", old).status_code for _ in range(2)]}

    # When it is rotated and both keys call during the grace
    new = rotate(gateway, key_id)["new_key"]["api_key"]
    statuses["new"] = [get(gateway, f"{BASE}/open", new).status_code for _ in range(3)]
    statuses["old"] += [get(gateway, f"{BASE}/open", old).status_code for _ in range(2)]

    # Then together they get the key's 4 calls, not 4 each
    admitted = statuses["old"].count(200) + statuses["new"].count(200)
    assert admitted == 4, statuses
    assert statuses["old"][:2] == [200, 200]
    assert statuses["new"] == [200, 200, 429], statuses
    assert statuses["old"][2:] == [429, 429], statuses


# --- names that only look different -----------------------------------------------------------

REGISTRATION = {"client_type": "integration", "contact_email": "a@b.example", "allowed_scopes": ["data:read"]}


@pytest.mark.parametrize(
    "look_alike",
    ["Gr\u0430nt Names Ltd", "Grant\u200b Names Ltd", "  " + fullwidth("GRANT") + "  names ltd "],
    ids=["cyrillic-a", "zero-width-space", "fullwidth-case-spaces"],
)
def test_a_client_or_gateway_name_that_only_looks_different_is_a_conflict(
    gateway: RunningGateway, look_alike: str
) -> None:
    with admin(gateway) as http:
        first = http.post(
            "/api/v1/clients/register",
            json={"name": "Grant Names Ltd", **REGISTRATION},
        )
        assert first.status_code in (201, 409), first.text  # 409: registered by an earlier parameter
        client = http.post(
            "/api/v1/clients/register",
            json={"name": look_alike, **REGISTRATION},
        )
        made = http.post("/api/v1/gateways", json={"name": "Grant Names Gateway", "base_path": "/names-one"})
        assert made.status_code in (201, 409), made.text
        gateway_look_alike = look_alike.replace("Ltd", "Gateway").replace("ltd", "gateway")
        other = http.post("/api/v1/gateways", json={"name": gateway_look_alike, "base_path": "/names-two"})

    assert (client.status_code, client.json()["code"]) == (409, "duplicate_name")
    assert (other.status_code, other.json()["code"]) == (409, "duplicate_gateway")


@pytest.mark.parametrize("name", ["Line\nBreak Bank", "Tab\tBank", "Nul\u0000Bank", "Separator\u2028Bank"])
def test_a_client_or_gateway_name_with_control_characters_is_refused_with_a_problem(
    gateway: RunningGateway, name: str
) -> None:
    with admin(gateway) as http:
        client = http.post(
            "/api/v1/clients/register",
            json={"name": name, **REGISTRATION},
        )
        made = http.post("/api/v1/gateways", json={"name": name, "base_path": "/control-names"})

    for response in (client, made):
        assert response.status_code in (400, 422), response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert client.json()["code"] == "invalid_name"
