"""Issue 11, grants and time, as the functions see the caller: scopes never wider than the client's
grant, time-based refusals that hold whatever API Gateway cached, and one rate budget per key
lineage (gateway_core.caller, the authorizers' context, the proxy's caller)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.authorizer.core import Principal, allow, earliest
from functions.routes.api.proxy import proxy_caller
from gateway_core.caller import optional_caller, required_caller
from gateway_core.endpoints import Request
from gateway_core.errors import Unauthorized
from tests.unit.proxy_fakes import harness

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/api/v1/clients"
NOT_AFTER = 1_900_000_000.25


def context(**overrides: Any) -> dict[str, Any]:
    principal = Principal(
        client_id="cl_1",
        credential_kind="api_key",
        scopes=("admin", "data:read"),
        tier="basic",
        credential_id="key_2",
        client_scopes=("admin", "data:read"),
        not_after=NOT_AFTER,
        key_lineage="key_1",
    )
    return {**allow(principal, METHOD_ARN)["context"], **overrides}


def proxy_request(authorizer: dict[str, Any]) -> Request:
    return Request(
        method="GET",
        path="/gw/orders/1",
        headers={},
        query={},
        body=b"",
        request_id="req-1",
        source_ip="203.0.113.9",
        authorizer=authorizer,
        client_cert_pem="",
    )


# --- scopes: the credential's own, narrowed to its client's grant -----------------------------


@pytest.mark.parametrize(
    ("scopes", "client_scopes", "expected"),
    [
        ("admin data:read", "data:read", ("data:read",)),  # the client lost admin
        ("admin data:read", "", ()),  # the client may hold nothing any more
        ("admin", "banking:read data:read", ()),
        ("data:read banking:read", "admin banking:read data:read", ("data:read", "banking:read")),
    ],
    ids=["lost-admin", "lost-all", "disjoint", "within"],
)
def test_given_a_context_when_read_then_its_scopes_never_exceed_the_clients(
    scopes: str, client_scopes: str, expected: tuple[str, ...]
) -> None:
    authorizer = context(scopes=scopes, client_scopes=client_scopes)

    assert required_caller(authorizer, "", now=NOT_AFTER - 60).scopes == expected
    # The data plane and batches read the caller through the same function.
    assert proxy_caller(proxy_request(authorizer)).scopes == expected


def test_given_a_context_without_the_clients_grant_when_read_then_its_scopes_are_used_as_given() -> None:
    # A context cached before authorizers carried the grant (they narrowed JWT and certificate
    # scopes already); it is gone within the cache's TTL.
    authorizer = context()
    del authorizer["client_scopes"]

    assert required_caller(authorizer, "", now=NOT_AFTER - 60).scopes == ("admin", "data:read")


# --- time: refused from its second, whatever was cached ---------------------------------------


@pytest.mark.parametrize("late_by", [0.0, 0.001, 1.0, 300.0, 86_400.0 * 365])
def test_given_a_decision_past_its_not_after_when_read_then_401_credential_expired(late_by: float) -> None:
    with pytest.raises(Unauthorized) as refused:
        optional_caller(context(), "", now=NOT_AFTER + late_by)

    assert refused.value.status == 401
    assert refused.value.code == "credential_expired"


@pytest.mark.parametrize("early_by", [0.001, 1.0, 299.0])
def test_given_a_decision_before_its_not_after_when_read_then_the_caller_is_known(early_by: float) -> None:
    caller = required_caller(context(), "", now=NOT_AFTER - early_by)

    assert (caller.client_id, caller.credential_id) == ("cl_1", "key_2")


@pytest.mark.parametrize("not_after", ["soon", "nan", "inf", "-inf", "1e999", "0x10"])
def test_given_an_unreadable_not_after_when_read_then_refused_not_trusted(not_after: str) -> None:
    with pytest.raises(Unauthorized) as refused:
        required_caller(context(not_after=not_after), "", now=1.0)
    assert refused.value.code == "credential_expired"


@pytest.mark.parametrize("not_after", ["", None], ids=["empty", "absent"])
def test_given_a_decision_without_a_time_bound_when_read_then_it_holds(not_after: str | None) -> None:
    authorizer = context(not_after=not_after)
    if not_after is None:
        del authorizer["not_after"]

    assert required_caller(authorizer, "", now=4_000_000_000.0).client_id == "cl_1"


def test_given_the_real_clock_when_a_past_not_after_is_read_then_refused() -> None:
    # The default clock is the wall clock: a decision that ended in 2001 is refused.
    with pytest.raises(Unauthorized):
        required_caller(context(not_after="1000000000.000"), "")
    with pytest.raises(Unauthorized):
        proxy_caller(proxy_request(context(not_after="1000000000.000")))


def test_given_numbers_in_the_context_when_read_then_they_count_like_strings() -> None:
    # API Gateway turns context numbers into strings; the local runtime may pass them through.
    with pytest.raises(Unauthorized):
        required_caller(context(not_after=1_000_000_000), "", now=1_000_000_000.0)
    assert required_caller(context(not_after=1_000_000_001), "", now=1_000_000_000.0).client_id == "cl_1"


@pytest.mark.parametrize(
    ("moments", "expected"),
    [
        ((None, None), None),
        ((5.0, None, 3.0), 3.0),
        ((None, 7.5), 7.5),
        ((2.0, 2.0, 9.0), 2.0),
        ((), None),
    ],
)
def test_given_several_bounds_when_combined_then_the_earliest_wins(
    moments: tuple[float | None, ...], expected: float | None
) -> None:
    assert earliest(*moments) == expected


def test_given_a_principal_when_allowed_then_the_context_carries_grant_bound_and_lineage_as_strings() -> None:
    built = context()

    assert built["client_scopes"] == "admin data:read"
    assert built["not_after"] == "1900000000.250"
    assert built["key_lineage"] == "key_1"
    assert all(isinstance(v, str) for v in built.values())
    unbounded = allow(Principal("cl_1", "jwt", ("data:read",), "free", "jti-1"), METHOD_ARN)["context"]
    assert (unbounded["not_after"], unbounded["key_lineage"]) == ("", "")
    assert "client_scopes" not in unbounded  # nothing to narrow by: the functions use the scopes as given


# --- rate limits: one budget per key lineage ---------------------------------------------------


def test_given_the_old_and_the_new_key_of_a_rotation_when_limited_then_they_spend_one_bucket() -> None:
    # Given the proxy, and the callers the old key, its successor and an unrelated key become
    old = proxy_caller(proxy_request(context(credential_id="key_1", key_lineage="key_1", rate_limits="3/50/500")))
    new = proxy_caller(proxy_request(context(credential_id="key_2", key_lineage="key_1", rate_limits="3/50/500")))
    other = proxy_caller(proxy_request(context(credential_id="key_9", key_lineage="key_9", rate_limits="3/50/500")))
    h = harness()

    # When each calls
    for caller in (old, new, other):
        assert h.call(caller=caller).status == 200

    # Then the key's own limits count on the lineage's item, not on each key's
    key_buckets = [[p.plan.key for p in plans if p.plan.key.startswith("KEY#")] for plans in h.limiter.checked]
    assert key_buckets == [["KEY#key_1"], ["KEY#key_1"], ["KEY#key_9"]]


def test_given_a_context_without_a_lineage_when_read_then_the_key_is_its_own_lineage() -> None:
    authorizer = context(credential_id="key_7")
    del authorizer["key_lineage"]

    assert proxy_caller(proxy_request(authorizer)).key_lineage == "key_7"
    assert required_caller(authorizer, "", now=1.0).key_lineage == "key_7"
