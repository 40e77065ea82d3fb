"""Entry point of the webhooks function.

Provisioned by the foundation (role, layers, environment, logs) with no routes yet: every
request is answered with a 404 problem until the issue that brings this function's API lands,
and no API Gateway resource points here before then. It answers without a resolver
(gateway_core.endpoints, the same problem format), so waiting costs no cold start.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from gateway_core.endpoints import Endpoints
from gateway_core.logs import service_logger

logger = service_logger()
endpoints = Endpoints([], on_error=lambda error: logger.exception("unhandled error", exc_info=error))


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return endpoints(event)
