"""What one rate-limit item holds, how to read it, and the one conditional update that spends it.

An item (RateLimit table, key `PK`) holds every bucket of one scope: the TAT of each window
(per minute, hour, day; for a client also its per-route windows) and the calendar-month quota
count. One UpdateItem checks and spends all of them at once, so a refusal by any bucket spends
nothing anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gateway_core.ratelimit.gcra import MICROS, Quota, Window, month_bounds, month_of

# Items outlive their longest window (an idle bucket is full, the same as no item) and, with a
# quota, the month they count.
_TTL_SLACK_SECONDS = 86_400


@dataclass(frozen=True)
class Plan:
    """The buckets of one scope, spent together. `reserve` is the share of each window's capacity
    that must stay unspent after this request (0 for everyone but the global guard, where lower
    tiers leave room for higher ones)."""

    key: str
    windows: tuple[Window, ...]
    quota: Quota | None = None
    reserve: float = 0.0

    def __post_init__(self) -> None:
        if not self.windows and self.quota is None:
            raise ValueError("a plan needs at least one window or a quota")
        if not 0.0 <= self.reserve < 1.0:
            raise ValueError("reserve is a share of capacity in [0, 1)")
        attrs = [w.attr for w in self.windows]
        if len(set(attrs)) != len(attrs):
            raise ValueError("window attributes must be distinct")

    def reserve_tokens(self, window: Window) -> int:
        return int(self.reserve * window.capacity)


@dataclass
class ItemState:
    """A rate-limit item as read back from DynamoDB (None: no such bucket yet, i.e. full)."""

    tats: dict[str, int | None] = field(default_factory=dict)
    quota_period: str | None = None
    quota_count: int = 0

    @classmethod
    def from_item(cls, item: dict[str, Any] | None, plan: Plan) -> ItemState:
        item = item or {}
        tats = {w.attr: _number(item.get(w.attr)) for w in plan.windows}
        state = cls(tats=tats)
        if plan.quota is not None:
            period = item.get(plan.quota.period_attr, {}).get("S")
            state.quota_period = period
            state.quota_count = _number(item.get(plan.quota.count_attr)) or 0
        return state

    def quota_used(self, quota: Quota, now: int) -> int:
        return self.quota_count if self.quota_period == month_of(now) else 0


def _number(value: dict[str, Any] | None) -> int | None:
    if not value or "N" not in value:
        return None
    return int(value["N"])


class Verdict(NamedTuple):
    admitted: bool
    wait_us: int  # when refused: microseconds until the request would be admitted


def evaluate(plan: Plan, state: ItemState, now: int, cost: int) -> Verdict:
    """Whether the state admits `cost` tokens now; when not, how long until it would."""
    wait = 0
    for window in plan.windows:
        reserve = plan.reserve_tokens(window)
        if cost + reserve > window.capacity:
            return Verdict(False, window.period * MICROS)
        wait = max(wait, window.wait(state.tats.get(window.attr), now, cost, reserve))
    if plan.quota is not None and state.quota_used(plan.quota, now) + cost > plan.quota.limit:
        wait = max(wait, (month_bounds(now)[1] * MICROS) - now)
    return Verdict(wait == 0, wait)


def spend_request(plan: Plan, guess: ItemState, now: int, cost: int) -> dict[str, Any]:
    """UpdateItem arguments that spend `cost` tokens from every bucket of the plan, for the state
    `guess` believes the item is in. The conditions are exact for that state: if the guess is
    wrong, or the tokens are not there, the write fails and changes nothing."""
    if any(cost + plan.reserve_tokens(w) > w.capacity for w in plan.windows):
        # An idle bucket's condition does not look at capacity: never build a write it would pass.
        raise ValueError("cost exceeds a window's capacity; refuse without writing")
    names: dict[str, str] = {"#ttl": "ttl"}
    values: dict[str, Any] = {":now": {"N": str(now)}} if plan.windows else {}
    sets: list[str] = []
    conditions: list[str] = []
    longest = 0
    for i, window in enumerate(plan.windows):
        attr, step = f"#w{i}", cost * window.interval
        names[attr] = window.attr
        tat = guess.tats.get(window.attr)
        if tat is not None and tat >= now:
            values[f":s{i}"] = {"N": str(step)}
            values[f":c{i}"] = {"N": str(window.ceiling(now, cost, plan.reserve_tokens(window)))}
            sets.append(f"{attr} = {attr} + :s{i}")
            conditions.append(f"({attr} >= :now AND {attr} <= :c{i})")
        else:
            values[f":n{i}"] = {"N": str(now + step)}
            sets.append(f"{attr} = :n{i}")
            conditions.append(f"(attribute_not_exists({attr}) OR {attr} < :now)")
        longest = max(longest, window.period)
    expires = now // MICROS + longest + _TTL_SLACK_SECONDS
    if plan.quota is not None:
        quota = plan.quota
        names.update({"#q": quota.count_attr, "#qp": quota.period_attr})
        values[":k"] = {"N": str(cost)}
        values[":period"] = {"S": month_of(now)}
        if cost > quota.limit:
            raise ValueError("cost exceeds the quota; refuse without writing")
        if guess.quota_period == month_of(now):
            values[":qmax"] = {"N": str(quota.limit - cost)}
            sets.append("#q = #q + :k")
            conditions.append("(#qp = :period AND #q <= :qmax)")
        else:
            sets.extend(["#qp = :period", "#q = :k"])
            conditions.append("(attribute_not_exists(#qp) OR #qp <> :period)")
        expires = max(expires, month_bounds(now)[1] + _TTL_SLACK_SECONDS)
    values[":ttl"] = {"N": str(expires)}
    sets.append("#ttl = :ttl")
    return {
        "Key": {"PK": {"S": plan.key}},
        "UpdateExpression": "SET " + ", ".join(sets),
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def refund_request(plan: Plan, cost: int) -> dict[str, Any]:
    """UpdateItem arguments that give `cost` tokens back to every bucket (after another scope
    refused the same request). Unconditional: it only ever makes the bucket fuller."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets: list[str] = []
    for i, window in enumerate(plan.windows):
        names[f"#w{i}"] = window.attr
        values[f":s{i}"] = {"N": str(cost * window.interval)}
        sets.append(f"#w{i} = #w{i} - :s{i}")
    if plan.quota is not None:
        names["#q"] = plan.quota.count_attr
        values[":k"] = {"N": str(cost)}
        sets.append("#q = #q - :k")
    return {
        "Key": {"PK": {"S": plan.key}},
        "UpdateExpression": "SET " + ", ".join(sets),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


class PolicyStatus(NamedTuple):
    """One named policy after a decision: the RateLimit-Policy and RateLimit parameters."""

    name: str
    quota: int  # q
    window: int  # w, seconds
    remaining: int  # r
    reset: int  # t, seconds


def statuses(plan: Plan, state: ItemState, now: int, prefix: str = "") -> list[PolicyStatus]:
    out = [
        PolicyStatus(
            name=prefix + w.name,
            quota=w.limit,
            window=w.period,
            remaining=min(w.limit, w.remaining(state.tats.get(w.attr), now)),
            reset=w.reset(state.tats.get(w.attr), now),
        )
        for w in plan.windows
    ]
    if plan.quota is not None:
        start, end = month_bounds(now)
        out.append(
            PolicyStatus(
                name=prefix + plan.quota.name,
                quota=plan.quota.limit,
                window=end - start,
                remaining=max(0, plan.quota.limit - state.quota_used(plan.quota, now)),
                reset=max(0, end - now // MICROS),
            )
        )
    return out
