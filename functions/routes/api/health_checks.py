"""The scheduled task that probes upstream targets (EventBridge rule, every minute)."""

from __future__ import annotations

from typing import Any

from functions.routes.dal.deployed_versions import DeployedVersions
from functions.routes.dal.target_health_store import TargetHealthStore
from functions.routes.dal.upstream import upstream_client
from functions.routes.logic import health_checks
from functions.routes.logic.serving import ServingGateway
from gateway_core import aws
from gateway_core.clock import iso, utc_now
from gateway_core.deployed import DeployedVersion
from gateway_core.settings import settings

TASK = "health_checks"


def run() -> dict[str, Any]:
    # Resolved here, not in the probing threads: settings come from this invocation's environment.
    client = upstream_client()

    def fetch(url: str, timeout: float) -> int:
        return client.send("GET", url, {"user-agent": "finance-gateway-health/1"}, b"", timeout).status

    dynamodb = aws.client("dynamodb")
    deployed = DeployedVersions(dynamodb, settings().table_name)
    versions: list[DeployedVersion] = []
    for entry in deployed.index().values():
        gateway = ServingGateway.from_index(entry)
        for number in {gateway.deployment.active_version, gateway.deployment.canary_version} - {None}:
            assert number is not None
            found = deployed.document(gateway.gateway_id, number)
            if found is not None:
                versions.append(DeployedVersion.from_json(found))
    results = health_checks.run(health_checks.probes(versions), fetch)
    TargetHealthStore(dynamodb, settings().table_name).record(results, iso(utc_now()))
    return {"probed": len(results), "down": sorted(r.target for r in results if r.status == "down")}
