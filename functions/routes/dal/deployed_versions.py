"""Reading what deploys publish: the deployments index (`CONFIG`/`DEPLOYMENTS`, one attribute per
gateway) and the deployed versions (`GATEWAY#<id>`/`VERSION#<n:08d>`, zlib-compressed JSON, split
over `#<k:03d>` parts when larger than an item). Reads only, as their JSON documents: the data
plane and the health checks turn them into `gateway_core.deployed` dataclasses, the management
API into its pydantic models. The writes live with the management API's gateway store."""

from __future__ import annotations

import json
import zlib
from typing import Any

from gateway_core.errors import DependencyUnavailable

DEPLOYMENTS_KEY = {"PK": {"S": "CONFIG"}, "SK": {"S": "DEPLOYMENTS"}}
# The targets' health as the active checks record it (target_health_store.py), read with the index.
HEALTH_KEY = {"PK": {"S": "CONFIG"}, "SK": {"S": "TARGET_HEALTH"}}


def version_sk(version: int) -> str:
    return f"VERSION#{version:08d}"


def index_entries(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The index item's entries: gateway id -> base path, status and serving versions."""
    return {name[3:]: json.loads(value["S"]) for name, value in item.items() if name.startswith("gw_") and "S" in value}


class DeployedVersions:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    def index(self) -> dict[str, dict[str, Any]]:
        """The deployments index: what serves, per gateway."""
        item = self.dynamodb.get_item(TableName=self.table, Key=DEPLOYMENTS_KEY).get("Item") or {}
        return index_entries(item)

    def document(self, gateway_id: str, version: int) -> dict[str, Any] | None:
        """A deployed version's JSON document, read whole (all its parts), strongly consistent."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :v)",
            "ExpressionAttributeValues": {":pk": {"S": f"GATEWAY#{gateway_id}"}, ":v": {"S": version_sk(version)}},
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:  # a version may span several query pages (1 MB each)
            page = self.dynamodb.query(**request)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        items.sort(key=lambda i: i["SK"]["S"])
        if not items:
            return None
        if len(items) != int(items[0].get("parts", {}).get("N", "1")):
            raise DependencyUnavailable(f"Version {version} of gateway {gateway_id} could not be read whole.")
        document: dict[str, Any] = json.loads(zlib.decompress(b"".join(bytes(i["data"]["B"]) for i in items)))
        return document
