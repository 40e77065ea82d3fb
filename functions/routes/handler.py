"""Entry point of the routes function: parse, route, answer. Logic lives in logic/ and dal/."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.routes.api import (
    audit,
    batch,
    certificates,
    clients,
    denylist,
    gateways,
    health,
    health_checks,
    identity,
    issuers,
    keys,
    oauth,
    proxy,
)
from gateway_core.http import build_resolver

logger = Logger()
tracer = Tracer()
app = build_resolver(logger)
app.include_router(health.router)
app.include_router(identity.router)
app.include_router(clients.router)
app.include_router(audit.router)
app.include_router(keys.router)
app.include_router(oauth.router)
app.include_router(denylist.router)
app.include_router(certificates.router)
app.include_router(issuers.router)
app.include_router(gateways.router)
app.include_router(batch.router)
app.enable_swagger(
    path="/api/v1/docs",
    title="Finance integration gateway",
    version="1.0.0",
    description="Admin and consumer API of the gateway. Errors are RFC 9457 problem details.",
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("gateway_task") == health_checks.TASK:
        return health_checks.run()
    # The proxy takes raw requests (any method, greedy paths, any body), not the admin API's.
    if str(event.get("resource", "")).startswith(proxy.PREFIX) and event.get("httpMethod"):
        return proxy.handle(event)
    return app.resolve(event, context)
