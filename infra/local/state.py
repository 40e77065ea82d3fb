"""Local state that survives a restart: every DynamoDB table of the deployed stacks, kept in
`<state dir>/dynamodb.json`.

moto keeps everything in memory. The runtime saves the items of each table of the template
(found by the table's logical id, since physical names are generated per deploy) on a clean stop
and, while it runs, a few seconds after any write, so a killed runtime loses little; after the
next deploy it loads them back with BatchWriteItem. The file is DynamoDB JSON (numbers stay the
exact strings DynamoDB keeps, binary values base64), written atomically (temporary file, fsync,
rename), readable by its owner only.

A snapshot is consistent: writes to moto's DynamoDB take a lock that the snapshot holds while it
copies, so a transaction (a key and its audit event) is in the file whole or not at all.
What does not survive (README, "Local state"): KMS keys (new each start, so tokens signed before a
restart stop verifying), SQS messages, Step Functions executions, in-memory caches.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from infra.local import moto_host

STATE_FILE = "dynamodb.json"
FORMAT = 1
SAVE_INTERVAL_S = 2.0
_BATCH = 25

log = logging.getLogger("local.state")


class _Writes:
    """Every write to moto's DynamoDB, counted, under one lock a snapshot can hold."""

    lock = threading.RLock()
    count = 0


def track_dynamodb_writes() -> None:
    """Wrap the write paths of moto's DynamoDB backend (BatchWriteItem goes through put and
    delete; a transaction through the single-item writes, hence a reentrant lock)."""
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend.put_item, "_gateway_tracked", False):
        return

    def tracked(method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            with _Writes.lock:
                result = method(*args, **kwargs)
                _Writes.count += 1
                return result

        counted._gateway_tracked = True  # type: ignore[attr-defined]
        return counted

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        setattr(DynamoDBBackend, name, tracked(getattr(DynamoDBBackend, name)))


@dataclass(frozen=True)
class StackTable:
    key: str  # "<stack>/<logical id>": the same on every deploy of the same template
    name: str  # physical name in this deploy
    ttl_attribute: str | None


def stack_tables(stacks: list[moto_host.DeployedStack]) -> list[StackTable]:
    tables = []
    for stack in stacks:
        for logical, resource in stack.template.get("Resources", {}).items():
            if resource.get("Type") != "AWS::DynamoDB::Table" or logical not in stack.physical_ids:
                continue
            ttl = resource.get("Properties", {}).get("TimeToLiveSpecification") or {}
            tables.append(
                StackTable(
                    f"{stack.name}/{logical}",
                    stack.physical_id(logical),
                    ttl.get("AttributeName") if ttl.get("Enabled") else None,
                )
            )
    return tables


def _attribute(value: Any) -> dict[str, Any]:
    """moto's stored attribute as DynamoDB JSON (what the wire carries)."""
    kind, raw = value.type, value.value
    if kind == "M":
        return {"M": {k: _attribute(v) for k, v in raw.items()}}
    if kind == "L":
        return {"L": [_attribute(v) for v in raw]}
    if kind == "B":
        return {"B": _b64(raw)}
    if kind == "BS":
        return {"BS": [_b64(v) for v in raw]}
    if kind in ("N", "S"):
        return {kind: str(raw)}
    if kind in ("NS", "SS"):
        return {kind: [str(v) for v in raw]}
    return {kind: raw}  # BOOL, NULL


def _b64(raw: str | bytes) -> str:
    # moto keeps binary as it came over the wire (base64 text), or as bytes when set internally.
    return base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw


def _expired(item: dict[str, Any], ttl_attribute: str | None, now: float) -> bool:
    """What DynamoDB's TTL would delete anyway is not carried over."""
    value = item.get(ttl_attribute) if ttl_attribute else None
    if not value or "N" not in value:
        return False
    try:
        return float(value["N"]) < now
    except ValueError:
        return False


def snapshot(tables: list[StackTable]) -> tuple[dict[str, Any], int]:
    """The saved document, and the write count it includes."""
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[moto_host.ACCOUNT_ID][moto_host.REGION]
    now = time.time()
    saved: dict[str, Any] = {}
    with _Writes.lock:
        count = _Writes.count
        for table in tables:
            stored = backend.tables.get(table.name)
            if stored is None:
                continue
            items = ({k: _attribute(v) for k, v in item.attrs.items()} for item in stored.all_items())
            saved[table.key] = {
                "table_name": table.name,
                "items": [i for i in items if not _expired(i, table.ttl_attribute, now)],
            }
    return {"format": FORMAT, "saved_at": datetime.now(UTC).isoformat(timespec="seconds"), "tables": saved}, count


def write_atomically(path: Path, document: dict[str, Any]) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(document, file, separators=(",", ":"))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _binary(value: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB JSON from the file as boto3 takes it: binary as bytes."""
    kind, raw = next(iter(value.items()))
    if kind == "B":
        return {"B": base64.b64decode(raw)}
    if kind == "BS":
        return {"BS": [base64.b64decode(v) for v in raw]}
    if kind == "M":
        return {"M": {k: _binary(v) for k, v in raw.items()}}
    if kind == "L":
        return {"L": [_binary(v) for v in raw]}
    return value


def load(path: Path, tables: list[StackTable], dynamodb: Any) -> dict[str, int]:
    """Put the saved items back (BatchWriteItem); returns items restored per table key. An
    unreadable file is moved aside, never overwritten, and the runtime starts empty."""
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r}, expected {FORMAT}")
        saved: dict[str, Any] = document["tables"]
    except (ValueError, KeyError, TypeError) as error:
        aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
        path.replace(aside)
        log.warning("local state %s is unreadable (%s); moved to %s, starting empty", path, error, aside)
        return {}
    by_key = {t.key: t for t in tables}
    restored: dict[str, int] = {}
    for key, content in saved.items():
        table = by_key.get(key)
        if table is None:
            log.warning("saved table %s is no longer in the template; its items are not restored", key)
            continue
        items = content.get("items", [])
        try:
            for start in range(0, len(items), _BATCH):
                requests = [
                    {"PutRequest": {"Item": {k: _binary(v) for k, v in item.items()}}}
                    for item in items[start : start + _BATCH]
                ]
                pending: dict[str, Any] = {table.name: requests}
                while pending:
                    pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        except Exception as error:  # noqa: BLE001 - one table whose schema changed must not stop the start
            log.warning("could not restore table %s (%s); it starts empty or partly filled", key, error)
            continue
        restored[key] = len(items)
    return restored


class LocalState:
    """Restores after the deploy, saves while running and on stop (README, "Local state")."""

    def __init__(self, state_dir: Path, stacks: list[moto_host.DeployedStack], stop_event: threading.Event) -> None:
        self.path = state_dir / STATE_FILE
        self.tables = stack_tables(stacks)
        self.stop_event = stop_event
        self._save_lock = threading.Lock()
        self._saved_count = -1
        self._thread: threading.Thread | None = None

    @classmethod
    def attach(cls, state_dir: Path, stacks: list[moto_host.DeployedStack], stop_event: threading.Event) -> LocalState:
        """Load what the last run saved into the freshly deployed tables and keep saving."""
        state = cls(state_dir, stacks, stop_event)
        track_dynamodb_writes()
        restored = load(state.path, state.tables, boto3.client("dynamodb"))
        if restored:
            log.info("restored %d items into %d tables from %s", sum(restored.values()), len(restored), state.path)
        state._saved_count = _Writes.count  # what was just loaded is what the file holds
        state._thread = threading.Thread(target=state._run, name="local-state", daemon=True)
        state._thread.start()
        return state

    def save(self) -> bool:
        """Save if anything was written since the last save; True when the file was written."""
        with self._save_lock:
            if _Writes.count == self._saved_count:
                return False
            try:
                document, count = snapshot(self.tables)
                write_atomically(self.path, document)
            except OSError as error:
                log.warning("could not save local state to %s: %s", self.path, error)
                return False
            self._saved_count = count
            return True

    def _run(self) -> None:
        while not self.stop_event.wait(SAVE_INTERVAL_S):
            self.save()

    def close(self) -> None:
        """The final save, once the servers and functions have stopped writing."""
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.save():
            log.info("local state saved to %s", self.path)


def discard(state_dir: Path) -> bool:
    """Start clean (`--fresh`): forget the saved tables; True when there was something to forget."""
    path = state_dir / STATE_FILE
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed
