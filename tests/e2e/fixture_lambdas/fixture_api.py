"""Proxy integration that echoes what API Gateway handed it."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys
import time
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    query = event.get("queryStringParameters") or {}
    if "sleep" in query:
        time.sleep(float(query["sleep"]))
    if query.get("fail") == "raise":
        raise RuntimeError("fixture failure on request")
    if query.get("fail") == "malformed":
        return {"body": "no status code"}
    if query.get("fail") == "exit":
        os._exit(3)  # the process dies mid-invocation
    if "aws" in query:
        # One AWS call as this function's role: granted (DescribeTable on its table) or not.
        import boto3
        from botocore.exceptions import ClientError

        dynamodb = boto3.client("dynamodb")
        try:
            if query["aws"] == "describe_table":
                dynamodb.describe_table(TableName=os.environ["RECORDER_TABLE"])
            else:
                dynamodb.list_tables()
            outcome = "ok"
        except ClientError as error:
            outcome = error.response["Error"]["Code"]
        return {"statusCode": 200, "body": json.dumps({"outcome": outcome})}
    if "inspect" in query:
        # What this execution environment is: its process, environment and import path.
        inspected = {
            "pid": os.getpid(),
            "env_keys": sorted(os.environ),
            "sys_path": sys.path,
            "importable": {m: importlib.util.find_spec(m) is not None for m in ("boto3", "moto", "pytest", "infra")},
        }
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(inspected)}
    if "header" in query:
        # An answer with the header value the caller chose (one HTTP may not be able to carry).
        return {"statusCode": 200, "headers": {"X-Echo": query["header"]}, "body": "{}"}
    if "binary" in query:
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/octet-stream"},
            "body": base64.b64encode(bytes.fromhex(query["binary"])).decode(),
            "isBase64Encoded": True,
        }
    body = {
        "resource": event["resource"],
        "path": event["path"],
        "httpMethod": event["httpMethod"],
        "pathParameters": event.get("pathParameters"),
        "multiValueQueryStringParameters": event.get("multiValueQueryStringParameters"),
        "multiValueHeaders": event.get("multiValueHeaders"),
        "body": event.get("body"),
        "isBase64Encoded": event.get("isBase64Encoded"),
        "authorizer": event["requestContext"].get("authorizer"),
        "requestContext": {k: v for k, v in event["requestContext"].items() if k != "authorizer"},
        "env": {"FIXTURE_MARKER": os.environ.get("FIXTURE_MARKER"), "TABLE": os.environ.get("RECORDER_TABLE")},
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
    return {
        "statusCode": int(query.get("status", "200")),
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"X-Multi": ["a", "b"]},
        "body": json.dumps(body),
    }
