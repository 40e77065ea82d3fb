"""Entry point of the routes function: parse, route, answer. Logic lives in logic/ and dal/."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.routes.api import audit, certificates, clients, denylist, health, identity, issuers, keys, oauth
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
app.enable_swagger(
    path="/api/v1/docs",
    title="Finance integration gateway",
    version="1.0.0",
    description="Admin and consumer API of the gateway. Errors are RFC 9457 problem details.",
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
