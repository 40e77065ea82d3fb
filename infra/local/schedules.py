"""EventBridge rules with schedule expressions and EventBridge Scheduler schedules, fired here.

moto stores both but never fires them. A ticker reads them from moto on every tick (so
schedules created at run time fire too) and invokes their targets when due. Time can run
faster: with `time_scale` 60 a `rate(1 minute)` schedule fires every real second. Schedules
fire on time; Scheduler's flexible time window is not simulated.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
from croniter import croniter

from infra.local.lambdas import LambdaRuntime
from infra.local.moto_host import ACCOUNT_ID, REGION

log = logging.getLogger("local.schedules")

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_DOW_NAMES = {str(i): n for i, n in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}


class VirtualClock:
    """Wall-clock time that runs `scale` times faster from the moment it starts."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self._real_start = time.monotonic()
        self._virtual_start = datetime.now(UTC)

    def now(self) -> datetime:
        return self._virtual_start + timedelta(seconds=(time.monotonic() - self._real_start) * self.scale)


def _dow_name(value: str) -> str:
    return _DOW_NAMES.get(value, value)


def _dow_token(token: str) -> str:
    """One comma-separated part of an AWS day-of-week field, in croniter's terms."""
    if "#" in token:  # d#n: the n-th <d> of the month; only the day is renumbered
        day, nth = token.split("#", 1)
        return f"{_dow_name(day)}#{nth}"
    if token.endswith("L") and token[:-1].isdigit():  # dL: the last <d> of the month
        return f"L{int(token[:-1]) - 1}"  # croniter counts 0 = Sunday here
    if "-" in token:
        low, high = token.split("-", 1)
        return f"{_dow_name(low)}-{_dow_name(high)}"
    return _dow_name(token)


def _aws_cron_to_croniter(fields: list[str]) -> tuple[str, str]:
    """AWS cron has six fields (min hour dom month dow year), '?' and 1-7 = SUN-SAT."""
    minute, hour, dom, month, dow, year = fields
    dom = "*" if dom == "?" else dom
    dow = "*" if dow in ("?", "*") else ",".join(_dow_token(t) for t in dow.split(","))
    return f"{minute} {hour} {dom} {month} {dow}", year


def next_fire(expression: str, after: datetime, timezone: str | None = None) -> datetime | None:
    """The first firing strictly after `after` (UTC), or None when there is none."""
    expression = expression.strip()
    rate = _RATE.match(expression)
    if rate:
        return after + timedelta(seconds=int(rate.group(1)) * _UNITS[rate.group(2).rstrip("s")])
    if expression.startswith("at(") and expression.endswith(")"):
        zone = ZoneInfo(timezone) if timezone else UTC
        at = datetime.fromisoformat(expression[3:-1]).replace(tzinfo=zone).astimezone(UTC)
        return at if at > after else None
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split()
        if len(fields) != 6:
            raise ValueError(f"AWS cron needs six fields: {expression}")
        spec, year = _aws_cron_to_croniter(fields)
        zone = ZoneInfo(timezone) if timezone else UTC
        years = None if year == "*" else _expand_years(year)
        start = after.astimezone(zone)
        while True:
            if years is not None:
                later = [y for y in years if y >= start.year]
                if not later:
                    return None
                if later[0] > start.year:  # jump straight to the next allowed year
                    start = datetime(later[0], 1, 1, tzinfo=zone) - timedelta(microseconds=1)
            candidate: datetime = croniter(spec, start).get_next(datetime)
            if years is None or candidate.year in years:
                return candidate.astimezone(UTC)
            start = candidate
    raise ValueError(f"unsupported schedule expression: {expression}")


_LAST_YEAR = 2199  # AWS accepts years 1970-2199


def _expand_years(field: str) -> list[int]:
    years: set[int] = set()
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part == "*":
            low, high = 1970, _LAST_YEAR
        elif "-" in part:
            low_text, high_text = part.split("-", 1)
            low, high = int(low_text), int(high_text)
        else:
            low = int(part)
            high = _LAST_YEAR if step > 1 else low
        years.update(range(low, high + 1, step))
    return sorted(years)


@dataclass
class _Due:
    next_at: datetime | None
    expression: str


class Scheduler:
    def __init__(self, lambdas: LambdaRuntime, clock: VirtualClock, stop: threading.Event, tick_s: float = 0.1) -> None:
        self.lambdas = lambdas
        self.clock = clock
        self.stop = stop
        self.tick_s = tick_s
        self.fired: dict[str, int] = {}
        self._due: dict[str, _Due] = {}
        self.events = boto3.client("events")
        self.scheduler = boto3.client("scheduler")
        self.sqs = boto3.client("sqs")
        self.sfn = boto3.client("stepfunctions")
        self.thread = threading.Thread(target=self._run, name="schedules", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception:
                log.exception("schedule tick failed")

    def _is_due(self, key: str, expression: str, timezone: str | None = None) -> bool:
        now = self.clock.now()
        state = self._due.get(key)
        if state is None or state.expression != expression:
            # rate() counts from when the runtime first sees it, as AWS counts from creation;
            # cron() follows its calendar; at() fires once at its time (at once if already past).
            anchor = datetime.min.replace(tzinfo=UTC) if expression.startswith("at(") else now
            state = _Due(next_fire(expression, anchor, timezone), expression)
            self._due[key] = state
        if state.next_at is None or state.next_at > now:
            return False
        state.next_at = next_fire(expression, state.next_at, timezone)
        self.fired[key] = self.fired.get(key, 0) + 1
        return True

    def tick(self) -> None:
        seen: set[str] = set()
        for rule in self._rules():
            key = f"rule:{rule['Arn']}"
            seen.add(key)
            if self._is_due(key, rule["ScheduleExpression"]):
                self._fire_rule(rule)
        for schedule in self._schedules():
            key = f"schedule:{schedule['Arn']}"
            seen.add(key)
            if self._is_due(key, schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone")):
                self._fire_schedule(schedule)
        for key in set(self._due) - seen:
            del self._due[key]

    def _rules(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = []
        for bus in self.events.list_event_buses().get("EventBuses", []):
            for page in self.events.get_paginator("list_rules").paginate(EventBusName=bus["Name"]):
                rules.extend(r for r in page["Rules"] if r.get("ScheduleExpression") and r.get("State") == "ENABLED")
        return rules

    def _schedules(self) -> list[dict[str, Any]]:
        schedules = []
        for page in self.scheduler.get_paginator("list_schedules").paginate():
            for summary in page["Schedules"]:
                if summary.get("State") != "ENABLED":
                    continue
                detail = self.scheduler.get_schedule(
                    Name=summary["Name"], GroupName=summary.get("GroupName", "default")
                )
                now = self.clock.now()
                if detail.get("StartDate") and detail["StartDate"] > now:
                    continue
                if detail.get("EndDate") and detail["EndDate"] < now:
                    continue
                schedules.append(detail)
        return schedules

    def _fire_rule(self, rule: dict[str, Any]) -> None:
        for target in self.events.list_targets_by_rule(
            Rule=rule["Name"], EventBusName=rule.get("EventBusName", "default")
        )["Targets"]:
            event: Any = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT_ID,
                "time": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": [rule["Arn"]],
                "detail": {},
            }
            if target.get("Input"):
                event = json.loads(target["Input"])
            self._deliver(target["Arn"], event)

    def _fire_schedule(self, schedule: dict[str, Any]) -> None:
        target = schedule["Target"]
        raw = target.get("Input")
        self._deliver(target["Arn"], json.loads(raw) if raw else {})
        if schedule.get("ActionAfterCompletion") == "DELETE" and schedule["ScheduleExpression"].startswith("at("):
            self.scheduler.delete_schedule(Name=schedule["Name"], GroupName=schedule.get("GroupName", "default"))

    def _deliver(self, arn: str, event: Any) -> None:
        if ":lambda:" in arn:
            self.lambdas.invoke_async(arn, event)  # EventBridge and Scheduler invoke asynchronously
        elif ":sqs:" in arn:
            name = arn.split(":")[-1]
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
        elif ":states:" in arn:
            self.sfn.start_execution(stateMachineArn=arn, input=json.dumps(event))
        else:
            log.warning("schedule target %s is not supported locally", arn)
