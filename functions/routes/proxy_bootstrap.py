"""Builds the data plane's proxy from its adapters: DynamoDB stores, the rate limiter, the guarded
upstream client, the upstream secrets (DynamoDB and KMS). One proxy per container (its caches,
leases and circuit breakers live as long as it), keyed by the settings it was built from so tests
that switch tables get a fresh one."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from functions.routes.dal.request_log_store import RequestLogStore
from functions.routes.dal.response_cache import ResponseCache
from functions.routes.dal.secret_reader import DynamoKmsSecretSource
from functions.routes.dal.serving_cache import ServingCache
from functions.routes.dal.upstream import upstream_client
from functions.routes.logic.proxy import Proxy, hop_token
from functions.routes.logic.secret_values import SecretValues
from gateway_core import aws
from gateway_core.ratelimit.limiter import RateLimiter
from gateway_core.ratelimit.store import RateLimitStore
from gateway_core.settings import settings

_proxies: dict[tuple[str | None, ...], Proxy] = {}
_lock = threading.Lock()


def proxy(
    on_log_failure: Callable[[Exception], None] | None = None, on_error: Callable[[Exception], None] | None = None
) -> Proxy:
    current = settings()
    secrets_key = os.environ.get("UPSTREAM_SECRETS_KEY_ID", "")
    key = (
        current.table_name,
        current.rate_limit_table_name,
        os.environ.get("GLOBAL_RATE_LIMIT_PER_SECOND"),
        secrets_key,
    )
    with _lock:
        found = _proxies.get(key)
        if found is None:
            dynamodb = aws.client("dynamodb")
            found = _proxies[key] = Proxy(
                serving=ServingCache(dynamodb, current.table_name),
                hop_id=hop_token(current.table_name),  # the deployment's own: loops are refused
                limiter=RateLimiter(RateLimitStore(dynamodb, current.rate_limit_table_name)),
                upstream=upstream_client(),
                cache=ResponseCache(dynamodb, current.table_name),
                logs=RequestLogStore(dynamodb, current.table_name),
                global_per_second=int(os.environ.get("GLOBAL_RATE_LIMIT_PER_SECOND") or 0),
                on_log_failure=on_log_failure,
                on_error=on_error,
                # Decrypted with the secrets key, which only this function's role may use.
                secrets=SecretValues(
                    DynamoKmsSecretSource(dynamodb, current.table_name, lambda: aws.client("kms"), secrets_key)
                ),
            )
    return found
