"""GET /api/v1/gateway/health: unauthenticated, answers within the probe deadline. The body is
what functions/routes/api/models.py:HealthOut documents (a test holds the two together)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from functions.routes.dal.health_probes import build_probes
from functions.routes.logic.health import run_checks
from gateway_core import aws
from gateway_core.endpoints import Reply, Request
from gateway_core.settings import settings

# One pool per container: probes run concurrently so the answer takes as long as the slowest one.
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")


def health(request: Request) -> Reply:
    config = settings()
    clients = {
        "dynamodb": aws.client("dynamodb"),
        "sqs": aws.client("sqs"),
        "stepfunctions": aws.client("stepfunctions"),
        "scheduler": aws.client("scheduler"),
    }
    report = run_checks(build_probes(config, clients), _executor, config.health_deadline_ms)
    body = {
        "status": report.status,
        "checked_at": report.checked_at,
        "stage": config.stage,
        "checks": {c.name: {"status": c.status, "latency_ms": c.latency_ms, "facts": c.facts} for c in report.checks},
    }
    # Load balancers and monitors read the status code; the body says why.
    status = 503 if report.status == "unavailable" else 200
    return Reply.json(status, json.dumps(body, separators=(",", ":"), default=str), {"Cache-Control": "no-store"})
