"""The OAuth2 function's entry point on moto: a token for a registered client signed by KMS, the
JWKS that verifies it, discovery, and the refusals; each answer matches what the OpenAPI document
says of it (functions/routes/api/models.py)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import boto3
import jwt
import pytest

from functions.routes.api.models import JwksOut, ServerMetadataOut, TokenOut
from functions.routes.dal.clients_store import DynamoClientStore
from functions.routes.logic import clients
from gateway_core.audit import Actor
from gateway_core.clock import utc_now
from gateway_core.secrets_hashing import hash_secret
from tests.integration.conftest import create_data_table
from tests.integration.helpers import REGION, FakeLambdaContext, proxy_event, response_header
from tests.unit.factories import make_client

TABLE = "gateway-oauth"
ISSUER = "https://gateway.bank.example/prod"
SECRET = "gs_test_secret-of-the-payments-client"


@pytest.fixture
def oauth(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    create_data_table(TABLE)
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    for name, value in {
        "TABLE_NAME": TABLE,
        "TOKEN_ISSUER": ISSUER,
        "TOKEN_AUDIENCE": "finance-gateway",
        "TOKEN_SIGNING_KEY_ID": key,
        "TOKEN_VERIFY_KEY_IDS": key,
    }.items():
        monkeypatch.setenv(name, value)
    client = make_client(client_id="cl_pay", allowed_scopes=["banking:read"], secret_hash=hash_secret(SECRET))
    DynamoClientStore(boto3.client("dynamodb", region_name=REGION), TABLE).create(client, Actor("a", "k", "k", "r"))
    from functions.routes.oauth_handler import lambda_handler

    return lambda_handler


def token_request(handler: Any, secret: str = SECRET) -> dict[str, Any]:
    basic = base64.b64encode(f"cl_pay:{secret}".encode()).decode()
    event = proxy_event(
        "POST",
        "/oauth2/token",
        body="grant_type=client_credentials&scope=banking%3Aread",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"},
    )
    result: dict[str, Any] = handler(event, FakeLambdaContext())
    return result


def test_a_client_gets_a_kms_signed_token_the_jwks_verifies(oauth: Any) -> None:
    issued = token_request(oauth)

    assert issued["statusCode"] == 200
    assert response_header(issued, "Cache-Control") == "no-store"
    token = TokenOut.model_validate_json(issued["body"])
    keys = oauth(proxy_event("GET", "/.well-known/jwks.json"), FakeLambdaContext())
    jwks = JwksOut.model_validate_json(keys["body"])
    (jwk,) = jwks.keys
    assert jwt.get_unverified_header(token.access_token)["kid"] == jwk.kid
    public = jwt.PyJWK(jwk.model_dump()).key
    claims = jwt.decode(token.access_token, public, algorithms=["RS256"], audience="finance-gateway", issuer=ISSUER)
    assert (claims["sub"], claims["scope"]) == ("cl_pay", "banking:read")


def test_a_wrong_secret_is_an_rfc6749_invalid_client(oauth: Any) -> None:
    refused = token_request(oauth, secret="gs_test_wrong")

    assert refused["statusCode"] == 401
    assert json.loads(refused["body"])["error"] == "invalid_client"
    assert (response_header(refused, "WWW-Authenticate") or "").startswith("Basic")


def test_discovery_names_the_issuer_and_its_endpoints(oauth: Any) -> None:
    found = oauth(proxy_event("GET", "/.well-known/openid-configuration"), FakeLambdaContext())

    metadata = ServerMetadataOut.model_validate_json(found["body"])
    assert (metadata.issuer, metadata.token_endpoint) == (ISSUER, f"{ISSUER}/oauth2/token")
    assert metadata.mtls_endpoint_aliases is None


def test_anything_else_is_a_route_not_found_problem(oauth: Any) -> None:
    found = oauth(proxy_event("GET", "/api/v1/clients", request_id="req-x"), FakeLambdaContext())

    assert found["statusCode"] == 404
    assert response_header(found, "Content-Type") == "application/problem+json"
    assert json.loads(found["body"])["request_id"] == "req-x"


# -- client secret rotation: both secrets work during the grace, then only the new one ------------

ADMIN_ACTOR = Actor("admin-1", "api_key", "k1", "req-1")


def _status(handler: Any, secret: str) -> int:
    status: int = token_request(handler, secret)["statusCode"]
    return status


def _rotate(grace: timedelta, at: datetime) -> str:
    store = DynamoClientStore(boto3.client("dynamodb", region_name=REGION), TABLE)
    return clients.rotate_secret(store, "cl_pay", ADMIN_ACTOR, at, "test", grace)[1]


def test_during_a_rotation_grace_the_old_and_the_new_secret_both_get_tokens(oauth: Any) -> None:
    new_secret = _rotate(timedelta(hours=1), utc_now())
    assert _status(oauth, new_secret) == 200
    assert _status(oauth, SECRET) == 200
    assert _status(oauth, "gs_test_neither-of-them") == 401


@pytest.mark.parametrize(
    ("grace", "rotated_ago"),
    [(timedelta(0), timedelta(0)), (timedelta(hours=1), timedelta(hours=2)), (timedelta(days=30), timedelta(days=31))],
)
def test_after_a_rotation_grace_only_the_new_secret_gets_tokens(
    oauth: Any, grace: timedelta, rotated_ago: timedelta
) -> None:
    # A rotation that happened `rotated_ago`: its grace is over by now
    new_secret = _rotate(grace, utc_now() - rotated_ago)
    assert _status(oauth, new_secret) == 200
    refused = token_request(oauth, SECRET)
    assert refused["statusCode"] == 401
    assert json.loads(refused["body"])["error"] == "invalid_client"


def test_a_second_rotation_during_the_grace_ends_the_first_secret_at_once(oauth: Any) -> None:
    second = _rotate(timedelta(hours=1), utc_now())
    third = _rotate(timedelta(hours=1), utc_now())
    assert (_status(oauth, third), _status(oauth, second), _status(oauth, SECRET)) == (200, 200, 401)
