"""What the webhook logic needs from the outside world; dal/ and the HTTP sender implement these,
tests pass in-memory fakes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from functions.webhooks.logic.model import Attempt, Delivery, Endpoint


class EndpointStore(Protocol):
    def get(self, endpoint_id: str) -> Endpoint | None: ...
    def record_success(self, endpoint: Endpoint) -> None: ...
    def record_failure(self, endpoint: Endpoint, at: str, breaker_open_until: float) -> Endpoint: ...
    def disable(self, endpoint: Endpoint, reason: str, at: str, event: dict[str, Any]) -> bool: ...
    def advance_order(self, endpoint_id: str, seq: int) -> None: ...
    def take_probe(self, endpoint_id: str, now: float, until: float) -> bool: ...


class DeliveryStore(Protocol):
    def get(self, delivery_id: str) -> Delivery | None: ...
    def claim(self, delivery: Delivery, now: float, lease_until: float) -> bool: ...
    def record(
        self, claimed: Delivery, attempt: Attempt, after: Delivery, events: list[dict[str, Any]] | None = None
    ) -> bool: ...
    def settle(self, delivery: Delivery, after: Delivery) -> bool: ...
    def mark_queued(self, delivery_id: str, attempts: int) -> None: ...
    def queued_for(self, delivery_id: str) -> int | None: ...


class DeliveryQueue(Protocol):
    def schedule(self, delivery_id: str, attempts: int, not_before: float, waits: int = 0) -> None: ...
    def dead_letter(self, delivery: Delivery) -> None: ...


class Throttle(Protocol):
    def admit(self, endpoint_id: str, per_second: int) -> float | None: ...


class KeyDecrypter(Protocol):
    def decrypt(self, endpoint_id: str, ciphertext: bytes) -> str: ...


class KeyVault(KeyDecrypter, Protocol):
    def encrypt(self, endpoint_id: str, secret: str) -> bytes: ...


@dataclass(frozen=True)
class Sent:
    """A receiver's answer to one attempt."""

    status: int
    headers: dict[str, str]
    body_sample: str
    latency_ms: int


class SendFailed(Exception):
    """No answer: refused, reset, blocked by the SSRF guard, or timed out."""

    def __init__(self, message: str, latency_ms: int) -> None:
        super().__init__(message)
        self.latency_ms = latency_ms


class Sender(Protocol):
    def send(self, method: str, url: str, headers: dict[str, str], body: bytes, timeout_s: float) -> Sent: ...


@dataclass
class Effects:
    """What processing one message did, for logs and tests."""

    outcome: str = ""
    attempt: Attempt | None = None
    published: list[str] = field(default_factory=list)
