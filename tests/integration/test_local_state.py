"""The local runtime's saved state (infra/local/state.py) against moto's DynamoDB: what is saved
comes back exactly (types, exact numbers, binary, indexes), by logical id into a table with a new
physical name; snapshots hold whole transactions; the file is written atomically and privately;
an unreadable file is kept aside, never overwritten."""

from __future__ import annotations

import json
import stat
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local import state as local_state
from infra.local.moto_host import DeployedStack
from infra.local.state import STATE_FILE, LocalState, discard, snapshot, stack_tables
from tests.integration.conftest import create_data_table, table_items
from tests.integration.helpers import REGION

TEMPLATE = {
    "Resources": {
        "DataTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {"TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True}},
        },
        "Queue": {"Type": "AWS::SQS::Queue"},
    }
}


def deployed(table: str) -> DeployedStack:
    """The same template deployed again: same logical id, a new physical table name."""
    create_data_table(table)
    return DeployedStack("Gateway", TEMPLATE, {"DataTable": table, "Queue": "q"}, {})


@pytest.fixture
def dynamodb(aws: None) -> Any:
    return boto3.client("dynamodb", region_name=REGION)


ITEMS: list[dict[str, Any]] = [
    {
        "PK": {"S": "CLIENT#c1"},
        "SK": {"S": "CLIENT"},
        "GSI1PK": {"S": "CLIENTS"},
        "GSI1SK": {"S": "2026-01-01#c1"},
        "amount": {"N": "1234.50"},
        "tiny": {"N": "0.000000000000000000000000000001"},
        "flags": {"BOOL": True},
        "nothing": {"NULL": True},
        "scopes": {"L": [{"S": "data:read"}, {"N": "7"}, {"M": {"raw": {"B": b"\x00\xffbin"}}}]},
        "tags": {"SS": ["a", "b"]},
        "numbers": {"NS": ["1", "2.5"]},
        "blobs": {"BS": [b"\x01", b"\x02"]},
        "doc": {"B": b"\x78\x9c compressed \x00"},
    },
    {"PK": {"S": "CACHE#live"}, "SK": {"S": "CACHE"}, "ttl": {"N": "99999999999"}},
]
EXPIRED = {"PK": {"S": "CACHE#old"}, "SK": {"S": "CACHE"}, "ttl": {"N": "1000"}}


def test_tables_survive_a_restart_exactly_by_logical_id(dynamodb: Any, tmp_path: Path) -> None:
    # Given a first run that writes items of every type, one of them past its TTL
    first = deployed("run1-data")
    stopped = threading.Event()
    saver = LocalState.attach(tmp_path, [first], stopped)
    for item in [*ITEMS, EXPIRED]:
        dynamodb.put_item(TableName="run1-data", Item=item)
    stopped.set()
    saver.close()

    # When the next run deploys the template again (a new physical name) and restores
    second = deployed("run2-data")
    restorer = LocalState.attach(tmp_path, [second], threading.Event())

    # Then every item is back as it was, the expired one excepted, and the index is rebuilt
    expected = sorted(table_items(dynamodb, "run1-data"), key=lambda i: i["PK"]["S"])
    restored = sorted(table_items(dynamodb, "run2-data"), key=lambda i: i["PK"]["S"])
    assert restored == [i for i in expected if i["PK"]["S"] != "CACHE#old"]
    assert restored[1]["amount"] == {"N": "1234.50"}
    assert Decimal(restored[1]["tiny"]["N"]) == Decimal("1e-30")
    assert restored[1]["doc"] == {"B": b"\x78\x9c compressed \x00"}
    by_index = dynamodb.query(
        TableName="run2-data",
        IndexName="GSI1",
        KeyConditionExpression="GSI1PK = :pk",
        ExpressionAttributeValues={":pk": {"S": "CLIENTS"}},
    )["Items"]
    assert [i["PK"]["S"] for i in by_index] == ["CLIENT#c1"]
    assert restorer.save() is False  # nothing written since the restore: no rewrite
    restorer.stop_event.set()
    restorer.close()


def test_the_file_is_private_atomic_and_written_only_after_a_change(dynamodb: Any, tmp_path: Path) -> None:
    saver = LocalState.attach(tmp_path, [deployed("data")], threading.Event())
    assert saver.save() is False  # nothing written yet
    assert not (tmp_path / STATE_FILE).exists()

    dynamodb.put_item(TableName="data", Item=ITEMS[1])
    assert saver.save() is True
    assert saver.save() is False

    path = tmp_path / STATE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["format"] == 1
    assert list(document["tables"]) == ["Gateway/DataTable"]
    assert document["tables"]["Gateway/DataTable"]["items"] == [
        {"PK": {"S": "CACHE#live"}, "SK": {"S": "CACHE"}, "ttl": {"N": "99999999999"}}
    ]
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]  # no temporary file left behind
    saver.stop_event.set()
    saver.close()


def test_the_saver_saves_in_the_background(dynamodb: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_state, "SAVE_INTERVAL_S", 0.05)
    stopped = threading.Event()
    saver = LocalState.attach(tmp_path, [deployed("data")], stopped)
    dynamodb.put_item(TableName="data", Item=ITEMS[1])
    for _ in range(100):
        if (tmp_path / STATE_FILE).exists():
            break
        threading.Event().wait(0.05)
    stopped.set()
    saver.close()
    assert (tmp_path / STATE_FILE).exists()


def test_a_snapshot_holds_whole_transactions(dynamodb: Any) -> None:
    tables = stack_tables([deployed("data")])
    local_state.track_dynamodb_writes()
    done = threading.Event()

    def write_pairs() -> None:
        for n in range(150):
            dynamodb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "data", "Item": {"PK": {"S": f"KEY#{n}"}, "SK": {"S": "A"}}}},
                    {"Put": {"TableName": "data", "Item": {"PK": {"S": f"KEY#{n}"}, "SK": {"S": "B"}}}},
                ]
            )
        done.set()

    writer = threading.Thread(target=write_pairs)
    writer.start()
    snapshots = []
    while not done.is_set():
        snapshots.append(snapshot(tables)[0]["tables"]["Gateway/DataTable"]["items"])
    writer.join()

    assert len(snapshots) > 1
    for items in snapshots:
        sides: dict[str, set[str]] = {}
        for item in items:
            sides.setdefault(item["PK"]["S"], set()).add(item["SK"]["S"])
        assert all(side == {"A", "B"} for side in sides.values()), "a transaction was saved half"


def test_an_unreadable_file_is_kept_aside_and_the_run_starts_empty(dynamodb: Any, tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text('{"format": 1, "tables": ')

    state = LocalState.attach(tmp_path, [deployed("data")], threading.Event())

    assert table_items(dynamodb, "data") == []
    aside = [p for p in tmp_path.iterdir() if p.name.startswith(f"{STATE_FILE}.unreadable-")]
    assert len(aside) == 1
    assert aside[0].read_text() == '{"format": 1, "tables": '
    state.stop_event.set()
    state.close()


def test_tables_that_left_the_template_are_skipped_and_fresh_discards(dynamodb: Any, tmp_path: Path) -> None:
    document = {
        "format": 1,
        "tables": {
            "Gateway/Gone": {"table_name": "x", "items": [ITEMS[1]]},
            "Gateway/DataTable": {"table_name": "y", "items": [{"PK": {"S": "A"}, "SK": {"S": "B"}}]},
        },
    }
    (tmp_path / STATE_FILE).write_text(json.dumps(document))

    state = LocalState.attach(tmp_path, [deployed("data")], threading.Event())
    state.stop_event.set()
    state.close()

    assert [i["PK"]["S"] for i in table_items(dynamodb, "data")] == ["A"]
    assert discard(tmp_path) is True
    assert discard(tmp_path) is False
    assert not (tmp_path / STATE_FILE).exists()
