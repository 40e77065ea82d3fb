"""Entry point of the data plane: `ANY /gw`, `ANY /gw/{proxy+}` and `POST /api/v1/batch`.

It imports only its pipeline (no powertools resolver, no OpenAPI, no pydantic until a batch
needs it), so its cold start stays near that of boto3 alone (README, "Benchmarks"). Its role
reads what serves and writes request logs, cached answers and rate buckets, nothing else.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.routes import proxy_bootstrap
from functions.routes.api import operations, proxy
from gateway_core.endpoints import Endpoints, Reply, Request
from gateway_core.logs import service_logger

logger = service_logger()


def _log_failure(error: Exception) -> None:
    logger.warning("request log not written", extra={"error": str(error)})


def _failure(error: Exception) -> None:
    logger.error("proxy failure", exc_info=error)


def _proxied(request: Request) -> Reply:
    return proxy.handle(request, proxy_bootstrap.proxy(_log_failure, _failure))


def _batch(request: Request) -> Reply:
    # Imported at the first batch (with pydantic, which validates it): most containers serve /gw only.
    from functions.routes.api import batch

    return batch.handle(request, proxy_bootstrap.proxy(_log_failure, _failure))


endpoints = Endpoints(
    [
        # Each gateway answers browsers by its own CORS settings, preflights included.
        operations.endpoint(operations.GATEWAY_PROXY, _proxied, cors=False),
        operations.endpoint(operations.BATCH, _batch),
    ],
    on_error=lambda error: logger.exception("unhandled error", exc_info=error),
)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return endpoints(event)
