"""Deliveries and attempts as DynamoDB items: `DELIVERY#<id>`/`DELIVERY` (its endpoint's list on
GSI1, `WEBHOOK#<endpoint>#DELIVERIES`, newest first) and `DELIVERY#<id>`/`ATTEMPT#<nnnn>`, so a
delivery and its attempts are one Query. No calls here."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from functions.webhooks.logic.model import Attempt, Delivery
from gateway_core.clock import parse_iso

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
# Delivery records and their attempts are kept this long (then DynamoDB's TTL removes them).
RETENTION_SECONDS = 30 * 24 * 3600
_DELIVERY_FIELDS = tuple(Delivery.__dataclass_fields__)
_ATTEMPT_FIELDS = tuple(Attempt.__dataclass_fields__)


def delivery_key(delivery_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"DELIVERY#{delivery_id}"}, "SK": {"S": "DELIVERY"}}


def _epoch(iso_time: str) -> int:
    return int(parse_iso(iso_time).timestamp())


def delivery_item(delivery: Delivery) -> dict[str, Any]:
    data = {name: getattr(delivery, name) for name in _DELIVERY_FIELDS if name != "lease_until"}
    item = {k: _serializer.serialize(v) for k, v in data.items() if v is not None}
    item["lease_until"] = {"N": repr(float(delivery.lease_until))}
    return {
        **delivery_key(delivery.delivery_id),
        "GSI1PK": {"S": f"WEBHOOK#{delivery.endpoint_id}#DELIVERIES"},
        "GSI1SK": {"S": f"{delivery.created_at}#{delivery.delivery_id}"},
        **item,
        "queued_for": {"N": str(delivery.attempts)},
        "ttl": {"N": str(_epoch(delivery.created_at) + RETENTION_SECONDS)},
    }


def delivery_from(item: dict[str, Any]) -> Delivery:
    data = {k: _deserializer.deserialize(item[k]) for k in _DELIVERY_FIELDS if k in item}
    for name in ("attempts", "max_attempts", "seq", "version", "retry_base"):
        if name in data:
            data[name] = int(data[name])
    if data.get("last_status") is not None:
        data["last_status"] = int(data["last_status"])
    data["lease_until"] = float(data.get("lease_until") or 0)
    return Delivery(**data)


def attempt_item(attempt: Attempt, created_at: str) -> dict[str, Any]:
    data = {name: getattr(attempt, name) for name in _ATTEMPT_FIELDS}
    if data["retry_after_s"] is not None:
        data["retry_after_s"] = repr(float(data["retry_after_s"]))
    item = {k: _serializer.serialize(v) for k, v in data.items() if v is not None}
    return {
        "PK": {"S": f"DELIVERY#{attempt.delivery_id}"},
        "SK": {"S": f"ATTEMPT#{attempt.attempt:04d}"},
        **item,
        "ttl": {"N": str(_epoch(created_at) + RETENTION_SECONDS)},
    }


def attempt_from(item: dict[str, Any]) -> Attempt:
    data = {k: _deserializer.deserialize(item[k]) for k in _ATTEMPT_FIELDS if k in item}
    data["attempt"] = int(data["attempt"])
    data["latency_ms"] = int(data["latency_ms"])
    if data.get("status_code") is not None:
        data["status_code"] = int(data["status_code"])
    if data.get("retry_after_s") is not None:
        data["retry_after_s"] = float(data["retry_after_s"])
    data["response_headers"] = dict(data.get("response_headers") or {})
    return Attempt(**data)


def failed_condition(error: ClientError) -> bool:
    code = error.response["Error"]["Code"]
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
        return "ConditionalCheckFailed" in reasons
    return False
