"""Admin keys managed beside the API: the first admin key of a deployment, listing, rotation and
revocation. The admin CLI (`python -m infra.admin`) and the local runtime's bootstrap both store
keys through `AdminKeys.create`, so a bootstrap key is like every other key: only its SHA-256 is
stored, with a random key id, by conditional writes that never overwrite an item, and with an
audit event (`key.bootstrap_create`) in the same DynamoDB transaction.

Rotation and revocation are the keys API's own rules and store (`functions/routes/logic/keys.py`,
`functions/routes/dal/keys_store.py`). A key created here for a client id that is no registered
client (`bootstrap-admin` by default) is an *operator key*: it has no client record, so where the
rules read the key's client, the key's own copy of the client fields stands in for it.
"""

from __future__ import annotations

import getpass
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.routes.dal.clients_store import DynamoClientStore
from functions.routes.dal.keys_store import DynamoKeyStore
from functions.routes.logic import keys as key_rules
from functions.routes.logic.clients import Client, ConcurrentChange
from functions.routes.logic.keys import ApiKey
from gateway_core.audit import Actor
from gateway_core.clock import iso, parse_iso
from gateway_core.credentials import (
    KEY_PREFIX,
    MIN_KEY_LENGTH,
    generate_api_key,
    hash_api_key,
    key_prefix,
    new_key_record,
)
from gateway_core.errors import Conflict, ValidationFailed

ADMIN_SCOPE = "admin"
BOOTSTRAP_CLIENT_ID = "bootstrap-admin"
BOOTSTRAP_ACTION = "key.bootstrap_create"
DEFAULT_NAME = "bootstrap admin key"
OPERATOR_TIER = "enterprise"


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once, never stored


def operator_actor(kind: str, credential: str | None = None) -> Actor:
    """Who acts from a terminal: `<kind>:<local user>` (e.g. `cli:alice`), with the credential
    behind it (the AWS identity when known, else user@host) and a request id of its own."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER/LOGNAME (some containers)
        user = "unknown"
    return Actor(
        client_id=f"{kind}:{user}",
        credential_kind=kind,
        credential_id=credential or f"{user}@{socket.gethostname()}",
        request_id=f"{kind}-{uuid.uuid4().hex}",
    )


def environment_of(key: ApiKey) -> str | None:
    """`live` of a `gk_live_` key: a rotated key keeps its predecessor's environment."""
    prefix = key.prefix
    if prefix.startswith(f"{KEY_PREFIX}_") and prefix.endswith("_") and len(prefix) > len(KEY_PREFIX) + 2:
        return prefix[len(KEY_PREFIX) + 1 : -1]
    return None


def check_secret(secret: str) -> None:
    """A given key (GATEWAY_ADMIN_KEY) must be as hard to guess as a generated one, and fit a header."""
    if len(secret) < MIN_KEY_LENGTH:
        raise ValidationFailed(f"An API key has at least {MIN_KEY_LENGTH} characters.", code="invalid_key")
    if not all(33 <= ord(ch) <= 126 for ch in secret):
        raise ValidationFailed("An API key is printable ASCII without spaces.", code="invalid_key")


def usable(key: ApiKey, now: datetime) -> bool:
    """Still an admin key the authorizer accepts, and not one on its way out (rotated)."""
    return (
        key.status == "active"
        and key.client_status == "active"
        and key.rotated_to is None
        and ADMIN_SCOPE in key.scopes
        and (key.expires_at is None or parse_iso(key.expires_at) > now)
        and (key.client_expires_at is None or parse_iso(key.client_expires_at) > now)
    )


def operator_client(key: ApiKey) -> Client:
    """What stands in for the missing client record of an operator key: the key's own copy of the
    client fields (status, tier, expiry, IP allowlist), so a rotation keeps them."""
    return Client(
        client_id=key.client_id,
        name=key.client_id,
        description="operator key without a client record",
        client_type="operator",
        organization="",
        contact_email="",
        allowed_scopes=list(key.scopes),
        allowed_endpoints=[],
        ip_allowlist=list(key.ip_allowlist),
        tier=key.tier,
        rate_limits=None,
        monthly_quota=None,
        expires_at=key.client_expires_at,
        status="active",
        created_at=key.created_at,
        updated_at=key.updated_at,
        version=1,
        secret_hash="",
    )


class _ClientsOf(DynamoClientStore):
    """The client store the keys rules read a key's client from: a registered client as stored; for
    an operator key whose client id is no registered client, the stand-in above. A key of a
    deleted client is marked `client_status=deleted` (sync_client), so it never gets a stand-in."""

    def __init__(self, dynamodb: Any, table_name: str, key: ApiKey) -> None:
        super().__init__(dynamodb, table_name)
        self.key = key

    def get(self, client_id: str) -> Client | None:
        registered = super().get(client_id)
        if registered is not None or client_id != self.key.client_id:
            return registered
        if self.key.client_status == "active" and ADMIN_SCOPE in self.key.scopes:
            return operator_client(self.key)
        return None


class AdminKeys:
    """Admin keys of one deployment's table."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name
        self.store = DynamoKeyStore(dynamodb, table_name)

    def create(
        self,
        *,
        actor: Actor,
        now: datetime,
        environment: str,
        client_id: str = BOOTSTRAP_CLIENT_ID,
        name: str = DEFAULT_NAME,
        secret: str | None = None,
    ) -> IssuedKey:
        """A new admin key, generated (or the given `secret`, stored hashed like any key). For a
        registered client the key follows the client as the keys API's keys do (it must be active
        and allowed `admin`); any other client id makes an operator key. Refuses to overwrite."""
        if not name.strip() or len(name) > 100:
            raise ValidationFailed("A key name has 1 to 100 characters.", code="invalid_name")
        secret = generate_api_key(environment) if secret is None else secret
        check_secret(secret)
        client = DynamoClientStore(self.dynamodb, self.table).get(client_id)
        if client is not None and client.status != "active":
            raise Conflict(f"Client {client_id} is {client.status}.", code="client_not_active")
        if client is not None and ADMIN_SCOPE not in client.allowed_scopes:
            raise ValidationFailed(f"Client {client_id} may not hold the admin scope.", code="scope_not_allowed")
        record = new_key_record(
            key_hash=hash_api_key(secret),
            key_id=f"key_{uuid.uuid4().hex}",
            client_id=client_id,
            name=name,
            scopes=[ADMIN_SCOPE],
            tier=client.tier if client is not None else OPERATOR_TIER,
            created_at=iso(now),
            prefix=key_prefix(secret),
            last_four=secret[-4:],
        )
        key = ApiKey(
            **record,
            client_status="active",
            client_expires_at=client.expires_at if client is not None else None,
            ip_allowlist=list(client.ip_allowlist) if client is not None else [],
            # An operator key's grant is its own scope (no client record narrows it).
            client_allowed_scopes=list(client.allowed_scopes) if client is not None else [ADMIN_SCOPE],
            lineage_id=record["key_id"],
        )
        try:
            self.store.create(key, actor, action=BOOTSTRAP_ACTION)
        except ConcurrentChange as error:
            raise Conflict(
                "A key with this id or this secret is already stored; nothing was written.", code="key_exists"
            ) from error
        return IssuedKey(key, secret)

    def lookup(self, secret: str) -> ApiKey | None:
        return self.store.get_by_hash(hash_api_key(secret))

    def admin_keys(self) -> list[ApiKey]:
        """Every key holding `admin`, oldest first. A filtered Scan of the key lookup items: fine
        for an operator tool, never on a request path (product code does not scan)."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "ConsistentRead": True,
            "FilterExpression": "SK = :sk AND begins_with(PK, :pk) AND contains(scopes, :scope)",
            "ExpressionAttributeValues": {
                ":sk": {"S": "APIKEY"},
                ":pk": {"S": "APIKEY#"},
                ":scope": {"S": ADMIN_SCOPE},
            },
            "ProjectionExpression": "key_hash",
        }
        found: list[ApiKey] = []
        while True:
            page = self.dynamodb.scan(**request)
            for item in page.get("Items", []):
                key = self.store.get_by_hash(item["key_hash"]["S"])  # read as the keys store reads it
                if key is not None:
                    found.append(key)
            if "LastEvaluatedKey" not in page:
                return sorted(found, key=lambda k: (k.created_at, k.key_id))
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _admin_key(self, key_id: str) -> ApiKey:
        key = key_rules.get(self.store, key_id)
        if ADMIN_SCOPE not in key.scopes:
            raise Conflict(
                f"{key_id} is not an admin key; manage it with the keys API (/api/v1/gateway/keys).",
                code="not_an_admin_key",
            )
        return key

    def rotate(
        self, key_id: str, grace: timedelta | None, *, actor: Actor, now: datetime, environment: str
    ) -> tuple[IssuedKey, ApiKey]:
        """The keys API's rotation: a new key now, the old one working until its grace ends."""
        before = self._admin_key(key_id)
        clients = _ClientsOf(self.dynamodb, self.table, before)
        new_key, secret, old = key_rules.rotate(
            self.store, clients, key_id, grace, actor, now, environment_of(before) or environment
        )
        return IssuedKey(new_key, secret), old

    def revoke(self, key_id: str, *, actor: Actor, now: datetime) -> ApiKey:
        """The keys API's revocation (idempotent)."""
        self._admin_key(key_id)
        return key_rules.revoke(self.store, key_id, actor, now)


def shown(key: ApiKey, now: datetime | None = None) -> dict[str, Any]:
    """What may be shown of a stored key: never its hash (nor, after creation, its secret); its
    status as it is at `now` (expired, rotated past its grace), like the keys API's."""
    public = key.shown_at(now or datetime.now(UTC))
    public.pop("key_hash", None)
    return public


class BootstrapRefused(ValueError):
    """The given admin key cannot be served; the message says why and what to do."""


@dataclass(frozen=True)
class BootstrapKey:
    secret: str
    key: ApiKey
    source: str  # how the banner describes it
    new: bool  # stored by this run: the one time its secret may be shown in full


def bootstrap_key(
    admin: AdminKeys, *, given: str | None, saved: str | None, actor: Actor, now: datetime, environment: str
) -> BootstrapKey:
    """The admin key a local runtime serves: `given` (GATEWAY_ADMIN_KEY), else the last run's key
    (`saved`, from admin.json) while the restored state still has it working, else a new one.
    A key not yet in the table is stored with `create`, as `create-key` does."""
    if given is not None:
        existing = admin.lookup(given)
        if existing is not None and usable(existing, now):
            return BootstrapKey(given, existing, "from GATEWAY_ADMIN_KEY, kept from the last run", new=False)
        if existing is not None:
            raise BootstrapRefused(
                f"GATEWAY_ADMIN_KEY is key {existing.key_id}, which the saved local state has revoked, rotated "
                "or expired; use another key, or start clean (--fresh)"
            )
        try:
            issued = admin.create(actor=actor, now=now, environment=environment, secret=given)
        except (ValidationFailed, Conflict) as error:
            raise BootstrapRefused(f"GATEWAY_ADMIN_KEY: {error.detail}") from None
        return BootstrapKey(given, issued.key, "from GATEWAY_ADMIN_KEY", new=True)
    if saved is not None:
        existing = admin.lookup(saved)
        if existing is not None and usable(existing, now):
            return BootstrapKey(saved, existing, "kept from the last run", new=False)
    issued = admin.create(actor=actor, now=now, environment=environment)
    return BootstrapKey(issued.secret, issued.key, "generated", new=True)
