"""The global IP denylist through the local runtime, with callers on two loopback addresses."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import RunningGateway, start_gateway, stop_gateway
from tests.e2e.test_product import ADMIN_KEY


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    # No denylist cache in the authorizer container, so the test need not wait out its TTL.
    running = start_gateway(
        tmp_path_factory.mktemp("denylist"), "-c", "denylistCacheSeconds=0", env={"GATEWAY_ADMIN_KEY": ADMIN_KEY}
    )
    yield running
    stop_gateway(running)


def _from(gateway: RunningGateway, address: str) -> httpx.Client:
    return httpx.Client(
        base_url=gateway.base_url,
        transport=httpx.HTTPTransport(local_address=address),
        headers={"x-api-key": ADMIN_KEY},
        timeout=30,
    )


def test_a_denied_address_is_refused_whatever_the_key_and_the_change_is_audited(gateway: RunningGateway) -> None:
    with _from(gateway, "127.0.0.2") as other, _from(gateway, "127.0.0.1") as admin:
        assert other.get("/api/v1/whoami").status_code == 200  # cached Allow for (key, 127.0.0.2)
        bad = admin.put("/api/v1/gateway/ip-denylist", json={"cidrs": ["127.0.0.2/32", "nonsense"]})
        assert (bad.status_code, bad.json()["code"]) == (422, "invalid_cidr")
        assert admin.get("/api/v1/gateway/ip-denylist").json()["cidrs"] == []  # unchanged

        read = admin.get("/api/v1/gateway/ip-denylist")
        unconditional = admin.put("/api/v1/gateway/ip-denylist", json={"cidrs": ["127.0.0.2"]})
        assert (unconditional.status_code, unconditional.json()["code"]) == (428, "precondition_required")
        changed = admin.put(
            "/api/v1/gateway/ip-denylist",
            json={"cidrs": ["127.0.0.2", "2001:db8::/32"]},
            headers={"If-Match": read.headers["ETag"]},
        )
        assert changed.status_code == 200
        assert changed.headers["ETag"] == f'"{read.json()["version"] + 1}"'
        assert changed.json()["cidrs"] == ["127.0.0.2/32", "2001:db8::/32"]

        refused = other.get("/api/v1/whoami")  # the cached Allow was flushed
        assert refused.status_code == 403
        assert refused.json()["reason"] == "ip_denied"
        assert admin.get("/api/v1/whoami").status_code == 200

        emptied = admin.put(
            "/api/v1/gateway/ip-denylist", json={"cidrs": []}, headers={"If-Match": changed.headers["ETag"]}
        )
        assert emptied.status_code == 200, emptied.text
        assert other.get("/api/v1/whoami").status_code == 200
        audit = admin.get("/api/v1/audit/events", params={"target": "config/ip-denylist"}).json()["items"]
    assert [e["action"] for e in audit] == ["ip_denylist.update", "ip_denylist.update"]
