"""Environment of a function, read once per container.

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


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def load_settings() -> Settings:
    return Settings(
        stage=_env("STAGE", "dev"),
        table_name=_env("TABLE_NAME"),
        rate_limit_table_name=_env("RATE_LIMIT_TABLE_NAME"),
        webhook_queue_url=_env("WEBHOOK_QUEUE_URL"),
        webhook_dlq_url=_env("WEBHOOK_DLQ_URL"),
        state_machine_arn=_env("STATE_MACHINE_ARN"),
        schedule_group_name=_env("SCHEDULE_GROUP_NAME"),
        health_deadline_ms=int(_env("HEALTH_DEADLINE_MS", "80")),
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()
