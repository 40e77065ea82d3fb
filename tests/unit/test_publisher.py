"""The shared publisher: one item write, and a write retried after its answer was lost is the
same publication (not an error: the trigger answered 500 for an event that was delivered)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway_core.publisher import publish


class Table:
    def __init__(self, fail_with: str | None = None) -> None:
        self.fail_with = fail_with
        self.items: list[dict[str, Any]] = []

    def put_item(self, **request: Any) -> None:
        self.items.append(request["Item"])
        if self.fail_with:
            raise ClientError({"Error": {"Code": self.fail_with, "Message": "x"}}, "PutItem")


def test_publish_writes_one_event_item_and_answers_its_id() -> None:
    table = Table()
    event_id = publish(table, "data", "key.rotated", {"a": 1}, client_id="cl_1", private=True)
    (item,) = table.items
    assert item["PK"]["S"] == f"EVENT#{event_id}"
    assert (item["event_type"]["S"], item["event_client"]["S"], item["event_private"]["BOOL"]) == (
        "key.rotated",
        "cl_1",
        True,
    )


def test_an_item_already_there_is_this_write_retried_after_a_lost_answer() -> None:
    table = Table(fail_with="ConditionalCheckFailedException")
    assert publish(table, "data", "key.rotated", {}).startswith("msg_")


def test_other_failures_are_raised() -> None:
    with pytest.raises(ClientError):
        publish(Table(fail_with="ProvisionedThroughputExceededException"), "data", "key.rotated", {})
