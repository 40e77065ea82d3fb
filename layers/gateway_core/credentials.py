"""API key format, hashing and the stored record shape, shared by the authorizer and admin tools.

Keys carry 256 bits from `secrets`, so a single SHA-256 is a safe lookup hash (a slow hash is for
low-entropy secrets such as OAuth client secrets). Only the hash is stored; the key is shown once.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

KEY_PREFIX = "gk"
MIN_KEY_LENGTH = 32


def generate_api_key(environment: str) -> str:
    return f"{KEY_PREFIX}_{environment}_{secrets.token_urlsafe(32)}"


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def key_lookup_key(key_hash: str) -> dict[str, dict[str, str]]:
    """DynamoDB key of the item that a presented API key is found by (one GetItem)."""
    return {"PK": {"S": f"APIKEY#{key_hash}"}, "SK": {"S": "APIKEY"}}


def api_key_item(
    *,
    key_hash: str,
    key_id: str,
    client_id: str,
    scopes: list[str],
    tier: str,
    name: str,
    created_at: str,
    last_four: str,
    prefix: str,
) -> dict[str, Any]:
    item: dict[str, Any] = key_lookup_key(key_hash)
    item.update(
        {
            "key_id": {"S": key_id},
            "client_id": {"S": client_id},
            "scopes": {"L": [{"S": s} for s in scopes]},
            "tier": {"S": tier},
            "name": {"S": name},
            "status": {"S": "active"},
            "created_at": {"S": created_at},
            "last_four": {"S": last_four},
            "prefix": {"S": prefix},
            "GSI1PK": {"S": f"CLIENT#{client_id}#KEYS"},
            "GSI1SK": {"S": f"{created_at}#{key_id}"},
        }
    )
    return item
