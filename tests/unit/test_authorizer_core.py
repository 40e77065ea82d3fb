"""functions.authorizer.core and gateway_core.credentials: policy shape, context, key format."""

from __future__ import annotations

import hashlib
import re

import pytest

from functions.authorizer.core import Denied, Principal, allow, api_wildcard_arn
from gateway_core.credentials import api_key_item, generate_api_key, hash_api_key, key_lookup_key

PRINCIPAL = Principal(
    client_id="c-1",
    credential_kind="api_key",
    scopes=("read", "admin"),
    tier="gold",
    credential_id="k-1",
)


@pytest.mark.parametrize(
    ("method_arn", "expected"),
    [
        (
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/api/v1/whoami",
            "arn:aws:execute-api:us-east-1:123456789012:abc123/*/*",
        ),
        (
            "arn:aws:execute-api:eu-west-1:210987654321:xyz789/dev/POST/",
            "arn:aws:execute-api:eu-west-1:210987654321:xyz789/*/*",
        ),
        (
            "arn:aws-us-gov:execute-api:us-gov-west-1:123456789012:gov1/stage/DELETE/api/v1/keys/k1",
            "arn:aws-us-gov:execute-api:us-gov-west-1:123456789012:gov1/*/*",
        ),
    ],
)
def test_given_a_method_arn_when_widened_then_it_covers_every_stage_method_and_path(
    method_arn: str, expected: str
) -> None:
    assert api_wildcard_arn(method_arn) == expected


def test_given_a_principal_when_allowed_then_the_policy_covers_the_whole_api() -> None:
    # When
    result = allow(PRINCIPAL, "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/api/v1/whoami")

    # Then
    assert result["principalId"] == "c-1"
    statements = result["policyDocument"]["Statement"]
    assert result["policyDocument"]["Version"] == "2012-10-17"
    assert statements == [
        {
            "Action": "execute-api:Invoke",
            "Effect": "Allow",
            "Resource": "arn:aws:execute-api:us-east-1:123456789012:abc123/*/*",
        }
    ]


def test_given_a_principal_when_allowed_then_the_context_is_flat_with_space_separated_scopes() -> None:
    context = allow(PRINCIPAL, "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/x")["context"]

    assert context == {
        "client_id": "c-1",
        "credential_kind": "api_key",
        "credential_id": "k-1",
        "scopes": "read admin",
        "tier": "gold",
        "cert_thumbprint": "",
        "rate_limits": "",
        "not_after": "",
        "key_lineage": "",
    }
    assert all(isinstance(v, str | int | bool) for v in context.values())


def test_given_a_denial_when_raised_then_its_message_is_unauthorized_and_the_reason_is_kept() -> None:
    denied = Denied("unknown_key")

    assert str(denied) == "Unauthorized"
    assert denied.reason == "unknown_key"


def test_given_an_environment_when_generating_a_key_then_it_is_prefixed_and_has_256_bits_of_urlsafe_randomness() -> (
    None
):
    # When
    keys = {generate_api_key("test") for _ in range(50)}

    # Then
    assert len(keys) == 50
    for key in keys:
        assert key.startswith("gk_test_")
        secret = key.removeprefix("gk_test_")
        assert len(secret) >= 43
        assert re.fullmatch(r"[A-Za-z0-9_-]+", secret)


def test_given_a_key_when_hashed_then_it_is_the_hex_sha256() -> None:
    key = "gk_test_example"

    assert hash_api_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert len(hash_api_key(key)) == 64


def test_given_a_hash_when_building_the_lookup_key_then_it_is_the_apikey_partition() -> None:
    assert key_lookup_key("abc") == {"PK": {"S": "APIKEY#abc"}, "SK": {"S": "APIKEY"}}


def test_given_a_new_key_when_building_its_item_then_only_the_hash_is_stored() -> None:
    # Given
    key = generate_api_key("test")
    key_hash = hash_api_key(key)

    # When
    item = api_key_item(
        key_hash=key_hash,
        key_id="k-1",
        client_id="c-1",
        scopes=["read", "write"],
        tier="free",
        name="ci",
        created_at="2026-01-01T00:00:00Z",
        last_four=key[-4:],
        prefix="gk_test_",
    )

    # Then the item is found by the hash and the key itself appears nowhere
    assert item["PK"] == {"S": f"APIKEY#{key_hash}"}
    assert item["SK"] == {"S": "APIKEY"}
    assert item["status"] == {"S": "active"}
    assert item["scopes"] == {"L": [{"S": "read"}, {"S": "write"}]}
    assert item["GSI1PK"] == {"S": "CLIENT#c-1#KEYS"}
    assert item["GSI1SK"] == {"S": "2026-01-01T00:00:00Z#k-1"}
    assert key not in repr(item)
    assert key.removeprefix("gk_test_") not in repr(item)
