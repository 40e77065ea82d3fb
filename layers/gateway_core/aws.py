"""boto3 clients, created once per container and reused by every invocation.

Timeouts are short and retries bounded: a function behind API Gateway has 29 s in all, and a
slow dependency must turn into a clear 503, not a gateway timeout.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import Loader, create_loader

_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=32,
)
_clients: dict[str, Any] = {}
_lock = threading.Lock()
# One loader for every session: each session would otherwise parse the endpoint rules and the
# service model again (about 75 ms a client; a function with three clients pays it at init).
_loader: Loader | None = None


def _session() -> boto3.session.Session:
    global _loader
    if _loader is None:
        _loader = create_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", _loader)
    return boto3.session.Session(botocore_session=core)


def client(service: str) -> Any:
    """The container's client for `service` (endpoint and region come from the environment,
    which is fixed for the container's life)."""
    cached = _clients.get(service)
    if cached is not None:
        return cached
    with _lock:
        cached = _clients.get(service)
        if cached is None:
            # boto3.client() on the default session is not thread-safe; a session per client is
            # (created under the lock, so the shared loader is read by one creation at a time).
            cached = _session().client(service, config=_CONFIG)
            _clients[service] = cached
    return cached


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints between cases)."""
    with _lock:
        _clients.clear()
