"""Target health in `CONFIG`/`TARGET_HEALTH`: one attribute per target (`t_<sha256(url)[:20]>`,
a JSON document with the URL, status and time), replaced wholesale by each round of checks, read
by the proxy together with the deployments index."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from functions.routes.dal.deployed_versions import HEALTH_KEY
from functions.routes.logic.health_checks import ProbeResult


class TargetHealthStore:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb = dynamodb
        self.table = table

    def record(self, results: list[ProbeResult], at: str) -> None:
        item: dict[str, Any] = dict(HEALTH_KEY)
        item["checked_at"] = {"S": at}
        for result in results:
            name = "t_" + hashlib.sha256(result.target.encode()).hexdigest()[:20]
            document = {"url": result.target, "status": result.status, "detail": result.detail, "checked_at": at}
            item[name] = {"S": json.dumps(document, sort_keys=True)}
        self.dynamodb.put_item(TableName=self.table, Item=item)
