"""Entry point of the OAuth2 function: `POST /oauth2/token`, `GET /.well-known/jwks.json` and
`GET /.well-known/openid-configuration`. The only function that may sign tokens (kms:Sign on
the current signing key); it reads clients and certificates and nothing else."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.routes import oauth_bootstrap
from functions.routes.api import oauth, operations
from gateway_core.endpoints import Endpoints
from gateway_core.logs import service_logger

logger = service_logger()

endpoints = Endpoints(
    [
        operations.endpoint(operations.TOKEN, lambda request: oauth.token(request, oauth_bootstrap.services())),
        operations.endpoint(operations.JWKS, lambda request: oauth.jwks(request, oauth_bootstrap.services())),
        operations.endpoint(operations.DISCOVERY, oauth.metadata),
    ],
    on_error=lambda error: logger.exception("unhandled error", exc_info=error),
)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return endpoints(event)
