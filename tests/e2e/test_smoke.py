"""`make smoke` (`python -m infra.smoke`) against the local runtime: the whole journey passes,
each step printed, what it created removed; a failure stops it with a non-zero exit."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT, RunningGateway
from tests.e2e.test_product import ADMIN_KEY

STEPS = (
    "health",
    "PATCH health (405 with Allow)",
    "whoami (admin key)",
    "register a client",
    "create an API key for it",
    "whoami (the new key)",
    "token (client credentials)",
    "whoami/token (the token)",
    "create a gateway",
    "create a route",
    "deploy the gateway",
    "GET /gw/smoke-",
    "delete the route",
    "delete the gateway",
    "revoke the key",
    "the revoked key is refused",
    "delete the client",
)


@pytest.fixture(scope="module")
def gateway(product_gateway: RunningGateway) -> RunningGateway:
    return product_gateway


def smoke(gateway: RunningGateway, admin_key: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("UPSTREAM", "LOCAL_STATE_DIR")}
    environment.update({"BASE": gateway.base_url, "ADMIN_KEY": admin_key, "PYTHONUNBUFFERED": "1"})
    return subprocess.run(
        [sys.executable, "-m", "infra.smoke"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_smoke_journey_passes_and_cleans_up(gateway: RunningGateway) -> None:
    result = smoke(gateway, ADMIN_KEY)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for step in STEPS:
        line = next((candidate for candidate in lines if candidate.strip().startswith(step)), None)
        assert line is not None, f"{step} missing:\n{result.stdout}"
        assert re.search(r"\s\d{3}\s+ok$", line), line
    assert lines[-1].startswith("smoke passed")
    assert ADMIN_KEY not in result.stdout + result.stderr
    run = re.search(r"\(run ([0-9a-f]+)\)", result.stdout)
    assert run, result.stdout
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        gateways = http.get("/api/v1/gateways", params={"limit": 100}).json()["items"]
        clients = http.get("/api/v1/clients", params={"limit": 100}).json()["items"]
    assert f"smoke-{run.group(1)}" not in [g["name"] for g in gateways]
    assert f"smoke-{run.group(1)}" not in [c["name"] for c in clients]


def test_the_smoke_stops_at_the_first_failure(gateway: RunningGateway) -> None:
    result = smoke(gateway, "gk_local_" + "x" * 43)

    assert result.returncode == 1
    assert re.search(r"whoami \(admin key\)\s+401\s+FAIL", result.stdout), result.stdout
    assert "register a client" not in result.stdout
    assert "smoke FAILED" in result.stdout
