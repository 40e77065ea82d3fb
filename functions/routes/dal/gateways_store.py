"""Gateways, their routes, their deployed versions and the deployments index, in DynamoDB.

Items (README, key design):
* `GATEWAY#<id>`/`GATEWAY`: the gateway (a JSON document in `doc`), listed on GSI1 `GATEWAYS`;
  `GATEWAYNAME#<name key>` (logic/names.py) and `GATEWAYPATH#<base path>` guards keep names and paths unique;
* `GATEWAY#<id>`/`ROUTE#<route id>`: a route (draft), listed on GSI1 `ROUTES`; `ROUTE#<route id>`/`ROUTE` points to its
  gateway; `GATEWAY#<id>`/`ROUTEKEY#<method> <shape>` keeps (method, path shape) unique;
* `GATEWAY#<id>`/`VERSION#<n:08d>`: a deployed version, zlib-compressed JSON, split over
  `VERSION#<n:08d>#<k:03d>` items when larger than one item may be; immutable;
* `CONFIG`/`DEPLOYMENTS`: one attribute per gateway (base path, status, active and canary
  versions), the one item the proxy reads (every few seconds) to know what serves.
Every change is one transaction with its audit event, conditioned on the version read. Routes and
versions are written as stored (`UNMASKED`): their JSON masks credentials for everyone else.
A gateway's secrets are kept beside it (dal/secrets_store.py).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from functions.routes.dal.deployed_versions import DEPLOYMENTS_KEY, DeployedVersions, version_sk
from functions.routes.dal.secrets_store import secret_names
from functions.routes.logic import paths
from functions.routes.logic.clients import ConcurrentChange
from functions.routes.logic.gateways import Deployment, DuplicateGateway, Gateway, GatewayVersion
from functions.routes.logic.names import name_key
from functions.routes.logic.redaction import UNMASKED
from functions.routes.logic.route_spec import Route
from gateway_core.audit import Actor, audit_put
from gateway_core.errors import Conflict
from gateway_core.pagination import gsi1_page
from gateway_core.transactions import transact_write

_PART_BYTES = 350_000  # below DynamoDB's 400 KB item limit, with room for the key and attributes


class DuplicateRoute(Conflict):
    code = "duplicate_route"


def _gateway_key(gateway_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"GATEWAY#{gateway_id}"}, "SK": {"S": "GATEWAY"}}


def _route_key(gateway_id: str, route_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"GATEWAY#{gateway_id}"}, "SK": {"S": f"ROUTE#{route_id}"}}


def _route_pointer(route_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"ROUTE#{route_id}"}, "SK": {"S": "ROUTE"}}


def _route_guard(route: Route) -> dict[str, Any]:
    return {
        "PK": {"S": f"GATEWAY#{route.gateway_id}"},
        "SK": {"S": f"ROUTEKEY#{route.method} {paths.shape(route.path)}"},
    }


# Stored gateways were checked when written (a name stored before a rule existed still loads).
_STORED = {"stored": True}


def _guard(kind: str, value: str) -> dict[str, Any]:
    return {"PK": {"S": f"{kind}#{value}"}, "SK": {"S": kind}}


def deployment_entry(gateway: Gateway) -> str:
    return json.dumps(
        {
            "gateway_id": gateway.gateway_id,
            "base_path": gateway.base_path,
            "status": gateway.status,
            **gateway.deployment.model_dump(),
        },
        sort_keys=True,
    )


class DynamoGatewayStore:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name

    # -- writes -------------------------------------------------------------------------------

    def _write(self, items: list[dict[str, Any]], conflicts: dict[int, Exception]) -> None:
        """`conflicts` maps the index of an item whose condition may fail to the domain error."""
        transact_write(self.dynamodb, items, conflicts)

    def _put(self, item: dict[str, Any], condition: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table, "Item": item, "ConditionExpression": condition}
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    def _delete(self, key: dict[str, Any], condition: str | None = None, values: Any = None) -> dict[str, Any]:
        delete: dict[str, Any] = {"TableName": self.table, "Key": key}
        if condition:
            delete["ConditionExpression"] = condition
        if values:
            delete["ExpressionAttributeValues"] = values
        return {"Delete": delete}

    def _gateway_item(self, gateway: Gateway) -> dict[str, Any]:
        return {
            **_gateway_key(gateway.gateway_id),
            "GSI1PK": {"S": "GATEWAYS"},
            "GSI1SK": {"S": f"{gateway.created_at}#{gateway.gateway_id}"},
            "version": {"N": str(gateway.version)},
            "doc": {"S": gateway.model_dump_json()},
        }

    def _index(self, gateway: Gateway | None, gateway_id: str) -> dict[str, Any]:
        update: dict[str, Any] = {"TableName": self.table, "Key": DEPLOYMENTS_KEY}
        update["ExpressionAttributeNames"] = {"#g": f"gw_{gateway_id}"}
        if gateway is None:
            update["UpdateExpression"] = "REMOVE #g"
        else:
            update["UpdateExpression"] = "SET #g = :entry"
            update["ExpressionAttributeValues"] = {":entry": {"S": deployment_entry(gateway)}}
        return {"Update": update}

    def _versioned(self, version: int) -> dict[str, Any]:
        return {":v": {"N": str(version)}}

    def create_gateway(self, gateway: Gateway, actor: Actor) -> None:
        items = [
            self._put(self._gateway_item(gateway), "attribute_not_exists(PK)"),
            self._put(
                {**_guard("GATEWAYNAME", name_key(gateway.name)), "gateway_id": {"S": gateway.gateway_id}},
                "attribute_not_exists(PK)",
            ),
            self._put(
                {**_guard("GATEWAYPATH", gateway.base_path or "/"), "gateway_id": {"S": gateway.gateway_id}},
                "attribute_not_exists(PK)",
            ),
            self._index(gateway, gateway.gateway_id),
            self._gateway_audit(actor, "gateway.create", None, gateway),
        ]
        self._write(
            items,
            {
                1: DuplicateGateway(f"A gateway named '{gateway.name}' exists."),
                2: DuplicateGateway(f"Another gateway serves base path '{gateway.base_path or '/'}'."),
            },
        )

    def replace_gateway(self, before: Gateway, after: Gateway, actor: Actor, action: str = "gateway.update") -> None:
        items = [self._put(self._gateway_item(after), "version = :v", self._versioned(before.version))]
        conflicts: dict[int, Exception] = {0: ConcurrentChange(after.gateway_id)}
        if name_key(before.name) != name_key(after.name):
            items.append(self._delete(_guard("GATEWAYNAME", name_key(before.name))))
            items.append(
                self._put(
                    {**_guard("GATEWAYNAME", name_key(after.name)), "gateway_id": {"S": after.gateway_id}},
                    "attribute_not_exists(PK)",
                )
            )
            conflicts[len(items) - 1] = DuplicateGateway(f"A gateway named '{after.name}' exists.")
        if before.base_path != after.base_path:
            items.append(self._delete(_guard("GATEWAYPATH", before.base_path or "/")))
            items.append(
                self._put(
                    {**_guard("GATEWAYPATH", after.base_path or "/"), "gateway_id": {"S": after.gateway_id}},
                    "attribute_not_exists(PK)",
                )
            )
            conflicts[len(items) - 1] = DuplicateGateway(
                f"Another gateway serves base path '{after.base_path or '/'}'."
            )
        items.append(self._index(after, after.gateway_id))
        items.append(self._gateway_audit(actor, action, before, after))
        self._write(items, conflicts)

    def delete_gateway(self, gateway: Gateway, actor: Actor) -> None:
        if self.routes(gateway.gateway_id):
            raise Conflict("Delete the gateway's routes first.", code="gateway_not_empty")
        if self.secret_names(gateway.gateway_id):
            raise Conflict("Delete the gateway's secrets first.", code="gateway_not_empty")
        self._write(
            [
                self._delete(_gateway_key(gateway.gateway_id), "version = :v", self._versioned(gateway.version)),
                self._delete(_guard("GATEWAYNAME", name_key(gateway.name))),
                self._delete(_guard("GATEWAYPATH", gateway.base_path or "/")),
                self._index(None, gateway.gateway_id),
                self._gateway_audit(actor, "gateway.delete", gateway, None),
            ],
            {0: ConcurrentChange(gateway.gateway_id)},
        )
        # Published versions are immutable history of a gateway that no longer exists: remove them.
        keys = self._version_keys(gateway.gateway_id)
        for start in range(0, len(keys), 25):
            batch = [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]
            self.dynamodb.batch_write_item(RequestItems={self.table: batch})

    def _version_keys(self, gateway_id: str) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :v)",
            "ExpressionAttributeValues": {":pk": {"S": f"GATEWAY#{gateway_id}"}, ":v": {"S": "VERSION#"}},
            "ProjectionExpression": "PK, SK",
        }
        while True:
            page = self.dynamodb.query(**request)
            keys.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return keys
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- routes -------------------------------------------------------------------------------

    def _gateway_audit(
        self, actor: Actor, action: str, before: Gateway | None, after: Gateway | None
    ) -> dict[str, Any]:
        subject = after or before
        assert subject is not None
        return audit_put(
            self.table, actor=actor, action=action, target=f"gateway/{subject.gateway_id}", before=before, after=after
        )

    def _route_item(self, route: Route) -> dict[str, Any]:
        return {
            **_route_key(route.gateway_id, route.route_id),
            "GSI1PK": {"S": "ROUTES"},
            "GSI1SK": {"S": f"{route.created_at}#{route.route_id}"},
            "version": {"N": str(route.version)},
            "doc": {"S": route.model_dump_json(context=UNMASKED)},
        }

    def _route_audit(self, actor: Actor, action: str, before: Route | None, after: Route | None) -> dict[str, Any]:
        subject = after or before
        assert subject is not None
        return audit_put(
            self.table, actor=actor, action=action, target=f"route/{subject.route_id}", before=before, after=after
        )

    def create_route(self, route: Route, actor: Actor) -> None:
        duplicate = DuplicateRoute(f"{route.method} {route.path} exists on gateway {route.gateway_id}.")
        self._write(
            [
                self._put(self._route_item(route), "attribute_not_exists(PK)"),
                self._put(
                    {**_route_pointer(route.route_id), "gateway_id": {"S": route.gateway_id}},
                    "attribute_not_exists(PK)",
                ),
                self._put({**_route_guard(route), "route_id": {"S": route.route_id}}, "attribute_not_exists(PK)"),
                {
                    "ConditionCheck": {
                        "TableName": self.table,
                        "Key": _gateway_key(route.gateway_id),
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                },
                self._route_audit(actor, "route.create", None, route),
            ],
            {2: duplicate, 3: Conflict(f"Gateway {route.gateway_id} does not exist.", code="gateway_not_found")},
        )

    def replace_route(self, before: Route, after: Route, actor: Actor) -> None:
        items = [self._put(self._route_item(after), "version = :v", self._versioned(before.version))]
        conflicts: dict[int, Exception] = {0: ConcurrentChange(after.route_id)}
        if _route_guard(before) != _route_guard(after):
            items.append(self._delete(_route_guard(before)))
            items.append(
                self._put({**_route_guard(after), "route_id": {"S": after.route_id}}, "attribute_not_exists(PK)")
            )
            conflicts[2] = DuplicateRoute(f"{after.method} {after.path} exists on gateway {after.gateway_id}.")
        items.append(self._route_audit(actor, "route.update", before, after))
        self._write(items, conflicts)

    def delete_route(self, route: Route, actor: Actor) -> None:
        self._write(
            [
                self._delete(
                    _route_key(route.gateway_id, route.route_id), "version = :v", self._versioned(route.version)
                ),
                self._delete(_route_pointer(route.route_id)),
                self._delete(_route_guard(route)),
                self._route_audit(actor, "route.delete", route, None),
            ],
            {0: ConcurrentChange(route.route_id)},
        )

    # -- reads --------------------------------------------------------------------------------

    def gateway(self, gateway_id: str) -> Gateway | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=_gateway_key(gateway_id), ConsistentRead=True).get(
            "Item"
        )
        return Gateway.model_validate_json(item["doc"]["S"], context=_STORED) if item else None

    def gateways(self, limit: int, cursor: str | None) -> tuple[list[Gateway], str | None]:
        items, next_cursor = gsi1_page(self.dynamodb, self.table, "GATEWAYS", limit, cursor)
        return [Gateway.model_validate_json(i["doc"]["S"], context=_STORED) for i in items], next_cursor

    def route(self, route_id: str) -> Route | None:
        pointer = self.dynamodb.get_item(TableName=self.table, Key=_route_pointer(route_id), ConsistentRead=True).get(
            "Item"
        )
        if not pointer:
            return None
        item = self.dynamodb.get_item(
            TableName=self.table, Key=_route_key(pointer["gateway_id"]["S"], route_id), ConsistentRead=True
        ).get("Item")
        return Route.stored(json.loads(item["doc"]["S"])) if item else None

    def route_page(self, limit: int, cursor: str | None) -> tuple[list[Route], str | None]:
        """Routes of every gateway, newest first."""
        items, next_cursor = gsi1_page(self.dynamodb, self.table, "ROUTES", limit, cursor)
        return [Route.stored(json.loads(i["doc"]["S"])) for i in items], next_cursor

    def routes(self, gateway_id: str) -> list[Route]:
        """Every route of a gateway, strongly consistent (a deploy must see the latest edits)."""
        routes: list[Route] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :r)",
            "ExpressionAttributeValues": {":pk": {"S": f"GATEWAY#{gateway_id}"}, ":r": {"S": "ROUTE#"}},
            "ConsistentRead": True,
        }
        while True:
            page = self.dynamodb.query(**request)
            routes.extend(Route.stored(json.loads(i["doc"]["S"])) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(routes, key=lambda r: (r.path, r.method))
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- versions and deployments -------------------------------------------------------------

    def publish(self, before: Gateway, after: Gateway, snapshot: GatewayVersion, actor: Actor) -> None:
        """The new version's items, the gateway's new deployment and the index, in one transaction."""
        data = zlib.compress(snapshot.model_dump_json(context=UNMASKED).encode(), 6)
        parts = [data[i : i + _PART_BYTES] for i in range(0, len(data), _PART_BYTES)] or [b""]
        if len(parts) > 10:
            raise Conflict(
                "The gateway's configuration is too large to deploy (over 3.5 MB compressed).",
                code="deployment_too_large",
            )
        pk = {"S": f"GATEWAY#{snapshot.gateway_id}"}
        header = {
            "PK": pk,
            "SK": {"S": version_sk(snapshot.version)},
            "parts": {"N": str(len(parts))},
            "data": {"B": parts[0]},
            "summary": {"S": json.dumps(snapshot.summary(), sort_keys=True)},
        }
        items = [self._put(header, "attribute_not_exists(PK)")]
        items.extend(
            self._put(
                {"PK": pk, "SK": {"S": f"{version_sk(snapshot.version)}#{k:03d}"}, "data": {"B": part}},
                "attribute_not_exists(PK)",
            )
            for k, part in enumerate(parts[1:], start=1)
        )
        items.append(self._put(self._gateway_item(after), "version = :v", self._versioned(before.version)))
        conflicts: dict[int, Exception] = {len(items) - 1: ConcurrentChange(after.gateway_id)}
        items.append(self._index(after, after.gateway_id))
        items.append(self._gateway_audit(actor, "gateway.deploy", before, after))
        self._write(items, conflicts)

    def version(self, gateway_id: str, version: int) -> GatewayVersion | None:
        document = DeployedVersions(self.dynamodb, self.table).document(gateway_id, version)
        return GatewayVersion.stored(document) if document is not None else None

    def versions(self, gateway_id: str) -> list[dict[str, Any]]:
        summaries: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :v)",
            "ExpressionAttributeValues": {":pk": {"S": f"GATEWAY#{gateway_id}"}, ":v": {"S": "VERSION#"}},
            "ProjectionExpression": "summary",
            "ScanIndexForward": False,
        }
        while True:
            page = self.dynamodb.query(**request)
            summaries.extend(json.loads(i["summary"]["S"]) for i in page.get("Items", []) if "summary" in i)
            if "LastEvaluatedKey" not in page:
                return summaries
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def secret_names(self, gateway_id: str) -> set[str]:
        return secret_names(self.dynamodb, self.table, gateway_id)


__all__ = ["DEPLOYMENTS_KEY", "Deployment", "DuplicateRoute", "DynamoGatewayStore"]
