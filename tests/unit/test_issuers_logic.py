"""External issuer rules (functions/routes/logic/issuers.py) against an in-memory IssuerStore:
which URLs, algorithms and scopes an admin may configure, and that a refusal changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.routes.logic import issuers
from functions.routes.logic.clients import ConcurrentChange
from functions.routes.logic.issuers import DuplicateIssuer, ExternalIssuer, IssuerSpec, check_url, validate
from gateway_core.audit import Actor
from gateway_core.clock import iso
from gateway_core.errors import Conflict, GatewayError, NotFound, ValidationFailed
from gateway_core.issuer_keys import issuer_id

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
ACTOR = Actor("admin-1", "api_key", "k1", "req-1")
OWN = "https://gateway.bank.example/prod"
IDP = "https://login.partner.example/tenant-7/v2.0"


class FakeIssuerStore:
    """IssuerStore in memory, with the real store's guarantees: one item per issuer id and
    writes conditional on the version read."""

    def __init__(self) -> None:
        self.items: dict[str, ExternalIssuer] = {}
        self.events: list[tuple[str, str]] = []  # (action, issuer_id), one per successful write
        self.before_write: Callable[[], None] | None = None  # lets a test act as a concurrent admin

    def _interleave(self) -> None:
        if self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook()

    def _check_version(self, issuer: ExternalIssuer) -> None:
        current = self.items.get(issuer.issuer_id)
        if current is None or current.version != issuer.version:
            raise ConcurrentChange(issuer.issuer_id)

    def create(self, issuer: ExternalIssuer, actor: Actor) -> None:
        if issuer.issuer_id in self.items:
            raise DuplicateIssuer(issuer.issuer)
        self.items[issuer.issuer_id] = issuer
        self.events.append(("issuer.register", issuer.issuer_id))

    def get(self, identifier: str) -> ExternalIssuer | None:
        return self.items.get(identifier)

    def list(self, limit: int, cursor: str | None) -> tuple[list[ExternalIssuer], str | None]:
        newest_first = sorted(self.items.values(), key=lambda i: (i.created_at, i.issuer_id), reverse=True)
        start = int(cursor or 0)
        end = start + limit
        return newest_first[start:end], str(end) if end < len(newest_first) else None

    def replace(self, before: ExternalIssuer, after: ExternalIssuer, actor: Actor) -> None:
        self._interleave()
        self._check_version(before)
        self.items[after.issuer_id] = after
        self.events.append(("issuer.update", after.issuer_id))

    def delete(self, issuer: ExternalIssuer, actor: Actor) -> None:
        self._interleave()
        self._check_version(issuer)
        del self.items[issuer.issuer_id]
        self.events.append(("issuer.delete", issuer.issuer_id))


def _snapshot(store: FakeIssuerStore) -> tuple[dict[str, ExternalIssuer], list[tuple[str, str]]]:
    return dict(store.items), list(store.events)


def _spec(**changes: Any) -> IssuerSpec:
    values: dict[str, Any] = {
        "jwks_url": "https://login.partner.example/tenant-7/keys",
        "audiences": ["api://bank-gateway"],
        "algorithms": ["ES256"],
        "allowed_scopes": ["data:read"],
        "tier": "basic",
    }
    values.update(changes)
    return IssuerSpec(**values)


def _register(store: FakeIssuerStore, issuer: str = IDP, *, at: datetime = NOW, **changes: Any) -> ExternalIssuer:
    return issuers.register(store, issuer, _spec(**changes), own_issuer=OWN, actor=ACTOR, now=at)


@pytest.fixture
def store() -> FakeIssuerStore:
    return FakeIssuerStore()


def _refused(error: pytest.ExceptionInfo[GatewayError], status: int, code: str) -> None:
    assert (error.value.status, error.value.code) == (status, code)


# --- URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://login.partner.example/tenant/v2.0",
        "https://idp.example:8443/keys",
        "HTTPS://idp.example/keys",
        "http://127.0.0.1:9000/jwks",
        "http://[::1]:9000/jwks",
        "http://localhost/jwks",
        "http://LOCALHOST:8080/jwks",
    ],
)
def test_https_urls_and_plain_http_on_loopback_are_accepted(url: str) -> None:
    assert check_url(url, "jwks_url", max_length=2048) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "idp.example/jwks",  # no scheme
        "http://idp.example/jwks",  # plain http off loopback
        "http://10.0.0.5/jwks",
        "http://127.0.0.2/jwks",  # loopback, but not one of the three hosts allowed
        "http://[::ffff:127.0.0.1]/jwks",
        "http://localhost.idp.example/jwks",
        "ftp://idp.example/jwks",
        "https://user:secret@idp.example/jwks",
        "https://user@idp.example/jwks",
        "https://idp.example/jwks?x=1",
        "https://idp.example/jwks?",
        "https://idp.example/jwks#frag",
        "https://idp.example/jwks#",
        "https://idp.example/jw ks",
        "https://idp.example/jwks\n",
        "https:///nohost",
        "https://idp.example:99999/jwks",
        "https://[::1/jwks",
        "https://" + "a" * 3000 + ".example",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_url(url, "jwks_url", max_length=2048)
    assert refused.value.code == "invalid_url"
    assert refused.value.extensions == {"field": "jwks_url"}


def test_given_the_length_limits_when_checking_then_the_limit_itself_passes_and_one_more_is_refused() -> None:
    base = "https://idp.example/"
    assert check_url(base + "a" * (512 - len(base)), "issuer", max_length=512)
    with pytest.raises(ValidationFailed):
        check_url(base + "a" * (513 - len(base)), "issuer", max_length=512)


# --- the settings an issuer is trusted with --------------------------------------------------------


def test_a_valid_spec_is_normalised() -> None:
    checked = validate(_spec(audiences=[" b ", "a", "a"], algorithms=["RS256", "ES256"], allowed_scopes=[]))
    assert (checked.audiences, checked.algorithms, checked.allowed_scopes) == (["a", "b"], ["ES256", "RS256"], [])
    assert validate(_spec(algorithms=[])).algorithms == ["RS256"]  # the default when none is given


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"jwks_url": "http://idp.partner.example/keys"}, "invalid_url"),
        ({"jwks_url": "https://user:pw@idp.partner.example/keys"}, "invalid_url"),
        ({"jwks_url": "https://idp.example/" + "k" * 2048}, "invalid_url"),
        ({"algorithms": ["HS256"]}, "unsupported_algorithm"),
        ({"algorithms": ["none"]}, "unsupported_algorithm"),
        ({"algorithms": ["RS256", "HS512"]}, "unsupported_algorithm"),
        ({"allowed_scopes": ["admin", "data:read"]}, "scope_not_grantable"),
        ({"allowed_scopes": ["root"]}, "unknown_scope"),
        ({"audiences": []}, "invalid_audiences"),
        ({"audiences": [" "]}, "invalid_audiences"),
        ({"audiences": [f"aud-{n}" for n in range(11)]}, "invalid_audiences"),
        ({"tier": "platinum"}, "unknown_tier"),
    ],
)
def test_unsafe_or_unknown_settings_are_refused(changes: dict[str, object], code: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate(_spec(**changes))
    assert refused.value.code == code


# --- register ------------------------------------------------------------------------------------


def test_given_a_valid_issuer_when_registered_then_it_is_stored_active_under_its_derived_id(
    store: FakeIssuerStore,
) -> None:
    # When
    created = _register(store, algorithms=["RS256", "ES256", "RS256"])

    # Then
    assert created.issuer_id == issuer_id(IDP)
    assert (created.issuer, created.status, created.version) == (IDP, "active", 1)
    assert created.created_at == created.updated_at == iso(NOW)
    assert created.algorithms == ["ES256", "RS256"]
    assert store.items == {created.issuer_id: created}
    assert store.events == [("issuer.register", created.issuer_id)]
    assert created.public()["issuer_id"] == created.issuer_id


def test_given_the_same_url_when_registered_twice_then_the_id_is_the_same_and_the_second_is_409(
    store: FakeIssuerStore,
) -> None:
    # Given
    first = _register(store)
    before = _snapshot(store)

    # When
    with pytest.raises(Conflict) as refused:
        _register(store, at=LATER, tier="enterprise")

    # Then
    _refused(refused, 409, "duplicate_issuer")
    assert _snapshot(store) == before
    assert store.items[first.issuer_id].tier == "basic"


@pytest.mark.parametrize("own", [OWN, OWN + "/", "HTTPS://Gateway.Bank.Example/prod"])
def test_given_our_own_issuer_when_registered_as_external_then_409_own_issuer(store: FakeIssuerStore, own: str) -> None:
    with pytest.raises(Conflict) as refused:
        _register(store, own)

    _refused(refused, 409, "own_issuer")
    assert _snapshot(store) == ({}, [])


@pytest.mark.parametrize(
    ("issuer", "changes", "code"),
    [
        ("http://login.partner.example/v2.0", {}, "invalid_url"),
        (IDP + "?tenant=7", {}, "invalid_url"),
        (IDP + "#x", {}, "invalid_url"),
        ("https://idp.example/" + "i" * 512, {}, "invalid_url"),
        (IDP, {"jwks_url": "http://idp.partner.example/keys"}, "invalid_url"),
        (IDP, {"jwks_url": "https://u:p@idp.partner.example/keys"}, "invalid_url"),
        (IDP, {"audiences": []}, "invalid_audiences"),
        (IDP, {"algorithms": ["HS256"]}, "unsupported_algorithm"),
        (IDP, {"algorithms": ["none"]}, "unsupported_algorithm"),
        (IDP, {"allowed_scopes": ["admin"]}, "scope_not_grantable"),
        (IDP, {"allowed_scopes": ["data:everything"]}, "unknown_scope"),
        (IDP, {"tier": "platinum"}, "unknown_tier"),
    ],
)
def test_given_bad_input_when_registering_then_422_and_nothing_stored(
    store: FakeIssuerStore, issuer: str, changes: dict[str, Any], code: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _register(store, issuer, **changes)

    _refused(refused, 422, code)
    assert _snapshot(store) == ({}, [])


def test_given_no_own_issuer_configured_when_registering_then_any_valid_issuer_is_accepted(
    store: FakeIssuerStore,
) -> None:
    created = issuers.register(store, IDP, _spec(), own_issuer="", actor=ACTOR, now=NOW)

    assert store.items == {created.issuer_id: created}


# --- get and list --------------------------------------------------------------------------------


def test_given_an_unknown_id_when_read_then_404_issuer_not_found(store: FakeIssuerStore) -> None:
    with pytest.raises(NotFound) as refused:
        issuers.get(store, "iss_nope")

    _refused(refused, 404, "issuer_not_found")


def test_given_three_issuers_when_listed_by_two_then_newest_first_over_two_pages(store: FakeIssuerStore) -> None:
    # Given
    ids = [_register(store, f"https://idp-{n}.example/", at=NOW + timedelta(minutes=n)).issuer_id for n in range(3)]

    # When
    first, cursor = issuers.list_issuers(store, 2, None)
    second, end = issuers.list_issuers(store, 2, cursor)

    # Then
    assert [i.issuer_id for i in first + second] == ids[::-1]
    assert cursor is not None
    assert end is None


@pytest.mark.parametrize("limit", [0, 101])
def test_given_a_limit_out_of_range_when_listing_then_422(store: FakeIssuerStore, limit: int) -> None:
    with pytest.raises(ValidationFailed) as refused:
        issuers.list_issuers(store, limit, None)

    _refused(refused, 422, "invalid_limit")


# --- update --------------------------------------------------------------------------------------


def test_given_an_issuer_when_changed_then_the_fields_version_and_time_move(store: FakeIssuerStore) -> None:
    # Given
    created = _register(store)

    # When
    changed = issuers.update(
        store,
        created.issuer_id,
        {
            "jwks_url": "https://keys.partner.example/v2",
            "audiences": ["b", "a"],
            "algorithms": ["PS256"],
            "allowed_scopes": ["banking:read", "data:read"],
            "tier": "enterprise",
        },
        ACTOR,
        LATER,
        None,
    )

    # Then
    assert changed == replace(
        created,
        jwks_url="https://keys.partner.example/v2",
        audiences=["a", "b"],
        algorithms=["PS256"],
        allowed_scopes=["banking:read", "data:read"],
        tier="enterprise",
        updated_at=iso(LATER),
        version=2,
    )
    assert store.items[created.issuer_id] == changed
    assert store.events[-1] == ("issuer.update", created.issuer_id)


def test_given_an_active_issuer_when_disabled_and_enabled_then_the_status_follows(store: FakeIssuerStore) -> None:
    created = _register(store)

    disabled = issuers.update(store, created.issuer_id, {"status": "disabled"}, ACTOR, LATER, None)
    enabled = issuers.update(store, created.issuer_id, {"status": "active"}, ACTOR, LATER, None)

    assert (disabled.status, disabled.version) == ("disabled", 2)
    assert (enabled.status, enabled.version) == ("active", 3)
    assert [e[0] for e in store.events] == ["issuer.register", "issuer.update", "issuer.update"]


def test_given_a_stored_config_the_catalog_no_longer_accepts_when_disabled_then_it_still_is(
    store: FakeIssuerStore,
) -> None:
    # Given: an issuer configured with a scope since removed from the catalog
    created = _register(store)
    store.items[created.issuer_id] = replace(created, allowed_scopes=["retired:scope"])

    # When
    disabled = issuers.update(store, created.issuer_id, {"status": "disabled"}, ACTOR, LATER, None)

    # Then: switching it off is never blocked
    assert disabled.status == "disabled"
    with pytest.raises(ValidationFailed) as refused:
        issuers.update(store, created.issuer_id, {"status": "active"}, ACTOR, LATER, None)
    _refused(refused, 422, "unknown_scope")


def test_given_no_actual_change_when_updating_then_no_write_and_no_event(store: FakeIssuerStore) -> None:
    created = _register(store)
    before = _snapshot(store)

    same = issuers.update(store, created.issuer_id, {"tier": "basic", "status": "active"}, ACTOR, LATER, None)

    assert same == created
    assert _snapshot(store) == before


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"issuer": "https://other.example/"}, "immutable_field"),
        ({"issuer_id": "iss_other"}, "immutable_field"),
        ({"version": 7}, "unknown_field"),
        ({"jwks_url": None}, "null_not_allowed"),
        ({"status": "suspended"}, "invalid_status"),
        ({"jwks_url": "http://keys.partner.example/"}, "invalid_url"),
        ({"audiences": []}, "invalid_audiences"),
        ({"algorithms": ["HS256"]}, "unsupported_algorithm"),
        ({"algorithms": ["none"]}, "unsupported_algorithm"),
        ({"allowed_scopes": ["admin"]}, "scope_not_grantable"),
        ({"allowed_scopes": ["root"]}, "unknown_scope"),
        ({"tier": "platinum"}, "unknown_tier"),
        ({"status": "disabled", "algorithms": ["HS256"]}, "unsupported_algorithm"),
    ],
)
def test_given_bad_changes_when_updating_then_422_and_nothing_changes(
    store: FakeIssuerStore, changes: dict[str, Any], code: str
) -> None:
    # Given
    created = _register(store)
    before = _snapshot(store)

    # When
    with pytest.raises(ValidationFailed) as refused:
        issuers.update(store, created.issuer_id, dict(changes), ACTOR, LATER, None)

    # Then
    _refused(refused, 422, code)
    assert _snapshot(store) == before


def test_given_an_unknown_id_when_updating_or_deleting_then_404(store: FakeIssuerStore) -> None:
    with pytest.raises(NotFound) as on_update:
        issuers.update(store, "iss_nope", {"tier": "basic"}, ACTOR, LATER, None)
    with pytest.raises(NotFound) as on_delete:
        issuers.delete(store, "iss_nope", ACTOR)

    _refused(on_update, 404, "issuer_not_found")
    _refused(on_delete, 404, "issuer_not_found")
    assert _snapshot(store) == ({}, [])


def test_given_another_admin_changed_it_meanwhile_when_updating_then_409_and_their_change_stays(
    store: FakeIssuerStore,
) -> None:
    # Given
    created = _register(store)

    def other_admin() -> None:
        issuers.update(store, created.issuer_id, {"tier": "enterprise"}, ACTOR, NOW, None)

    store.before_write = other_admin

    # When
    with pytest.raises(Conflict) as refused:
        issuers.update(store, created.issuer_id, {"status": "disabled"}, ACTOR, LATER, None)

    # Then
    _refused(refused, 409, "concurrent_change")
    current = store.items[created.issuer_id]
    assert (current.tier, current.status, current.version) == ("enterprise", "active", 2)


# --- delete --------------------------------------------------------------------------------------


def test_given_an_issuer_when_deleted_then_it_is_gone_and_the_deletion_recorded(store: FakeIssuerStore) -> None:
    created = _register(store)

    issuers.delete(store, created.issuer_id, ACTOR)

    assert store.items == {}
    assert store.events == [("issuer.register", created.issuer_id), ("issuer.delete", created.issuer_id)]


def test_given_another_admin_changed_it_meanwhile_when_deleting_then_409_and_it_stays(
    store: FakeIssuerStore,
) -> None:
    created = _register(store)

    def other_admin() -> None:
        issuers.update(store, created.issuer_id, {"tier": "free"}, ACTOR, NOW, None)

    store.before_write = other_admin

    with pytest.raises(Conflict) as refused:
        issuers.delete(store, created.issuer_id, ACTOR)

    _refused(refused, 409, "concurrent_change")
    assert store.items[created.issuer_id].tier == "free"


# --- the JWKS URL is an address the gateway will call: the SSRF policy applies --------------------

REFUSED_JWKS_URLS = [
    "https://169.254.169.254/latest/meta-data/jwks",  # the cloud metadata endpoint
    "https://10.0.0.8/jwks",
    "https://172.16.5.5/jwks",
    "https://100.64.0.1/jwks",  # shared address space, used inside clouds
    "https://[fec0::1]/jwks",  # site-local IPv6
    "https://[fd00:ec2::254]/jwks",  # the metadata endpoint over IPv6
    "https://[::ffff:169.254.169.254]/jwks",  # IPv4-mapped
    "https://2852039166/jwks",  # 169.254.169.254 as one decimal number
    "https://0251.0376.0251.0376/jwks",  # ... in octal
    "https://0xa9.0xfe.0xa9.0xfe/jwks",  # ... in hex
    "https://metadata.google.internal/jwks",
    "http://localhost:9000/jwks",  # a name that always means this host, allowlist or not
    "http://127.0.0.1:9000/jwks",  # loopback without the operator's allowlist
]


@pytest.mark.parametrize("url", REFUSED_JWKS_URLS)
def test_given_a_jwks_url_the_ssrf_policy_refuses_when_registering_or_changing_then_422_and_nothing_changes(
    store: FakeIssuerStore, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    # Given a deployment without an allowlist (the AWS default)
    monkeypatch.delenv("UPSTREAM_ALLOW_CIDRS", raising=False)
    with pytest.raises(ValidationFailed) as refused:
        _register(store, jwks_url=url)
    _refused(refused, 422, "url_not_allowed")
    assert refused.value.extensions["field"] == "jwks_url"
    assert _snapshot(store) == ({}, [])

    created = _register(store)
    before = _snapshot(store)
    with pytest.raises(ValidationFailed) as refused:
        issuers.update(store, created.issuer_id, {"jwks_url": url}, ACTOR, LATER, None)
    _refused(refused, 422, "url_not_allowed")
    assert _snapshot(store) == before


def test_given_loopback_allowlisted_when_registering_a_loopback_jwks_url_then_it_is_accepted(
    store: FakeIssuerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The local runtime allowlists loopback for local identity providers; metadata stays refused
    monkeypatch.setenv("UPSTREAM_ALLOW_CIDRS", "127.0.0.0/8,::1/128")
    assert _register(store, jwks_url="http://127.0.0.1:9000/jwks").jwks_url == "http://127.0.0.1:9000/jwks"
    with pytest.raises(ValidationFailed):
        _register(store, "https://other.partner.example", jwks_url="https://169.254.169.254/jwks")
