"""No request locks out the credential it is made with (functions/routes/logic/lockout.py)."""

from __future__ import annotations

import pytest

from functions.routes.logic import clients, keys
from gateway_core.audit import Actor
from gateway_core.errors import Conflict
from tests.unit.test_keys_logic import NOW, Clients, Keys, _client, _create


def _as_key(key_id: str, client_id: str = "cl_admin") -> Actor:
    return Actor(client_id, "api_key", key_id, "req-1")


def test_the_key_a_request_presents_cannot_be_revoked_changed_or_rotated_by_it() -> None:
    store, owners = Keys(), Clients(_client())
    key, _ = _create(store, owners)
    me = _as_key(key.key_id)
    attempts = [
        lambda: keys.revoke(store, key.key_id, me, NOW),
        lambda: keys.update(store, owners, key.key_id, {"name": "gone"}, me, NOW, None),
        lambda: keys.rotate(store, owners, key.key_id, None, me, NOW, "test"),
    ]
    for attempt in attempts:
        with pytest.raises(Conflict) as refused:
            attempt()
        assert refused.value.code == "own_credential"
    assert store.items[key.key_id] == key  # nothing changed
    # Another admin credential may.
    assert keys.revoke(store, key.key_id, _as_key("key_other"), NOW).status == "revoked"


def test_a_token_is_not_mistaken_for_the_key_of_the_same_id() -> None:
    store, owners = Keys(), Clients(_client())
    key, _ = _create(store, owners)
    assert keys.revoke(store, key.key_id, Actor("cl_admin", "jwt", key.key_id, "r"), NOW).status == "revoked"


def test_the_client_a_request_is_made_as_cannot_be_changed_suspended_or_deleted_by_it() -> None:
    target = _client()
    store = Clients(target)
    me = Actor(target.client_id, "jwt", "jti-1", "req-1")
    attempts = [
        lambda: clients.update(store, target.client_id, {"allowed_scopes": ["gateway:read"]}, me, NOW, None),
        lambda: clients.set_status(store, target.client_id, "suspended", me, NOW),
        lambda: clients.delete(store, target.client_id, me),
    ]
    for attempt in attempts:
        with pytest.raises(Conflict) as refused:
            attempt()
        assert refused.value.code == "own_credential"
    assert store.items[target.client_id] == target
    assert (
        clients.set_status(store, target.client_id, "suspended", _as_key("k9", "cl_other"), NOW).status == "suspended"
    )


def test_a_denylist_holding_the_requests_own_address_is_refused() -> None:
    from functions.routes.logic import lockout

    for cidrs in (["203.0.113.0/24"], ["10.0.0.0/8", "203.0.113.7/32"], ["2001:db8::/32", "0.0.0.0/0"]):
        with pytest.raises(Conflict) as refused:
            lockout.refuse_own_address("203.0.113.7", cidrs)
        assert refused.value.code == "own_credential"
    lockout.refuse_own_address("203.0.113.7", ["198.51.100.0/24", "not a network", "2001:db8::/32"])
    lockout.refuse_own_address(None, ["0.0.0.0/0"])  # a direct invocation has no address


def test_a_certificate_bound_request_cannot_revoke_its_own_clients_certificates() -> None:
    from functions.routes.logic import lockout

    me = Actor("cl_admin", "jwt", "jti-1", "req-1")
    with pytest.raises(Conflict) as refused:
        lockout.refuse_own_certificate(me, "cl_admin", certificate_bound=True)
    assert refused.value.code == "own_credential"
    lockout.refuse_own_certificate(me, "cl_admin", certificate_bound=False)  # its token outlives the certificate
    lockout.refuse_own_certificate(me, "cl_other", certificate_bound=True)
