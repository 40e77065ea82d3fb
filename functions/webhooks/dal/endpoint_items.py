"""Webhook endpoints as DynamoDB items (low-level attribute values): the one serialization every
reader and writer of endpoints uses. No calls here."""

from __future__ import annotations

import json
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from functions.webhooks.logic.model import Endpoint, SigningKey

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
ALL_PARTITION = "WEBHOOKS"


def endpoint_key(endpoint_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"WEBHOOK#{endpoint_id}"}, "SK": {"S": "ENDPOINT"}}


def to_item(endpoint: Endpoint) -> dict[str, Any]:
    data: dict[str, Any] = {
        "endpoint_id": endpoint.endpoint_id,
        "client_id": endpoint.client_id,
        "name": endpoint.name,
        "description": endpoint.description,
        "url": endpoint.url,
        "method": endpoint.method,
        "event_types": list(endpoint.event_types),
        "filters": json.dumps(endpoint.filters, separators=(",", ":")),
        "headers": dict(endpoint.headers),
        "timeout_s": endpoint.timeout_s,
        "max_retries": endpoint.max_retries,
        "ordering": endpoint.ordering,
        "active": endpoint.active,
        "audience": endpoint.audience,
        "signing": endpoint.signing,
        "keys": [
            {
                "key_id": k.key_id,
                "ciphertext": Binary(k.ciphertext),
                "created_at": k.created_at,
                **({"public_key": k.public_key} if k.public_key else {}),
                **({"retires_at": k.retires_at} if k.retires_at else {}),
            }
            for k in endpoint.keys
        ],
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
        "version": endpoint.version,
        "consecutive_failures": endpoint.consecutive_failures,
        "next_seq": endpoint.next_seq,
        "settled_seq": endpoint.settled_seq,
    }
    for optional in ("rate_limit_per_s", "failing_since", "disabled_reason", "disabled_at"):
        value = getattr(endpoint, optional)
        if value is not None:
            data[optional] = value
    item = {name: _serializer.serialize(value) for name, value in data.items()}
    item["breaker_open_until"] = {"N": repr(endpoint.breaker_open_until)}
    return {
        **endpoint_key(endpoint.endpoint_id),
        "GSI1PK": {"S": f"CLIENT#{endpoint.client_id}#WEBHOOKS"},
        "GSI1SK": {"S": f"{endpoint.created_at}#{endpoint.endpoint_id}"},
        "GSI2PK": {"S": ALL_PARTITION},
        "GSI2SK": {"S": f"{endpoint.created_at}#{endpoint.endpoint_id}"},
        **item,
    }


def from_item(item: dict[str, Any]) -> Endpoint:
    data = {k: _deserializer.deserialize(v) for k, v in item.items()}
    return Endpoint(
        endpoint_id=data["endpoint_id"],
        client_id=data["client_id"],
        name=data["name"],
        description=data.get("description", ""),
        url=data["url"],
        method=data["method"],
        event_types=list(data["event_types"]),
        filters=json.loads(data.get("filters") or "[]"),
        headers=dict(data.get("headers") or {}),
        timeout_s=int(data["timeout_s"]),
        max_retries=int(data["max_retries"]),
        rate_limit_per_s=int(data["rate_limit_per_s"]) if data.get("rate_limit_per_s") is not None else None,
        ordering=data["ordering"],
        active=bool(data["active"]),
        audience=data.get("audience", "own"),
        signing=data["signing"],
        keys=[
            SigningKey(
                key_id=k["key_id"],
                ciphertext=bytes(k["ciphertext"].value),
                created_at=k["created_at"],
                public_key=k.get("public_key"),
                retires_at=k.get("retires_at"),
            )
            for k in data.get("keys") or []
        ],
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        version=int(data.get("version") or 1),
        consecutive_failures=int(data.get("consecutive_failures") or 0),
        failing_since=data.get("failing_since"),
        disabled_reason=data.get("disabled_reason"),
        disabled_at=data.get("disabled_at"),
        breaker_open_until=float(data.get("breaker_open_until") or 0),
        next_seq=int(data.get("next_seq") or 0),
        settled_seq=int(data.get("settled_seq") or 0),
    )
