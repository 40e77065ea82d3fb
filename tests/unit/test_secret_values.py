"""Upstream secrets in the data plane: the per-container cache (functions.routes.logic.secret_values)
and the proxy that puts them into what goes upstream, and nowhere else
(functions.routes.logic.proxy)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from functions.routes.logic.route_spec import ResponseTransformSpec
from functions.routes.logic.secret_values import Sealed, SecretUnavailable, SecretValues, referenced
from gateway_core.deployed import GraphqlSettings, RequestTransform
from gateway_core.errors import DependencyUnavailable
from tests.unit.proxy_fakes import Harness, answer, harness, make_route

TOKEN = "tok-0123456789abcdef"
API_KEY = "key-fedcba9876543210"


@dataclass
class FakeSource:
    """Stored secrets: gateway and name -> (version, value); counts reads and decryptions."""

    stored: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    reads: int = 0
    decryptions: list[tuple[str, str, int]] = field(default_factory=list)
    fail_decrypt: bool = False

    def sealed(self, gateway_id: str, name: str) -> Sealed | None:
        self.reads += 1
        found = self.stored.get((gateway_id, name))
        return Sealed(self.ciphertext(*found)) if found else None

    @staticmethod
    def ciphertext(version: int, value: str) -> bytes:
        # As KMS's: another value (at any version) never gives the same ciphertext.
        return f"v{version}:{value}".encode()

    def unseal(self, gateway_id: str, name: str, ciphertext: bytes) -> str:
        if self.fail_decrypt:
            raise SecretUnavailable(f"The upstream credential '{name}' this route uses cannot be decrypted.")
        version, value = self.stored[(gateway_id, name)]
        assert ciphertext == self.ciphertext(version, value)
        self.decryptions.append((gateway_id, name, version))
        return value


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def source() -> FakeSource:
    return FakeSource({("gw_1", "token"): (1, TOKEN), ("gw_1", "key"): (1, API_KEY)})


# -- the cache ---------------------------------------------------------------------------------------


def test_given_a_secret_when_used_again_within_the_check_time_then_it_is_neither_read_nor_decrypted_again(
    source: FakeSource,
) -> None:
    clock = Clock()
    values = SecretValues(source, check_seconds=30, clock=clock)

    assert values.values("gw_1", ["token", "key"]) == {"token": TOKEN, "key": API_KEY}
    clock.now += 29
    assert values.value("gw_1", "token") == TOKEN

    assert source.reads == 2
    assert source.decryptions == [("gw_1", "key", 1), ("gw_1", "token", 1)]


def test_given_the_check_time_passed_when_unchanged_then_one_read_and_no_decryption(source: FakeSource) -> None:
    clock = Clock()
    values = SecretValues(source, check_seconds=30, clock=clock)
    values.value("gw_1", "token")
    clock.now += 31

    assert values.value("gw_1", "token") == TOKEN
    assert source.reads == 2
    assert source.decryptions == [("gw_1", "token", 1)]
    clock.now += 29  # the check renewed the entry's time
    values.value("gw_1", "token")
    assert source.reads == 2


def test_given_a_rotated_secret_when_the_check_time_passed_then_the_new_version_is_decrypted_and_used(
    source: FakeSource,
) -> None:
    clock = Clock()
    values = SecretValues(source, check_seconds=30, clock=clock)
    values.value("gw_1", "token")
    source.stored[("gw_1", "token")] = (2, "rotated")

    assert values.value("gw_1", "token") == TOKEN  # within the check time: the old value
    clock.now += 30
    assert values.value("gw_1", "token") == "rotated"
    assert source.decryptions == [("gw_1", "token", 1), ("gw_1", "token", 2)]


@pytest.mark.parametrize("recreated", ["recreated-token", TOKEN + "x", TOKEN[:-1]])
def test_given_a_secret_deleted_and_set_again_within_the_check_time_when_rechecked_then_the_new_value_is_sent(
    source: FakeSource, recreated: str
) -> None:
    # Deleted and set again: it starts over at version 1, the version this container holds.
    clock = Clock()
    values = SecretValues(source, check_seconds=30, clock=clock)
    assert values.value("gw_1", "token") == TOKEN
    del source.stored[("gw_1", "token")]
    source.stored[("gw_1", "token")] = (1, recreated)

    clock.now += 30
    assert values.value("gw_1", "token") == recreated
    assert source.decryptions == [("gw_1", "token", 1), ("gw_1", "token", 1)]


def test_given_a_new_value_stored_under_the_version_held_when_rechecked_then_it_is_used_not_the_old_one(
    source: FakeSource,
) -> None:
    # Whatever writes the item (a restore, a hand-made put, a store that reuses versions): the
    # version number is not what tells values apart.
    clock = Clock()
    values = SecretValues(source, check_seconds=30, clock=clock)
    values.value("gw_1", "key")
    for n, value in enumerate(["second", "third", API_KEY]):
        source.stored[("gw_1", "key")] = (1, value)
        clock.now += 30
        assert values.value("gw_1", "key") == value, n
    assert len(source.decryptions) == 4


def test_given_a_deleted_secret_when_the_check_time_passed_then_502_secret_unavailable_naming_only_it(
    source: FakeSource,
) -> None:
    clock = Clock()
    values = SecretValues(source, check_seconds=30, clock=clock)
    values.value("gw_1", "token")
    del source.stored[("gw_1", "token")]
    clock.now += 30

    with pytest.raises(SecretUnavailable) as gone:
        values.value("gw_1", "token")

    assert (gone.value.status, gone.value.code) == (502, "secret_unavailable")
    assert "'token'" in gone.value.detail
    assert TOKEN not in gone.value.detail + json.dumps(gone.value.extensions)
    # Not served from memory afterwards either, even right away.
    with pytest.raises(SecretUnavailable):
        values.value("gw_1", "token")


def test_given_secrets_of_two_gateways_with_one_name_when_used_then_each_gateway_gets_its_own(
    source: FakeSource,
) -> None:
    source.stored[("gw_2", "token")] = (1, "other-gateway")
    values = SecretValues(source, clock=Clock())
    assert values.value("gw_1", "token") == TOKEN
    assert values.value("gw_2", "token") == "other-gateway"
    with pytest.raises(SecretUnavailable):
        values.value("gw_3", "token")


def test_given_more_secrets_than_entries_when_used_then_the_least_recent_leave_memory(source: FakeSource) -> None:
    for n in range(5):
        source.stored[("gw_1", f"s{n}")] = (1, f"value-{n}")
    values = SecretValues(source, clock=Clock(), max_entries=3)
    for n in range(5):
        values.value("gw_1", f"s{n}")
    source.decryptions.clear()

    values.value("gw_1", "s4")  # still held
    values.value("gw_1", "s0")  # left: decrypted again
    assert source.decryptions == [("gw_1", "s0", 1)]


# -- which secrets a route uses -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transform", "graphql", "expected"),
    [
        (RequestTransform(headers={"add": {"Authorization": "Bearer {{ secrets.token }}"}}), None, {"token"}),
        (RequestTransform(query={"add": {"api_key": "{{ secrets.key }}"}}), None, {"key"}),
        (RequestTransform(body={"auth": ["{{ secrets.token }}", "{{ secrets.key }}"]}), None, {"token", "key"}),
        (None, GraphqlSettings(query="{ a }", variables={"k": "{{ secrets.key }}"}), {"key"}),
        (RequestTransform(headers={"add": {"X-Partner": "{{ client.id }}"}}), None, set()),
        (RequestTransform(headers={"remove": ["secrets"]}), None, set()),  # a name, not a reference
        (None, None, set()),
    ],
)
def test_given_a_deployed_route_when_asked_then_the_secrets_it_sends_upstream(
    transform: RequestTransform | None, graphql: GraphqlSettings | None, expected: set[str]
) -> None:
    assert referenced(transform, graphql) == expected


# -- the proxy --------------------------------------------------------------------------------------

UPSTREAM_RULES: dict[str, Any] = {
    "headers": {"add": {"Authorization": "Bearer {{ secrets.token }}", "X-Partner": "{{ client.id }}"}},
    "query": {"add": {"api_key": "{{ secrets.key }}"}},
}


def _proxy(source: FakeSource, **route: Any) -> Harness:
    h = harness([make_route(request_transform=UPSTREAM_RULES, **route)])
    h.proxy.secrets = SecretValues(source)
    return h


def _everything_kept(h: Harness, body: bytes, headers: dict[str, str]) -> str:
    """The answer, its headers and every request log record, as one text."""
    records = [r.item_fields() for r in h.logs.records]
    return body.decode(errors="replace") + json.dumps(headers) + json.dumps(records, default=str)


def test_given_a_route_with_secret_references_when_called_then_the_upstream_gets_the_values(
    source: FakeSource,
) -> None:
    h = _proxy(source)

    response = h.call(query={"ccy": ["EUR"]}, headers={"Authorization": "Bearer callers-own", "X-Api-Key": "k"})

    assert response.status == 200
    (sent,) = h.upstream.calls
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["x-partner"] == "cl_1"
    assert sent.url == f"https://upstream-a.example/orders/42?ccy=EUR&api_key={API_KEY}"
    kept = _everything_kept(h, response.body, response.headers)
    assert TOKEN not in kept
    assert API_KEY not in kept


def test_given_a_body_template_and_graphql_variables_with_secrets_when_called_then_sent_upstream(
    source: FakeSource,
) -> None:
    h = harness(
        [
            make_route(
                method="POST",
                path="/pay",
                request_transform={"body": {"password": "{{ secrets.token }}", "amount": "{{ body.amount }}"}},
            ),
            make_route(
                route_id="rt_graph",
                method="POST",
                path="/graph",
                protocol="graphql",
                graphql={"query": "query($k: String) { a(k: $k) }", "variables": {"k": "{{ secrets.key }}"}},
            ),
        ]
    )
    h.proxy.secrets = SecretValues(source)
    h.upstream.default = answer(200, {"data": {"a": 1}})

    paid = h.call("POST", "/pay", body=b'{"amount": 1234.50}', headers={"content-type": "application/json"})
    graphed = h.call("POST", "/graph", body=b"{}", headers={"content-type": "application/json"})

    assert (paid.status, graphed.status) == (200, 200)
    first, second = h.upstream.calls
    assert json.loads(first.body) == {"password": TOKEN, "amount": 1234.50}
    assert json.loads(second.body)["variables"] == {"k": API_KEY}
    for kept in (_everything_kept(h, paid.body, paid.headers), _everything_kept(h, graphed.body, graphed.headers)):
        assert TOKEN not in kept
        assert API_KEY not in kept


def test_given_response_rules_stored_with_a_reference_when_called_then_callers_never_get_the_value(
    source: FakeSource,
) -> None:
    # Refused on write (route_spec); a version that holds them anyway still leaks nothing: only
    # the upstream request's context holds the secrets.
    route = make_route(request_transform=UPSTREAM_RULES, cache_ttl_seconds=60).model_copy(
        update={
            "response_transform": ResponseTransformSpec.model_construct(
                headers={"add": {"X-Leak": "v={{ secrets.token }}"}}, body={"leak": "{{ secrets.key }}"}
            ),
            "cache_key_template": "{{ secrets.token }}",
        }
    )
    h = harness([route])
    h.proxy.secrets = SecretValues(source)

    response = h.call()

    assert response.status == 200
    assert response.headers["X-Leak"] == "v="
    assert json.loads(response.body) == {"leak": None}
    kept = _everything_kept(h, response.body, response.headers) + json.dumps(list(h.cache.entries), default=str)
    assert TOKEN not in kept
    assert API_KEY not in kept


def test_given_a_secret_that_is_gone_when_called_then_502_secret_unavailable_and_the_upstream_is_not_called(
    source: FakeSource,
) -> None:
    del source.stored[("gw_1", "key")]
    h = _proxy(source)

    response = h.call()

    assert response.status == 502
    problem = json.loads(response.body)
    assert problem["code"] == "secret_unavailable"
    assert "'key'" in problem["detail"]
    assert h.upstream.calls == []
    assert h.record().error_code == "secret_unavailable"
    assert TOKEN not in _everything_kept(h, response.body, response.headers)


def test_given_a_secret_that_cannot_be_decrypted_when_called_then_502_and_nothing_is_sent(source: FakeSource) -> None:
    source.fail_decrypt = True
    h = _proxy(source)
    response = h.call()
    assert (response.status, json.loads(response.body)["code"]) == (502, "secret_unavailable")
    assert h.upstream.calls == []


def test_given_the_store_failing_when_called_then_503_and_nothing_is_sent(source: FakeSource) -> None:
    class Failing(FakeSource):
        def sealed(self, gateway_id: str, name: str) -> Sealed | None:
            raise DependencyUnavailable("The route's upstream credential could not be read; try again.")

    h = _proxy(Failing())
    response = h.call()
    assert response.status == 503
    assert h.upstream.calls == []


def test_given_a_proxy_without_secrets_when_a_route_uses_them_then_502_while_other_routes_serve() -> None:
    h = harness([make_route(request_transform=UPSTREAM_RULES), make_route(route_id="rt_plain", path="/plain")])
    assert h.proxy.secrets is None

    assert h.call().status == 502
    assert h.call("GET", "/plain").status == 200


def test_given_routes_without_secrets_when_served_then_no_secret_is_read(source: FakeSource) -> None:
    h = harness([make_route(request_transform={"headers": {"add": {"X-Partner": "{{ client.id }}"}}})])
    h.proxy.secrets = SecretValues(source)
    assert h.call().status == 200
    assert source.reads == 0


def test_the_data_plane_imports_the_templates_only_for_routes_that_use_them() -> None:
    # A fresh interpreter: the secrets' port and cache are on the cold path, the templates are not.
    code = (
        "import sys\n"
        "from functions.routes.logic.secret_values import referenced\n"
        "from gateway_core.deployed import RequestTransform\n"
        "assert referenced(RequestTransform(headers={'remove': ['x']}), None) == frozenset()\n"
        "print('functions.routes.logic.transform.templates' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=root,
        env={"PYTHONPATH": f"{root}:{root / 'layers'}"},
    )
    assert done.stdout.strip() == "False"
