"""Upstream secrets: the credentials a gateway's routes send upstream, kept out of the routes.

An admin sets a value by name on a gateway (`PUT /api/v1/gateways/{id}/secrets/{name}`). It is
encrypted with a KMS key of its own, bound to the gateway and the name (the encryption context),
and stored in the data table; the management function may encrypt with that key, only the data
plane may decrypt. Nothing ever returns a value: reads give names, versions and times, and the
audit events hash only those. Routes refer to a secret where a request goes upstream (header and
query rules, the request body template, GraphQL variables): `{{ secrets.<name> }}`. A route that
names a secret its gateway does not have is refused when written and when its gateway is deployed;
one deleted later fails the calls that need it (502 `secret_unavailable`, logic/secret_values.py).

Secrets belong to a gateway (not the whole installation) because routes do: a route can only reach
its own gateway's secrets, and the encryption context keeps a value from being moved to another.
No HTTP, no boto3: the store and the encryption are ports (dal/secrets_store.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from functions.routes.logic.route_spec import RouteSpec
from functions.routes.logic.secret_values import referenced
from functions.routes.logic.transform import templates
from gateway_core.audit import Actor
from gateway_core.clock import iso
from gateway_core.errors import BadRequest, NotFound, PreconditionFailed, ValidationFailed
from gateway_core.preconditions import MISMATCH, Conditions, check, etag, no_lost_update, required

MAX_VALUE_LENGTH = 4096  # KMS encrypts at most 4 KB directly


class SecretValue(BaseModel):
    """The body of a PUT: the value, never returned."""

    model_config = ConfigDict(extra="forbid", strict=True)
    value: str = Field(
        min_length=1,
        max_length=MAX_VALUE_LENGTH,
        pattern=r"^[\x20-\x7e]+$",
        description="Printable ASCII (it goes into header values and query strings); write-only",
    )


class Secret(BaseModel):
    """What is known of a secret besides its value."""

    gateway_id: str
    name: str
    version: int
    created_at: str
    updated_at: str
    created_by: str
    updated_by: str

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class SecretList(BaseModel):
    items: list[Secret]


class SecretNotFound(NotFound):
    code = "secret_not_found"


class UnknownSecret(ValidationFailed):
    code = "unknown_secret"


class SecretStore(Protocol):
    def gateway_exists(self, gateway_id: str) -> bool: ...
    def secret(self, gateway_id: str, name: str) -> Secret | None: ...
    def secrets(self, gateway_id: str) -> list[Secret]: ...
    def put_secret(self, before: Secret | None, after: Secret, ciphertext: bytes, actor: Actor) -> None: ...
    def delete_secret(self, secret: Secret, actor: Actor) -> None: ...


class Sealer(Protocol):
    def seal(self, gateway_id: str, name: str, value: str) -> bytes:
        """The value encrypted for this gateway and name (only they decrypt it again)."""
        ...


def check_name(name: str) -> None:
    if not templates.SECRET_NAME.fullmatch(name):
        raise BadRequest(
            "A secret's name is 1 to 64 lower-case letters, digits, '_' and '-', starting with a letter.",
            code="invalid_secret_name",
        )


def _gateway_or_404(store: SecretStore, gateway_id: str) -> None:
    if not store.gateway_exists(gateway_id):
        raise NotFound(f"No gateway {gateway_id}.", code="gateway_not_found")


def _secret_or_404(store: SecretStore, gateway_id: str, name: str) -> Secret:
    check_name(name)
    _gateway_or_404(store, gateway_id)
    found = store.secret(gateway_id, name)
    if found is None:
        raise SecretNotFound(f"Gateway {gateway_id} has no secret named {name}.")
    return found


def set_secret(
    store: SecretStore,
    sealer: Sealer,
    gateway_id: str,
    name: str,
    value: str,
    actor: Actor,
    now: datetime,
    conditions: Conditions,
) -> tuple[Secret, bool]:
    """Create or replace a secret (True: created). Creating needs no precondition (or
    `If-None-Match: *`, only if it does not exist); replacing needs `If-Match` (428 without).
    A replaced value serves within the data plane's cache time (logic/secret_values.py)."""
    check_name(name)
    _gateway_or_404(store, gateway_id)
    before = store.secret(gateway_id, name)
    what = f"The secret {name}"
    if before is None:
        if conditions.if_match:  # RFC 9110 13.1.1: If-Match, even `*`, fails when nothing is there
            raise PreconditionFailed(f"{what} does not exist; create it without If-Match.", code=MISMATCH)
    else:
        if conditions.if_none_match_any:
            raise PreconditionFailed(
                f"{what} exists (ETag {etag(before.version)}); If-None-Match: * only creates.",
                extensions={"current_version": before.version},
            )
        if not conditions.if_match:
            raise required(what)
        check(what, before.version, conditions.version)
    expected = conditions.version if before is not None else None
    stamp = iso(now)
    after = Secret(
        gateway_id=gateway_id,
        name=name,
        version=before.version + 1 if before else 1,
        created_at=before.created_at if before else stamp,
        updated_at=stamp,
        created_by=before.created_by if before else actor.client_id,
        updated_by=actor.client_id,
    )
    ciphertext = sealer.seal(gateway_id, name, value)
    with no_lost_update(what, expected):
        store.put_secret(before, after, ciphertext, actor)
    return after, before is None


def get_secret(store: SecretStore, gateway_id: str, name: str) -> Secret:
    return _secret_or_404(store, gateway_id, name)


def list_secrets(store: SecretStore, gateway_id: str) -> list[Secret]:
    _gateway_or_404(store, gateway_id)
    return sorted(store.secrets(gateway_id), key=lambda s: s.name)


def delete_secret(store: SecretStore, gateway_id: str, name: str, actor: Actor, expected_version: int | None) -> None:
    """Routes that use it keep their reference: their calls fail (502) until it is set again."""
    found = _secret_or_404(store, gateway_id, name)
    check(f"The secret {name}", found.version, expected_version)
    with no_lost_update(f"The secret {name}", expected_version):
        store.delete_secret(found, actor)


def route_references(spec: RouteSpec) -> frozenset[str]:
    """The secrets a route sends upstream (the only places a route may name them)."""
    return referenced(spec.request_transform, spec.graphql)


def require_secrets(gateway_id: str, needed: Iterable[str], existing: set[str]) -> None:
    """UnknownSecret (422) naming the secrets that routes use and the gateway does not have."""
    missing = sorted(set(needed) - existing)
    if missing:
        raise UnknownSecret(
            f"Gateway {gateway_id} has no secret named {', '.join(missing)}; set it first with "
            f"PUT /api/v1/gateways/{gateway_id}/secrets/<name>.",
            extensions={"missing_secrets": missing},
        )
