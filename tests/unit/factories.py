"""Domain objects for unit tests, with overridable fields."""

from __future__ import annotations

from functions.routes.logic.clients import Client


def make_client(**overrides: object) -> Client:
    values: dict[str, object] = {
        "client_id": "cl_1",
        "name": "n",
        "description": "",
        "client_type": "integration",
        "organization": "",
        "contact_email": "a@b.co",
        "allowed_scopes": ["banking:read", "data:read"],
        "allowed_endpoints": [],
        "ip_allowlist": [],
        "tier": "basic",
        "rate_limits": None,
        "monthly_quota": None,
        "expires_at": None,
        "status": "active",
        "created_at": "2026-01-01T00:00:00.000Z",
        "updated_at": "2026-01-01T00:00:00.000Z",
        "version": 1,
        "secret_hash": "x",
    }
    values.update(overrides)
    return Client(**values)  # type: ignore[arg-type]
