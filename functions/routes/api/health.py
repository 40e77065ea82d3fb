"""GET /api/v1/gateway/health: unauthenticated, answers within the probe deadline."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from functions.routes.api.models import CheckOut, HealthOut
from functions.routes.dal.health_probes import build_probes
from functions.routes.logic.health import run_checks
from gateway_core import aws
from gateway_core.settings import settings

router = APIGatewayRouter()
# One pool per container: probes run concurrently so the answer takes as long as the slowest one.
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")


@router.get("/api/v1/gateway/health", tags=["gateway"], summary="Health of the gateway and its dependencies")
def health() -> Response[HealthOut]:
    config = settings()
    clients = {name: aws.client(name) for name in ("dynamodb", "sqs", "stepfunctions", "scheduler")}
    report = run_checks(build_probes(config, clients), _executor, config.health_deadline_ms)
    body = HealthOut(
        status=report.status,
        checked_at=report.checked_at,
        stage=config.stage,
        checks={c.name: CheckOut(status=c.status, latency_ms=c.latency_ms, facts=c.facts) for c in report.checks},
    )
    # Load balancers and monitors read the status code; the body says why.
    return Response(
        status_code=503 if report.status == "unavailable" else 200,
        content_type="application/json",
        body=body,
        headers={"Cache-Control": "no-store"},
    )
