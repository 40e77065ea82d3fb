"""The scopes a credential can carry and the subscription tiers with their default limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

Tier = Literal["free", "basic", "professional", "enterprise"]
ClientType = Literal["web_app", "mobile_app", "integration", "webhook", "internal"]

# Scope -> what it grants. Routes defined by admins (issue 4) require scopes from this list.
SCOPES: dict[str, str] = {
    "admin": "Manage the gateway: clients, keys, routes, integrations, webhooks, audit",
    "gateway:read": "Read routes, gateways and analytics",
    "data:read": "Read market data: prices, quotes, history, providers",
    "data:subscribe": "Subscribe to and unsubscribe from market data feeds",
    "banking:read": "Read bank accounts, balances and transactions",
    "payments:write": "Initiate payments (requires a certificate-bound client)",
    "integrations:read": "Read integrations, their status and logs",
    "integrations:write": "Create, change, test and sync integrations",
    "webhooks:read": "Read webhook endpoints and deliveries",
    "webhooks:write": "Create and change webhook endpoints, replay deliveries",
    "events:write": "Publish test events (POST /api/v1/events/trigger)",
}


@dataclass(frozen=True)
class RateLimits:
    per_minute: int
    per_hour: int
    per_day: int


class TierDefaults(NamedTuple):
    limits: RateLimits
    monthly_quota: int | None  # None: no monthly cap


TIERS: dict[str, TierDefaults] = {
    "free": TierDefaults(RateLimits(60, 1_000, 10_000), 100_000),
    "basic": TierDefaults(RateLimits(300, 10_000, 100_000), 1_000_000),
    "professional": TierDefaults(RateLimits(1_000, 50_000, 1_000_000), 10_000_000),
    "enterprise": TierDefaults(RateLimits(10_000, 500_000, 10_000_000), None),
}


def unknown_scopes(scopes: list[str]) -> list[str]:
    return sorted({s for s in scopes if s not in SCOPES})
