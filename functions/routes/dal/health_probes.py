"""Probes of the AWS resources the gateway depends on. The only module here that calls boto3.

Each probe is one read-only AWS call (the schedule count pages until done).
"""

from __future__ import annotations

from typing import Any

from functions.routes.logic.health import CheckStatus, Probe, ProbeResult
from gateway_core.settings import Settings


def _table_probe(dynamodb: Any, table_name: str) -> Probe:
    def probe() -> ProbeResult:
        table = dynamodb.describe_table(TableName=table_name)["Table"]
        state = table["TableStatus"]
        return ProbeResult("ok" if state == "ACTIVE" else "warn", {"state": state})

    return probe


def _queue_probe(sqs: Any, queue_url: str, *, is_dlq: bool) -> Probe:
    def probe() -> ProbeResult:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        depth = int(attributes.get("ApproximateNumberOfMessages", 0))
        in_flight = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
        # Anything in the dead-letter queue is a delivery that needs a person.
        status: CheckStatus = "warn" if is_dlq and depth > 0 else "ok"
        return ProbeResult(status, {"depth": depth, "in_flight": in_flight})

    return probe


def _state_machine_probe(sfn: Any, arn: str) -> Probe:
    def probe() -> ProbeResult:
        state = sfn.describe_state_machine(stateMachineArn=arn).get("status", "ACTIVE")
        return ProbeResult("ok" if state == "ACTIVE" else "warn", {"state": state})

    return probe


def _schedules_probe(scheduler: Any, group: str) -> Probe:
    def probe() -> ProbeResult:
        count = 0
        for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group):
            count += len(page.get("Schedules", []))
        return ProbeResult("ok", {"count": count, "group": group})

    return probe


def build_probes(settings: Settings, clients: dict[str, Any]) -> dict[str, Probe]:
    """Probes for whatever this function was configured to see (unset resources are skipped)."""
    probes: dict[str, Probe] = {}
    if settings.table_name:
        probes["table"] = _table_probe(clients["dynamodb"], settings.table_name)
    if settings.rate_limit_table_name:
        probes["rate_limit_table"] = _table_probe(clients["dynamodb"], settings.rate_limit_table_name)
    if settings.webhook_queue_url:
        probes["webhook_queue"] = _queue_probe(clients["sqs"], settings.webhook_queue_url, is_dlq=False)
    if settings.webhook_dlq_url:
        probes["webhook_dlq"] = _queue_probe(clients["sqs"], settings.webhook_dlq_url, is_dlq=True)
    if settings.state_machine_arn:
        probes["state_machine"] = _state_machine_probe(clients["stepfunctions"], settings.state_machine_arn)
    if settings.schedule_group_name:
        probes["schedules"] = _schedules_probe(clients["scheduler"], settings.schedule_group_name)
    return probes
