"""External token issuers an admin trusts: their tokens pass the JWT authorizer with subjects
namespaced by the issuer id, scopes narrowed to `allowed_scopes` and the issuer's tier.

The id is derived from the issuer URL (`gateway_core.issuer_keys.issuer_id`), so the authorizer
finds a token's issuer with one GetItem. Only asymmetric algorithms (RFC 8725); `admin` is never
grantable to a foreign issuer; URLs are https (plain http only on loopback, for local issuers).
The JWKS URL is an address the gateway calls, so the SSRF policy that route upstreams pass
applies to it too (no private, loopback, link-local or metadata address, no odd spelling of
one, unless the operator allowlisted the range: the local runtime allowlists loopback).
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from functions.routes.logic.catalog import TIERS, unknown_scopes
from gateway_core.audit import Actor
from gateway_core.clock import iso
from gateway_core.errors import Conflict, NotFound, ValidationFailed
from gateway_core.issuer_keys import issuer_id
from gateway_core.jws_algorithms import SUPPORTED_ALGORITHMS
from gateway_core.preconditions import Expected, check, no_lost_update
from gateway_core.ssrf import SsrfPolicy, validate_upstream_url

IssuerStatus = Literal["active", "disabled"]
STATUSES: frozenset[str] = frozenset({"active", "disabled"})
NOT_GRANTABLE = frozenset({"admin"})
MAX_ISSUER_LENGTH = 512
MAX_JWKS_URL_LENGTH = 2048
MAX_AUDIENCES = 10
# Plain http only for these exact hosts (a local identity provider), not all of 127.0.0.0/8.
_LOOPBACK_ADDRESSES = frozenset({ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")})
_SPEC_FIELDS = frozenset({"jwks_url", "audiences", "algorithms", "allowed_scopes", "tier"})
_UPDATABLE = _SPEC_FIELDS | {"status"}


@dataclass(frozen=True)
class ExternalIssuer:
    issuer_id: str
    issuer: str
    jwks_url: str
    audiences: list[str]
    algorithms: list[str]
    allowed_scopes: list[str]
    tier: str
    status: IssuerStatus
    created_at: str
    updated_at: str
    version: int

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IssuerSpec:
    jwks_url: str
    audiences: list[str]
    algorithms: list[str]
    allowed_scopes: list[str]
    tier: str


class DuplicateIssuer(Exception):
    pass


class IssuerStore(Protocol):
    def create(self, issuer: ExternalIssuer, actor: Actor) -> None: ...
    def get(self, identifier: str) -> ExternalIssuer | None: ...
    def list(self, limit: int, cursor: str | None) -> tuple[list[ExternalIssuer], str | None]: ...
    def replace(self, before: ExternalIssuer, after: ExternalIssuer, actor: Actor) -> None: ...
    def delete(self, issuer: ExternalIssuer, actor: Actor) -> None: ...


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host) in _LOOPBACK_ADDRESSES
    except ValueError:
        return False


def check_url(value: str, field: str, *, max_length: int) -> str:
    """https, or http on loopback; a host; no credentials, query or fragment."""
    invalid = ValidationFailed(
        f"{field} must be an https URL (http only on 127.0.0.1, ::1 or localhost), without "
        "credentials, query or fragment.",
        code="invalid_url",
        extensions={"field": field},
    )
    # Whitespace or controls would never match a token's `iss` and may be read differently by
    # other parsers; a bare "?" or "#" is still a (empty) query or fragment.
    if not value or len(value) > max_length or any(c.isspace() or not c.isprintable() or c in "?#" for c in value):
        raise invalid
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        _ = parts.port  # a malformed port raises
    except ValueError as error:
        raise invalid from error
    if not host or parts.username is not None or parts.password is not None:
        raise invalid
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(host)):
        raise invalid
    return value


def _same_url(a: str, b: str) -> bool:
    """Equal but for the case of scheme and host, or a trailing slash."""

    def canonical(url: str) -> tuple[str, str, str]:
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/")

    return bool(a and b) and canonical(a) == canonical(b)


def check_callable(url: str, field: str) -> None:
    """An address the gateway may call, by the same SSRF policy as route upstreams."""
    try:
        validate_upstream_url(url, SsrfPolicy.from_env())
    except ValueError as error:
        raise ValidationFailed(
            f"{field} is not an address the gateway may call: {error}.",
            code="url_not_allowed",
            extensions={"field": field},
        ) from error


def validate(spec: IssuerSpec) -> IssuerSpec:
    check_url(spec.jwks_url, "jwks_url", max_length=MAX_JWKS_URL_LENGTH)
    check_callable(spec.jwks_url, "jwks_url")
    audiences = [a.strip() for a in spec.audiences]
    if not 1 <= len(audiences) <= MAX_AUDIENCES or any(not a or len(a) > 256 for a in audiences):
        raise ValidationFailed(f"Give 1 to {MAX_AUDIENCES} non-empty audiences.", code="invalid_audiences")
    algorithms = spec.algorithms or ["RS256"]
    unsupported = sorted(set(algorithms) - SUPPORTED_ALGORITHMS)
    if unsupported:
        raise ValidationFailed(
            f"Not an accepted signing algorithm: {', '.join(unsupported)} (asymmetric only).",
            code="unsupported_algorithm",
            extensions={"supported": sorted(SUPPORTED_ALGORITHMS)},
        )
    unknown = unknown_scopes(spec.allowed_scopes)
    if unknown:
        raise ValidationFailed(f"Unknown scopes: {', '.join(unknown)}", code="unknown_scope")
    reserved = sorted(set(spec.allowed_scopes) & NOT_GRANTABLE)
    if reserved:
        raise ValidationFailed(
            f"Never granted to an external issuer: {', '.join(reserved)}", code="scope_not_grantable"
        )
    if spec.tier not in TIERS:
        raise ValidationFailed(f"Unknown tier {spec.tier!r}.", code="unknown_tier")
    return IssuerSpec(
        jwks_url=spec.jwks_url,
        audiences=sorted(set(audiences)),
        algorithms=sorted(set(algorithms)),
        allowed_scopes=sorted(set(spec.allowed_scopes)),
        tier=spec.tier,
    )


def register(
    store: IssuerStore, issuer: str, spec: IssuerSpec, *, own_issuer: str, actor: Actor, now: datetime
) -> ExternalIssuer:
    """`own_issuer`: this gateway's `iss` (settings().token_issuer); its tokens are verified
    against our KMS keys only, so no external configuration may claim it."""
    check_url(issuer, "issuer", max_length=MAX_ISSUER_LENGTH)
    if _same_url(issuer, own_issuer):
        raise Conflict("That is this gateway's own issuer.", code="own_issuer")
    checked = validate(spec)
    stamp = iso(now)
    record = ExternalIssuer(
        issuer_id=issuer_id(issuer),
        issuer=issuer,
        **asdict(checked),
        status="active",
        created_at=stamp,
        updated_at=stamp,
        version=1,
    )
    try:
        store.create(record, actor)
    except DuplicateIssuer as error:
        raise Conflict(f"The issuer {issuer} is configured already.", code="duplicate_issuer") from error
    return record


def get(store: IssuerStore, identifier: str) -> ExternalIssuer:
    found = store.get(identifier)
    if found is None:
        raise NotFound(f"No issuer {identifier}.", code="issuer_not_found")
    return found


def list_issuers(store: IssuerStore, limit: int, cursor: str | None) -> tuple[list[ExternalIssuer], str | None]:
    """Newest first; `cursor` is the previous page's `next_cursor`."""
    if not 1 <= limit <= 100:
        raise ValidationFailed("limit is 1 to 100.", code="invalid_limit")
    return store.list(limit, cursor)


def update(
    store: IssuerStore,
    identifier: str,
    changes: dict[str, Any],
    actor: Actor,
    now: datetime,
    expected_version: Expected,
) -> ExternalIssuer:
    """Change the given fields (not the issuer URL: that is the identity) of the issuer at
    `expected_version` (If-Match; None: `*`)."""
    if changes.keys() & {"issuer", "issuer_id"}:
        raise ValidationFailed(
            "The issuer URL is the issuer's identity; register a new issuer instead.", code="immutable_field"
        )
    unknown = sorted(set(changes) - _UPDATABLE)
    if unknown:
        raise ValidationFailed(f"Not a changeable field: {', '.join(unknown)}", code="unknown_field")
    nulls = sorted(k for k, v in changes.items() if v is None)
    if nulls:
        raise ValidationFailed(f"These fields cannot be null: {', '.join(nulls)}", code="null_not_allowed")
    status = changes.get("status")
    if status is not None and status not in STATUSES:
        raise ValidationFailed("status is 'active' or 'disabled'.", code="invalid_status")
    before = get(store, identifier)
    check(f"The issuer {identifier}", before.version, expected_version)
    spec_changes = {k: v for k, v in changes.items() if k in _SPEC_FIELDS}
    current = IssuerSpec(
        jwks_url=before.jwks_url,
        audiences=before.audiences,
        algorithms=before.algorithms,
        allowed_scopes=before.allowed_scopes,
        tier=before.tier,
    )
    new_status = status or before.status
    # Disabling alone never re-checks the stored settings: turning an issuer off must always work,
    # even if the catalog changed since it was configured.
    checked = validate(replace(current, **spec_changes)) if spec_changes or new_status == "active" else current
    after = replace(before, **asdict(checked), status=new_status, updated_at=iso(now), version=before.version + 1)
    if after == replace(before, updated_at=after.updated_at, version=after.version):
        return before  # nothing changed: no write, no audit event
    with no_lost_update(f"The issuer {identifier}", expected_version):
        store.replace(before, after, actor)
    return after


def delete(store: IssuerStore, identifier: str, actor: Actor, expected_version: Expected = None) -> None:
    """`expected_version`: an If-Match sent with the DELETE (optional there)."""
    found = get(store, identifier)
    check(f"The issuer {identifier}", found.version, expected_version)
    with no_lost_update(f"The issuer {identifier}", expected_version):
        store.delete(found, actor)
