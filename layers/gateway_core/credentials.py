"""API key format, hashing and the stored record shape, shared by the authorizer and admin tools.

Keys carry 256 bits from `secrets`, so a single SHA-256 is a safe lookup hash (a slow hash is for
low-entropy secrets such as OAuth client secrets). Only the hash is stored; the key is shown once.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

KEY_PREFIX = "gk"
ALL_KEYS_PARTITION = "KEYS"
MIN_KEY_LENGTH = 32


def generate_api_key(environment: str) -> str:
    return f"{KEY_PREFIX}_{environment}_{secrets.token_urlsafe(32)}"


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def key_lookup_key(key_hash: str) -> dict[str, dict[str, str]]:
    """DynamoDB key of the item that a presented API key is found by (one GetItem)."""
    return {"PK": {"S": f"APIKEY#{key_hash}"}, "SK": {"S": "APIKEY"}}


def pointer_key(key_id: str) -> dict[str, dict[str, str]]:
    """The item that finds a key's lookup item from its id (admin operations, strongly consistent)."""
    return {"PK": {"S": f"KEY#{key_id}"}, "SK": {"S": "KEY"}}


def api_key_items(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The lookup item (what the authorizer reads) and the id pointer for one key record.

    `record` holds plain values: key_id, key_hash, client_id, name, scopes, tier, status, prefix,
    last_four, created_at, updated_at, expires_at, grace_until, rotated_to, revoked_at,
    rate_limits (a dict or None) and version.
    """
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    lookup: dict[str, Any] = {k: serializer.serialize(v) for k, v in record.items()}
    lookup.update(key_lookup_key(record["key_hash"]))
    lookup["GSI1PK"] = {"S": f"CLIENT#{record['client_id']}#KEYS"}
    lookup["GSI1SK"] = {"S": f"{record['created_at']}#{record['key_id']}"}
    # Every key, newest first (the admins' listing across clients); every write of the whole item
    # adds it, so a key stored before this index joins the listing on its next change.
    lookup["GSI2PK"] = {"S": ALL_KEYS_PARTITION}
    lookup["GSI2SK"] = lookup["GSI1SK"]
    pointer = {**pointer_key(record["key_id"]), "key_hash": {"S": record["key_hash"]}}
    return lookup, pointer


def new_key_record(
    *,
    key_hash: str,
    key_id: str,
    client_id: str,
    name: str,
    scopes: list[str],
    tier: str,
    created_at: str,
    prefix: str,
    last_four: str,
) -> dict[str, Any]:
    """A fresh active key record, as the keys API, the bootstrap admin key and tests create it."""
    return {
        "key_id": key_id,
        "key_hash": key_hash,
        "client_id": client_id,
        "name": name,
        "scopes": scopes,
        "tier": tier,
        "status": "active",
        "prefix": prefix,
        "last_four": last_four,
        "created_at": created_at,
        "updated_at": created_at,
        "expires_at": None,
        "grace_until": None,
        "rotated_to": None,
        "revoked_at": None,
        "rate_limits": None,
        "version": 1,
    }


def key_prefix(api_key: str) -> str:
    """`gk_<environment>_`: what people see of a key besides its last four characters."""
    return api_key[: api_key.index("_", 3) + 1] if api_key.startswith(f"{KEY_PREFIX}_") else ""


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
    """The lookup item alone, for tests and tools that seed a key directly."""
    record = new_key_record(
        key_hash=key_hash,
        key_id=key_id,
        client_id=client_id,
        name=name,
        scopes=scopes,
        tier=tier,
        created_at=created_at,
        prefix=prefix,
        last_four=last_four,
    )
    return api_key_items(record)[0]
