"""Entry point of the webhooks API function: /api/v1/webhooks (endpoints, keys, deliveries,
attempts, replay, recovery, the DLQ) and /api/v1/events (catalog, trigger). The delivery worker
and the fan-out are functions of their own (delivery_handler.py, fanout_handler.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.webhooks.api import endpoints, events
from gateway_core.http import build_resolver
from gateway_core.logs import service_logger

logger = service_logger()
app = build_resolver(logger)
for api in (endpoints, events):
    app.include_router(api.router)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
