"""Flush API Gateway's authorizer cache after a credential changes, so a revoked or narrowed key
stops working now instead of when the cached policy's TTL ends."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(child=True)


def flush(apigateway: Any, rest_api_id: str, stage: str) -> bool:
    if not rest_api_id:
        return False
    try:
        apigateway.flush_stage_authorizers_cache(restApiId=rest_api_id, stageName=stage)
    except Exception as error:  # noqa: BLE001 - the change is saved; the cache then expires by TTL
        logger.warning("authorizer cache flush failed", extra={"error_type": type(error).__name__})
        return False
    return True
