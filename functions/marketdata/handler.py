"""Entry point of the marketdata function.

Provisioned by the foundation (role, layers, environment, logs) with no routes yet: every
request is answered with a 404 problem until the issue that brings this function's API lands,
and no API Gateway resource points here before then.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from gateway_core.http import build_resolver

logger = Logger()
tracer = Tracer()
app = build_resolver(logger)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
