"""Shared by the fixture functions: record what happened in the test stack's table, so tests
observe effects through DynamoDB (as they would in AWS), never through the runtime's internals."""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import boto3

_dynamodb = boto3.client("dynamodb")


def record(kind: str, payload: Any) -> None:
    _dynamodb.put_item(
        TableName=os.environ["RECORDER_TABLE"],
        Item={
            "PK": {"S": kind},
            "SK": {"S": f"{time.time_ns()}#{uuid.uuid4()}"},
            "payload": {"S": json.dumps(payload, sort_keys=True, default=str)},
            "function": {"S": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")},
            "marker": {"S": os.environ.get("FIXTURE_MARKER", "")},
        },
    )
