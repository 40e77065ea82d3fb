"""SQS consumer with partial batch responses: messages asking to fail are reported back."""

from __future__ import annotations

import json
from typing import Any

from fixture_recorder import record


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    failures = []
    record("sqs-batch", {"size": len(event["Records"])})
    for message in event["Records"]:
        body = json.loads(message["body"])
        if body.get("fail"):
            failures.append({"itemIdentifier": message["messageId"]})
            record(
                "sqs-failed", {"id": body["id"], "receive_count": message["attributes"].get("ApproximateReceiveCount")}
            )
        else:
            record("sqs-ok", {"id": body["id"]})
    return {"batchItemFailures": failures}
