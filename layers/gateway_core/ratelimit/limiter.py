"""The decision for one request: spend from every scope's item, or from a warm lease, or refuse.

Exact mode (the default): one conditional UpdateItem per scope, no read first. The container
remembers each item's last state to guess which expression fits (busy or idle); a wrong guess
costs one more write, never a wrong answer. When a later scope refuses, the scopes already spent
get their tokens back (an unconditional refund: the bucket can only get fuller), so a refusal
spends nothing; between the spend and the refund a concurrent request may be refused that would
have passed, which errs on the side of admitting less.

Leased mode (`Plan` with `lease` > 0; for hot keys): the container spends a block of tokens in
one write and hands them out locally until they run out or `lease_seconds` pass. Writes per
second on the key drop by the block size. Leased tokens are already spent in DynamoDB, so the
bucket's bound still holds for what is leased; what a lease changes is *when* tokens are used:
tokens leased just before an interval and used inside it add at most (containers x block) to any
interval's count, and tokens a container does not use before its lease expires are lost
(admitting less). A container that cannot get a whole block (the client is at its limit)
backs off: it takes what is left, then refuses locally for one block's refill time, doubling with
each short or refused attempt up to `lease_seconds` (with jitter, so containers spread out), and
back to nothing once a whole block is granted. A client far over its limit so costs a few writes
per container per second, not one per refused request (a conditional write that fails still
consumes the hot key's capacity), and may be admitted a little less than its limit. The
benchmark measures both.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from gateway_core.errors import DependencyUnavailable
from gateway_core.ratelimit.gcra import MICROS
from gateway_core.ratelimit.plan import ItemState, Plan, PolicyStatus, evaluate, statuses
from gateway_core.ratelimit.store import RateLimitStore

# Per-container memory of keys (guesses, leases, back-offs): the oldest go first beyond this, so
# callers on ever-new addresses cannot grow a warm container without bound. Forgetting costs at
# most a write (a guess) or unused tokens (a lease), never an over-admission.
MAX_REMEMBERED_KEYS = 20_000
_V = TypeVar("_V")
MAX_ATTEMPTS = 4  # busy/idle guesses that can be wrong: first guess, then the state each failure shows


class Decision(NamedTuple):
    admitted: bool
    policies: list[PolicyStatus]
    retry_after: int | None = None  # seconds, when refused
    refused_by: str | None = None  # the scope key that refused
    writes: int = 0  # DynamoDB writes this decision made (for the benchmark and the tests)


class ScopedPlan(NamedTuple):
    """A plan as one request uses it: `prefix` names its policies in the headers (e.g. "route-"),
    `lease` > 0 asks for leased mode with blocks of that many tokens."""

    plan: Plan
    prefix: str = ""
    lease: int = 0


def _bound(remembered: dict[str, _V]) -> None:
    while len(remembered) > MAX_REMEMBERED_KEYS:
        remembered.pop(next(iter(remembered)), None)


def _lease_key(plan: Plan) -> str:
    """Leases and back-offs belong to an item *and* the buckets spent from it: a client's lease
    taken on one route (with that route's per-client windows) must not serve another route, and
    a tier's reserve on the global guard must not make other tiers wait."""
    return f"{plan.key}|{','.join(w.attr for w in plan.windows)}|{plan.quota is not None}|{plan.reserve}"


@dataclass
class _Backoff:
    until: float
    level: int
    state: ItemState


@dataclass
class _Lease:
    tokens: int
    expires: float
    level: float  # the smallest remaining share of capacity when it was taken
    state: ItemState = field(default_factory=ItemState)


class RateLimiter:
    def __init__(
        self,
        store: RateLimitStore,
        *,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.lease_seconds = lease_seconds
        self._guesses: dict[str, ItemState] = {}
        self._leases: dict[str, _Lease] = {}
        self._backoff: dict[str, _Backoff] = {}  # leased keys at their limit: refuse locally until
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._lock = threading.Lock()

    def _now(self) -> int:
        return int(self.clock() * MICROS)

    def check(self, scopes: Sequence[ScopedPlan], cost: int = 1) -> Decision:
        spent: list[ScopedPlan] = []
        policies: list[PolicyStatus] = []
        writes = 0
        for scoped in scopes:
            try:
                admitted, state, wait, n = self._spend(scoped, cost)
            except Exception as error:
                # DynamoDB throttled or failed: what was spent goes back, and the caller may retry.
                with contextlib.suppress(Exception):
                    self._give_back(spent, cost)
                raise DependencyUnavailable(
                    "Rate limits could not be checked; retry shortly.",
                    code="rate_limiter_unavailable",
                    headers={"Retry-After": "1"},
                ) from error
            writes += n
            now = self._now()
            if not admitted:
                writes += self._give_back(spent, cost)
                policies.extend(statuses(scoped.plan, state, now, scoped.prefix))
                return Decision(
                    admitted=False,
                    policies=policies,
                    retry_after=max(1, -(-wait // MICROS)),
                    refused_by=scoped.plan.key,
                    writes=writes,
                )
            spent.append(scoped)
            policies.extend(statuses(scoped.plan, state, now, scoped.prefix))
        return Decision(admitted=True, policies=policies, writes=writes)

    def _spend(self, scoped: ScopedPlan, cost: int) -> tuple[bool, ItemState, int, int]:
        """(admitted, state for the headers, wait in microseconds if refused, writes made)."""
        if scoped.lease > 0:
            return self._spend_leased(scoped, cost)
        return self._spend_exact(scoped.plan, cost)

    def _spend_exact(self, plan: Plan, cost: int) -> tuple[bool, ItemState, int, int]:
        now = self._now()
        fixed = evaluate(plan, ItemState(), now, cost)
        if not fixed.admitted:
            # More than the capacity or the quota even when full: no write can change that.
            return False, ItemState(), fixed.wait_us, 0
        guess = self._guesses.get(plan.key, ItemState())
        writes = 0
        for _ in range(MAX_ATTEMPTS):
            passed, state = self.store.spend(plan, guess, now, cost)
            writes += 1
            self._guesses[plan.key] = state
            _bound(self._guesses)
            if passed:
                return True, state, 0, writes
            verdict = evaluate(plan, state, now, cost)
            if not verdict.admitted:
                return False, state, verdict.wait_us, writes
            guess = state  # the tokens are there; the guess of busy/idle was wrong
            now = self._now()
        # Contention moved the item under us every time: refuse rather than guess (admits less).
        return False, guess, MICROS, writes

    def _spend_leased(self, scoped: ScopedPlan, cost: int) -> tuple[bool, ItemState, int, int]:
        plan = scoped.plan
        with self._lock:
            lease = self._leases.get(_lease_key(plan))
            if lease and lease.tokens >= cost and lease.expires > self.clock() and lease.level >= plan.reserve:
                lease.tokens -= cost
                return True, lease.state, 0, 0
            backoff = self._backoff.get(_lease_key(plan))
            if backoff is not None and backoff.until > self.clock():
                return False, backoff.state, max(1, int((backoff.until - self.clock()) * MICROS)), 0
        # A block never exceeds what a full bucket could give (after the reserve).
        ceiling = min((w.capacity - plan.reserve_tokens(w) for w in plan.windows), default=scoped.lease)
        if plan.quota is not None:
            ceiling = min(ceiling, plan.quota.limit)
        block = full = max(cost, min(scoped.lease, ceiling))
        known = self._guesses.get(plan.key)
        if known is not None:
            # The last state seen says less than a block is left: ask for that, not a failed write.
            block = max(cost, min(block, self._available(plan, known)))
        passed, state, wait, writes = self._spend_exact(plan, block)
        if not passed and block > cost:
            # Not a whole block left: take what there is (at least this request's cost).
            available = self._available(plan, state)
            if available >= cost:
                block = available
                passed, state, wait, more = self._spend_exact(plan, block)
                writes += more
            if not passed:
                passed, state, wait, more = self._spend_exact(plan, cost)
                block = cost
                writes += more
        self._note_contention(plan, state, full, short=not passed or block < full)
        if not passed:
            return False, state, wait, writes
        now = self._now()
        level = min(
            (w.remaining(state.tats.get(w.attr), now) / w.capacity for w in plan.windows),
            default=1.0,
        )
        with self._lock:
            _bound(self._leases)
            self._leases[_lease_key(plan)] = _Lease(
                tokens=block - cost, expires=self.clock() + self.lease_seconds, level=level, state=state
            )
        return True, state, 0, writes

    def _note_contention(self, plan: Plan, state: ItemState, full: int, *, short: bool) -> None:
        with self._lock:
            if not short:
                self._backoff.pop(_lease_key(plan), None)
                return
            previous = self._backoff.get(_lease_key(plan))
            level = previous.level + 1 if previous else 0
            refill = full * min(w.period / w.limit for w in plan.windows) if plan.windows else self.lease_seconds
            pause = min(self.lease_seconds, refill * 2**level) * self._rng.uniform(0.5, 1.0)
            self._backoff[_lease_key(plan)] = _Backoff(self.clock() + pause, min(level, 30), state)
            _bound(self._backoff)

    def _available(self, plan: Plan, state: ItemState) -> int:
        now = self._now()
        counts = [max(0, w.remaining(state.tats.get(w.attr), now) - plan.reserve_tokens(w)) for w in plan.windows]
        if plan.quota is not None:
            counts.append(plan.quota.limit - state.quota_used(plan.quota, now))
        return min(counts) if counts else 0

    def _give_back(self, spent: list[ScopedPlan], cost: int) -> int:
        writes = 0
        for scoped in spent:
            if scoped.lease > 0:
                with self._lock:
                    lease = self._leases.get(_lease_key(scoped.plan))
                    if lease is not None:
                        lease.tokens += cost
                continue
            # The guess for this key may now be stale; a stale guess costs a write, never an error.
            self.store.refund(scoped.plan, cost)
            writes += 1
        return writes

    def forget(self) -> None:
        """Drop guesses and leases (tests; a container does not need this)."""
        with self._lock:
            self._guesses.clear()
            self._leases.clear()
            self._backoff.clear()
