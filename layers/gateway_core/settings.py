"""Environment of a function.

A plain dataclass rather than a pydantic model: the authorizer imports this on its cold path and
pydantic would add to every uncached request's latency.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Settings:
    stage: str
    table_name: str
    rate_limit_table_name: str
    webhook_queue_url: str
    webhook_dlq_url: str
    state_machine_arn: str
    schedule_group_name: str
    health_deadline_ms: int
    rest_api_id: str
    token_signing_key_id: str
    # Current signing key first, then the previous one: both stay in the JWKS and verify.
    token_verify_key_ids: tuple[str, ...]
    token_issuer: str
    token_audience: str
    mtls_base_url: str  # the mTLS custom domain (or the local TLS port), "" without one


def load_settings() -> Settings:
    """Settings read from the environment now (tests build several)."""

    def get(name: str, default: str = "") -> str:
        return os.environ.get(name) or default

    return Settings(
        stage=get("STAGE", "dev"),
        table_name=get("TABLE_NAME"),
        rate_limit_table_name=get("RATE_LIMIT_TABLE_NAME"),
        webhook_queue_url=get("WEBHOOK_QUEUE_URL"),
        webhook_dlq_url=get("WEBHOOK_DLQ_URL"),
        state_machine_arn=get("STATE_MACHINE_ARN"),
        schedule_group_name=get("SCHEDULE_GROUP_NAME"),
        health_deadline_ms=int(get("HEALTH_DEADLINE_MS", "80")),
        rest_api_id=get("REST_API_ID"),
        token_signing_key_id=get("TOKEN_SIGNING_KEY_ID"),
        token_verify_key_ids=tuple(
            k for k in get("TOKEN_VERIFY_KEY_IDS", get("TOKEN_SIGNING_KEY_ID")).split(",") if k.strip()
        ),
        token_issuer=get("TOKEN_ISSUER"),
        token_audience=get("TOKEN_AUDIENCE", "finance-gateway"),
        mtls_base_url=get("MTLS_BASE_URL"),
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The function's settings, read once per container: a function's environment is fixed for
    the life of its execution environment (tests that change it call `settings.cache_clear()`)."""
    return load_settings()
