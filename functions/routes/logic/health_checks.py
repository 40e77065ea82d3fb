"""Active health checks of upstream targets (every minute, from an EventBridge rule): every
target of every serving version whose route names a health check is probed once (a target shared
by several routes is probed once per path), concurrently, with a short timeout. A target that
fails its probe is `down` and the proxy stops sending it traffic until a later probe succeeds;
in between, the circuit breakers react to live failures within the same container."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from gateway_core.deployed import DeployedVersion

PROBE_TIMEOUT_SECONDS = 2.0
MAX_PROBES = 200


@dataclass(frozen=True)
class Probe:
    target: str  # the target's base URL, as routes name it
    url: str  # what is fetched
    expect_status: int


@dataclass(frozen=True)
class ProbeResult:
    target: str
    status: str  # "up" or "down"
    detail: str


def probes(versions: list[DeployedVersion]) -> list[Probe]:
    found: dict[tuple[str, str], Probe] = {}
    for version in versions:
        for route in version.routes:
            if route.health_check is None or not route.active:
                continue
            for target in route.targets:
                url = target.url.rstrip("/") + route.health_check.path
                found.setdefault((target.url, url), Probe(target.url, url, route.health_check.expect_status))
    return list(found.values())[:MAX_PROBES]


def run(all_probes: list[Probe], fetch: Callable[[str, float], int]) -> list[ProbeResult]:
    """Probe concurrently; a target with several probes is up only if all of them pass."""

    def one(probe: Probe) -> ProbeResult:
        try:
            status = fetch(probe.url, PROBE_TIMEOUT_SECONDS)
        except Exception as error:  # noqa: BLE001 - any failure to fetch is a failed probe
            return ProbeResult(probe.target, "down", type(error).__name__)
        ok = status == probe.expect_status
        return ProbeResult(probe.target, "up" if ok else "down", f"HTTP {status}")

    if not all_probes:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(all_probes))) as pool:
        results = list(pool.map(one, all_probes))
    merged: dict[str, ProbeResult] = {}
    for result in results:
        if result.target not in merged or result.status == "down":
            merged[result.target] = result
    return list(merged.values())
