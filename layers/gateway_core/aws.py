"""boto3 clients, created once per container and reused by every invocation.

Timeouts are short and retries bounded: a function behind API Gateway has 29 s in all, and a
slow dependency must turn into a clear 503, not a gateway timeout.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=32,
)
_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client(service: str) -> Any:
    """The container's client for `service` (endpoint and region come from the environment,
    which is fixed for the container's life)."""
    cached = _clients.get(service)
    if cached is not None:
        return cached
    with _lock:
        cached = _clients.get(service)
        if cached is None:
            # boto3.client() on the default session is not thread-safe; a session per client is.
            cached = boto3.session.Session().client(service, config=_CONFIG)
            _clients[service] = cached
    return cached


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints between cases)."""
    with _lock:
        _clients.clear()
