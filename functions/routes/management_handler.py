"""Entry point of the management function: the admin API (clients, keys, certificates, issuers,
the IP denylist, audit events, gateways, routes, deployments and upstream secrets), "who am I",
and the OpenAPI document with Swagger UI at /api/v1/docs. The powertools resolver validates every
request with pydantic; errors leave as problem details. No function imports the X-Ray SDK (powertools' Tracer):
its recorder builds two botocore clients at import, about the cost of boto3 itself; Lambda's
active tracing still records every invocation (README, "Cold starts"). Its role has the table's admin reads and writes and
the authorizer-cache flush, and may not sign tokens. Logic lives in logic/ and dal/."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.routes.api import (
    audit,
    certificates,
    clients,
    denylist,
    docs,
    gateways,
    identity,
    issuers,
    keys,
    secrets,
)
from gateway_core.http import build_resolver
from gateway_core.logs import service_logger

logger = service_logger()
app = build_resolver(logger, resolver_class=docs.DocumentedResolver)
for api in (identity, clients, audit, keys, denylist, certificates, issuers, gateways, secrets):
    app.include_router(api.router)


@app.get("/api/v1/docs", include_in_schema=False)
def documentation() -> Response[str]:
    return docs.page(
        app,
        title="Finance integration gateway",
        version="1.0.0",
        description="Admin and consumer API of the gateway. Errors are RFC 9457 problem details.",
    )


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
