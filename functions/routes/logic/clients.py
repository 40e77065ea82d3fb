"""API clients: registration, changes, suspension, deletion and secret rotation.

Rules only: storage comes in through `ClientStore`, the caller through `Actor`. A client secret
exists in clear only in the value returned at registration or rotation; the store keeps a scrypt
hash. Every change is recorded with an audit event by the store in the same transaction.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from functions.routes.logic import lockout
from functions.routes.logic.catalog import TIERS, RateLimits, unknown_scopes
from functions.routes.logic.names import InvalidName, display_name
from gateway_core.audit import Actor
from gateway_core.clock import iso, parse_iso
from gateway_core.errors import Conflict, NotFound, ValidationFailed
from gateway_core.preconditions import ConcurrentChange as ConcurrentChange
from gateway_core.preconditions import Expected, check, no_lost_update
from gateway_core.secrets_hashing import generate_client_secret, hash_secret

Status = Literal["active", "suspended"]
# A rotated credential (a key, a client secret) keeps working this long unless told otherwise.
DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=30)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ENDPOINT = re.compile(r"^/[A-Za-z0-9_\-./{}*+]*$")


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    description: str
    client_type: str
    organization: str
    contact_email: str
    allowed_scopes: list[str]
    allowed_endpoints: list[str]
    ip_allowlist: list[str]
    tier: str
    rate_limits: RateLimits | None  # None: the tier's defaults
    monthly_quota: int | None
    expires_at: str | None
    status: Status
    created_at: str
    updated_at: str
    version: int
    secret_hash: str = field(repr=False)
    # The secret a rotation replaced, accepted until `grace_until` (the rotation grace).
    previous_secret_hash: str | None = field(default=None, repr=False)
    grace_until: str | None = None

    def effective_limits(self) -> RateLimits:
        return self.rate_limits or TIERS[self.tier].limits

    def effective_quota(self) -> int | None:
        return self.monthly_quota if self.monthly_quota is not None else TIERS[self.tier].monthly_quota

    def public(self) -> dict[str, Any]:
        """Everything but the secret hashes: what responses and audit hashes are made of."""
        data = asdict(self)
        data.pop("secret_hash")
        data.pop("previous_secret_hash")
        data["rate_limits"] = asdict(self.effective_limits())
        data["rate_limits_overridden"] = self.rate_limits is not None
        data["monthly_quota"] = self.effective_quota()
        return data


@dataclass(frozen=True)
class ClientSpec:
    """What an admin supplies; validated here, whatever the transport did before."""

    name: str
    client_type: str
    contact_email: str
    allowed_scopes: list[str]
    description: str = ""
    organization: str = ""
    allowed_endpoints: list[str] = field(default_factory=list)
    ip_allowlist: list[str] = field(default_factory=list)
    tier: str = "free"
    rate_limits: RateLimits | None = None
    monthly_quota: int | None = None
    expires_at: str | None = None


class ClientStore(Protocol):
    def create(self, client: Client, actor: Actor) -> None: ...
    def get(self, client_id: str) -> Client | None: ...
    def list(self, status: str | None, limit: int, cursor: str | None) -> tuple[list[Client], str | None]: ...
    def replace(self, before: Client, after: Client, action: str, actor: Actor) -> None: ...
    def delete(self, client: Client, actor: Actor) -> None: ...


# ClientSpec fields that None resets (to the tier's defaults or to "never").
_NULLABLE = frozenset({"rate_limits", "monthly_quota", "expires_at"})


class DuplicateName(Exception):
    pass


def _normalize_cidrs(cidrs: list[str]) -> list[str]:
    normalized = []
    bad = []
    for cidr in cidrs:
        try:
            normalized.append(str(ipaddress.ip_network(cidr.strip(), strict=False)))
        except ValueError:
            bad.append(cidr)
    if bad:
        raise ValidationFailed(f"Not an IPv4 or IPv6 network (CIDR): {', '.join(bad)}", code="invalid_cidr")
    return sorted(set(normalized))


def validate(spec: ClientSpec, now: datetime, *, new_expiry: bool = True) -> ClientSpec:
    """`new_expiry`: the expiry is being set now, so it must lie in the future; a stored one that
    has passed is kept as it is (the client is expired, and may still be corrected)."""
    try:
        name = display_name(spec.name)
    except InvalidName as error:
        raise ValidationFailed(f"Client name: {error}", code="invalid_name") from error
    if not _EMAIL.fullmatch(spec.contact_email):
        raise ValidationFailed("contact_email is not an e-mail address.", code="invalid_email")
    unknown = unknown_scopes(spec.allowed_scopes)
    if unknown:
        raise ValidationFailed(
            f"Unknown scope(s): {', '.join(unknown)}", code="unknown_scope", extensions={"unknown": unknown}
        )
    bad_endpoints = [e for e in spec.allowed_endpoints if not _ENDPOINT.fullmatch(e)]
    if bad_endpoints:
        raise ValidationFailed(
            f"Endpoints are paths starting with '/': {', '.join(bad_endpoints)}", code="invalid_endpoint"
        )
    if spec.tier not in TIERS:
        raise ValidationFailed(f"Unknown tier {spec.tier!r}; one of {', '.join(TIERS)}", code="unknown_tier")
    limits = spec.rate_limits
    if limits and not (0 < limits.per_minute <= limits.per_hour <= limits.per_day):
        raise ValidationFailed(
            "Rate limits must be positive and per_minute <= per_hour <= per_day.", code="invalid_limits"
        )
    if spec.monthly_quota is not None and spec.monthly_quota <= 0:
        raise ValidationFailed("monthly_quota must be positive.", code="invalid_quota")
    expires_at = None
    if spec.expires_at:
        try:
            expiry = parse_iso(spec.expires_at)
        except ValueError as error:
            raise ValidationFailed("expires_at is not an ISO 8601 time.", code="invalid_expiry") from error
        if new_expiry and expiry <= now:
            raise ValidationFailed("expires_at is in the past.", code="invalid_expiry")
        expires_at = iso(expiry)
    return replace(
        spec,
        name=name,
        allowed_scopes=sorted(set(spec.allowed_scopes)),
        allowed_endpoints=sorted(set(spec.allowed_endpoints)),
        ip_allowlist=_normalize_cidrs(spec.ip_allowlist),
        expires_at=expires_at,
    )


def register(store: ClientStore, spec: ClientSpec, actor: Actor, now: datetime, environment: str) -> tuple[Client, str]:
    """A new active client and its secret (returned once, stored hashed)."""
    spec = validate(spec, now)
    secret = generate_client_secret(environment)
    stamp = iso(now)
    client = Client(
        client_id=f"cl_{uuid.uuid4().hex}",
        name=spec.name,
        description=spec.description,
        client_type=spec.client_type,
        organization=spec.organization,
        contact_email=spec.contact_email,
        allowed_scopes=spec.allowed_scopes,
        allowed_endpoints=spec.allowed_endpoints,
        ip_allowlist=spec.ip_allowlist,
        tier=spec.tier,
        rate_limits=spec.rate_limits,
        monthly_quota=spec.monthly_quota,
        expires_at=spec.expires_at,
        status="active",
        created_at=stamp,
        updated_at=stamp,
        version=1,
        secret_hash=hash_secret(secret),
    )
    try:
        store.create(client, actor)
    except DuplicateName as error:
        raise Conflict(f"A client named {spec.name!r} exists already.", code="duplicate_name") from error
    return client, secret


def get(store: ClientStore, client_id: str) -> Client:
    client = store.get(client_id)
    if client is None:
        raise NotFound(f"No client {client_id}.", code="client_not_found")
    return client


def _save(
    store: ClientStore, before: Client, after: Client, action: str, actor: Actor, expected_version: Expected = None
) -> Client:
    try:
        with no_lost_update(f"The client {before.client_id}", expected_version):
            store.replace(before, after, action, actor)
    except DuplicateName as error:
        raise Conflict(f"A client named {after.name!r} exists already.", code="duplicate_name") from error
    return after


def update(
    store: ClientStore,
    client_id: str,
    changes: dict[str, Any],
    actor: Actor,
    now: datetime,
    expected_version: Expected,
) -> Client:
    """Apply the given fields (absent fields keep their value; only the optional ones may be
    reset with None) to the client at `expected_version` (If-Match; None: `*`)."""
    nulls = sorted(k for k, v in changes.items() if v is None and k not in _NULLABLE)
    if nulls:
        raise ValidationFailed(f"These fields cannot be null: {', '.join(nulls)}", code="null_not_allowed")
    before = get(store, client_id)
    check(f"The client {client_id}", before.version, expected_version)
    lockout.refuse_own_client(actor, client_id, "change")
    current = ClientSpec(
        name=before.name,
        client_type=before.client_type,
        contact_email=before.contact_email,
        allowed_scopes=before.allowed_scopes,
        description=before.description,
        organization=before.organization,
        allowed_endpoints=before.allowed_endpoints,
        ip_allowlist=before.ip_allowlist,
        tier=before.tier,
        rate_limits=before.rate_limits,
        monthly_quota=before.monthly_quota,
        expires_at=before.expires_at,
    )
    spec = validate(replace(current, **changes), now, new_expiry="expires_at" in changes)
    after = replace(
        before,
        **{k: getattr(spec, k) for k in ClientSpec.__dataclass_fields__},
        updated_at=iso(now),
        version=before.version + 1,
    )
    return _save(store, before, after, "client.update", actor, expected_version)


def set_status(store: ClientStore, client_id: str, status: Status, actor: Actor, now: datetime) -> Client:
    if status == "suspended":
        lockout.refuse_own_client(actor, client_id, "suspend")
    before = get(store, client_id)
    if before.status == status:
        return before  # idempotent: suspending a suspended client changes nothing
    after = replace(before, status=status, updated_at=iso(now), version=before.version + 1)
    action = "client.suspend" if status == "suspended" else "client.reactivate"
    return _save(store, before, after, action, actor)


def rotate_secret(
    store: ClientStore,
    client_id: str,
    actor: Actor,
    now: datetime,
    environment: str,
    grace: timedelta | None = None,
) -> tuple[Client, str]:
    """A new secret; the one it replaces keeps authenticating for `grace` (default 24 h, 0 ends it
    at once). At most two secrets work: a rotation during a grace drops the older one at once."""
    grace = DEFAULT_GRACE if grace is None else grace
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise ValidationFailed(
            f"grace_seconds is between 0 and {int(MAX_GRACE.total_seconds())}.", code="invalid_grace"
        )
    before = get(store, client_id)
    secret = generate_client_secret(environment)
    kept = grace > timedelta(0)
    after = replace(
        before,
        secret_hash=hash_secret(secret),
        previous_secret_hash=before.secret_hash if kept else None,
        grace_until=iso(now + grace) if kept else None,
        updated_at=iso(now),
        version=before.version + 1,
    )
    return _save(store, before, after, "client.secret.rotate", actor), secret


def delete(store: ClientStore, client_id: str, actor: Actor, expected_version: Expected = None) -> None:
    """`expected_version`: an If-Match sent with the DELETE (optional there)."""
    lockout.refuse_own_client(actor, client_id, "delete")
    client = get(store, client_id)
    check(f"The client {client_id}", client.version, expected_version)
    with no_lost_update(f"The client {client_id}", expected_version):
        store.delete(client, actor)
