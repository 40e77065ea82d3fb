"""API keys: create (shown once), read, list, change, revoke and rotate with a grace period.

A key is `gk_<environment>_<43 urlsafe chars>` (256 bits from `secrets`); only its SHA-256 is
stored, with the prefix and last four characters for people to recognise it. Rotation issues a
new key and keeps the old one working until `grace_until` (24 h by default).

A key's effective scopes are its own scopes within its client's allowed scopes, wherever they
are judged: the authorizer narrows them with the copy of the client's grant the key carries, and
a rotation issues the new key with only what the client may still hold. The old and new key of a
rotation share a lineage (the first key id), by which the key's own rate limits are counted, so a
rotation does not double the key's budget during the grace.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from functions.routes.logic import lockout
from functions.routes.logic.catalog import RateLimits
from functions.routes.logic.clients import DEFAULT_GRACE, MAX_GRACE, Client, ClientStore
from gateway_core.audit import Actor
from gateway_core.clock import iso, parse_iso
from gateway_core.credentials import generate_api_key, hash_api_key, key_prefix
from gateway_core.errors import Conflict, NotFound, ValidationFailed
from gateway_core.preconditions import Expected, check, no_lost_update

KeyStatus = Literal["active", "revoked"]


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    key_hash: str
    client_id: str
    name: str
    scopes: list[str]
    tier: str
    status: KeyStatus
    prefix: str
    last_four: str
    created_at: str
    updated_at: str
    expires_at: str | None
    grace_until: str | None
    rotated_to: str | None
    revoked_at: str | None
    rate_limits: RateLimits | None
    version: int
    # Copied from the client so the authorizer decides with one read; kept in step by sync_client.
    client_status: str = "active"
    client_expires_at: str | None = None
    ip_allowlist: list[str] = field(default_factory=list)
    # The client's allowed scopes, copied like the fields above. None: a key stored before keys
    # carried it (the authorizer then reads the client record; see functions/authorizer/api_key.py).
    client_allowed_scopes: list[str] | None = None
    # The first key id of this key's rotations (None on keys stored before: the key's own id).
    lineage_id: str | None = None
    # Set by the API key authorizer at most once an hour per key (README: last use of a key).
    last_used_at: str | None = None

    def state(self, now: datetime) -> str:
        """What the key is good for at `now`, as the authorizer decides it: `revoked`, `rotated`
        (its rotation grace is over), `expired`, or `active` (during a rotation grace too:
        `grace_until` says until when). The stored `status` changes only on revocation."""
        if self.status == "revoked":
            return "revoked"
        if self.grace_until and parse_iso(self.grace_until) <= now:
            return "rotated"
        if self.expires_at and parse_iso(self.expires_at) <= now:
            return "expired"
        return "active"

    def public(self) -> dict[str, Any]:
        """The stored record without its hash (what audit events keep)."""
        data = asdict(self)
        data.pop("key_hash")
        return data

    def shown_at(self, now: datetime) -> dict[str, Any]:
        """What readers see: the public record with `status` as the key is at `now`."""
        return {**self.public(), "status": self.state(now)}


class KeyStore(Protocol):
    def create(self, key: ApiKey, actor: Actor) -> None: ...
    def get(self, key_id: str) -> ApiKey | None: ...
    def list_for_client(self, client_id: str, limit: int, cursor: str | None) -> tuple[list[ApiKey], str | None]: ...
    def replace(self, before: ApiKey, after: ApiKey, action: str, actor: Actor) -> None: ...
    def rotate(self, before: ApiKey, after: ApiKey, new_key: ApiKey, actor: Actor) -> None: ...
    def sync_client(self, client: Client, status: str | None = None) -> int: ...


def _client(clients: ClientStore, client_id: str) -> Client:
    client = clients.get(client_id)
    if client is None:
        raise NotFound(f"No client {client_id}.", code="client_not_found")
    if client.status != "active":
        raise Conflict(
            f"Client {client_id} is {client.status}; keys are issued to active clients only.", code="client_not_active"
        )
    return client


def _check_scopes(client: Client, scopes: list[str]) -> list[str]:
    outside = sorted(set(scopes) - set(client.allowed_scopes))
    if outside:
        raise ValidationFailed(
            f"Scope(s) not allowed for this client: {', '.join(outside)}",
            code="scope_not_allowed",
            extensions={"not_allowed": outside, "allowed": client.allowed_scopes},
        )
    return sorted(set(scopes))


def _check_expiry(expires_at: str | None, now: datetime) -> str | None:
    if not expires_at:
        return None
    try:
        moment = parse_iso(expires_at)
    except ValueError as error:
        raise ValidationFailed("expires_at is not an ISO 8601 time.", code="invalid_expiry") from error
    if moment <= now:
        raise ValidationFailed("expires_at is in the past.", code="invalid_expiry")
    return iso(moment)


def _check_limits(limits: RateLimits | None) -> RateLimits | None:
    if limits and not (0 < limits.per_minute <= limits.per_hour <= limits.per_day):
        raise ValidationFailed(
            "Rate limits must be positive and per_minute <= per_hour <= per_day.", code="invalid_limits"
        )
    return limits


def _new_key(
    client: Client,
    name: str,
    scopes: list[str],
    expires_at: str | None,
    limits: RateLimits | None,
    now: datetime,
    environment: str,
    lineage_id: str | None = None,
) -> tuple[ApiKey, str]:
    secret = generate_api_key(environment)
    stamp = iso(now)
    key_id = f"key_{uuid.uuid4().hex}"
    key = ApiKey(
        key_id=key_id,
        key_hash=hash_api_key(secret),
        client_id=client.client_id,
        name=name,
        scopes=scopes,
        tier=client.tier,
        status="active",
        prefix=key_prefix(secret),
        last_four=secret[-4:],
        created_at=stamp,
        updated_at=stamp,
        expires_at=expires_at,
        grace_until=None,
        rotated_to=None,
        revoked_at=None,
        rate_limits=limits,
        version=1,
        client_status=client.status,
        client_expires_at=client.expires_at,
        ip_allowlist=list(client.ip_allowlist),
        client_allowed_scopes=list(client.allowed_scopes),
        lineage_id=lineage_id or key_id,
    )
    return key, secret


def create(
    keys: KeyStore,
    clients: ClientStore,
    *,
    client_id: str,
    name: str,
    scopes: list[str] | None,
    expires_at: str | None,
    rate_limits: RateLimits | None,
    actor: Actor,
    now: datetime,
    environment: str,
) -> tuple[ApiKey, str]:
    client = _client(clients, client_id)
    chosen = _check_scopes(client, scopes if scopes is not None else client.allowed_scopes)
    key, secret = _new_key(
        client, name, chosen, _check_expiry(expires_at, now), _check_limits(rate_limits), now, environment
    )
    keys.create(key, actor)
    return key, secret


def get(keys: KeyStore, key_id: str) -> ApiKey:
    key = keys.get(key_id)
    if key is None:
        raise NotFound(f"No API key {key_id}.", code="key_not_found")
    return key


def _save(
    keys: KeyStore, before: ApiKey, after: ApiKey, action: str, actor: Actor, expected_version: Expected = None
) -> ApiKey:
    with no_lost_update(f"The key {before.key_id}", expected_version):
        keys.replace(before, after, action, actor)
    return after


def update(
    keys: KeyStore,
    clients: ClientStore,
    key_id: str,
    changes: dict[str, Any],
    actor: Actor,
    now: datetime,
    expected_version: Expected,
) -> ApiKey:
    """`expected_version`: the version If-Match names (None: `*`)."""
    nulls = sorted(k for k in ("name", "scopes") if k in changes and changes[k] is None)
    if nulls:
        raise ValidationFailed(f"These fields cannot be null: {', '.join(nulls)}", code="null_not_allowed")
    before = get(keys, key_id)
    check(f"The key {key_id}", before.version, expected_version)
    lockout.refuse_own_key(actor, key_id, "change")
    if before.status != "active":
        raise Conflict("A revoked key cannot be changed.", code="key_revoked")
    fields: dict[str, Any] = {}
    if "name" in changes:
        fields["name"] = changes["name"]
    if "scopes" in changes:
        fields["scopes"] = _check_scopes(_client(clients, before.client_id), changes["scopes"])
    if "expires_at" in changes:
        fields["expires_at"] = _check_expiry(changes["expires_at"], now)
    if "rate_limits" in changes:
        fields["rate_limits"] = _check_limits(changes["rate_limits"])
    after = replace(before, **fields, updated_at=iso(now), version=before.version + 1)
    return _save(keys, before, after, "key.update", actor, expected_version)


def revoke(keys: KeyStore, key_id: str, actor: Actor, now: datetime, expected_version: Expected = None) -> ApiKey:
    """`expected_version`: an If-Match sent with the DELETE (optional there)."""
    lockout.refuse_own_key(actor, key_id, "revoke")
    before = get(keys, key_id)
    check(f"The key {key_id}", before.version, expected_version)
    if before.status == "revoked":
        return before  # idempotent
    stamp = iso(now)
    after = replace(before, status="revoked", revoked_at=stamp, updated_at=stamp, version=before.version + 1)
    return _save(keys, before, after, "key.revoke", actor, expected_version)


def rotate(
    keys: KeyStore,
    clients: ClientStore,
    key_id: str,
    grace: timedelta | None,
    actor: Actor,
    now: datetime,
    environment: str,
) -> tuple[ApiKey, str, ApiKey]:
    """The new key and its secret, and the old key as it now is (valid until its grace ends)."""
    lockout.refuse_own_key(actor, key_id, "rotate")
    before = get(keys, key_id)
    if before.status != "active":
        raise Conflict("A revoked key cannot be rotated.", code="key_revoked")
    if before.rotated_to:
        raise Conflict(f"This key was already rotated to {before.rotated_to}.", code="key_already_rotated")
    grace = DEFAULT_GRACE if grace is None else grace
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise ValidationFailed(
            f"grace_seconds is between 0 and {int(MAX_GRACE.total_seconds())}.", code="invalid_grace"
        )
    client = _client(clients, before.client_id)
    # Only what the client may still hold: a narrowed client's old grant does not pass on.
    scopes = sorted(set(before.scopes) & set(client.allowed_scopes))
    new_key, secret = _new_key(
        client,
        before.name,
        scopes,
        before.expires_at,
        before.rate_limits,
        now,
        environment,
        lineage_id=before.lineage_id or before.key_id,
    )
    old = replace(
        before, grace_until=iso(now + grace), rotated_to=new_key.key_id, updated_at=iso(now), version=before.version + 1
    )
    with no_lost_update(f"The key {key_id}", None):
        keys.rotate(before, old, new_key, actor)
    return new_key, secret, old


def sync_client(keys: KeyStore, client: Client, *, deleted: bool = False) -> int:
    """Copy the client's status, expiry, tier, IP allowlist and allowed scopes onto each of its
    keys (after a client change); returns how many keys changed. Idempotent, so a retry is
    harmless. The keys of a deleted client are marked so, and refused."""
    return keys.sync_client(client, "deleted" if deleted else None)
