"""Entry point of the health function: `GET /api/v1/gateway/health` (the gateway's dependencies,
for load balancers and monitors) and the scheduled health checks of upstream targets (an
EventBridge rule sends `{"gateway_task": "health_checks"}` every minute). Its role describes the
dependencies, reads what serves and records the targets' health; it writes nothing else."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.routes.api import health, health_checks, operations
from gateway_core.endpoints import Endpoints
from gateway_core.logs import service_logger

logger = service_logger()

endpoints = Endpoints(
    [operations.endpoint(operations.HEALTH, health.health)],
    on_error=lambda error: logger.exception("unhandled error", exc_info=error),
)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("gateway_task") == health_checks.TASK:
        return health_checks.run()
    return endpoints(event)
