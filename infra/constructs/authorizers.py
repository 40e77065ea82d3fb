"""The five Lambda authorizers' roles: one GetItem per check, each narrowed to the item kinds that
authorizer reads (`dynamodb:LeadingKeys`), and the API key authorizers' hourly last-use stamp."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.data import DataStore, leading_keys

# What each authorizer reads: the IP denylist (`CONFIG`) and its credential's items.
READS = {
    # CLIENT#: the allowed scopes of a key stored before keys carried a copy of them.
    "api_key_authorizer": ("CONFIG", "APIKEY#*", "CLIENT#*"),
    # CERT#: a certificate-bound token is refused once its certificate is revoked (RFC 8705).
    "jwt_authorizer": ("CONFIG", "CLIENT#*", "ISSUER#*", "CERT#*"),
    "mtls_authorizer": ("CONFIG", "CERT#*", "CLIENT#*"),
    # Any one credential: an API key, a bearer token or a client certificate.
    "gateway_authorizer": ("CONFIG", "APIKEY#*", "CLIENT#*", "ISSUER#*", "CERT#*"),
    # The admin API: an API key or a bearer token.
    "admin_authorizer": ("CONFIG", "APIKEY#*", "CLIENT#*", "ISSUER#*", "CERT#*"),
}
# The authorizers that check API keys also record a key's last use (at most hourly).
STAMPS_KEYS = ("api_key_authorizer", "gateway_authorizer", "admin_authorizer")
# The authorizers that verify bearer tokens, ours with the signing keys' public halves.
VERIFIES_TOKENS = ("jwt_authorizer", "gateway_authorizer", "admin_authorizer")


class Authorizers(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: dict[str, lambda_.Function],
        data: DataStore,
        denylist_cache_seconds: int,
        issuer_url: str,
        token_audience: str,
        upstream_allow_cidrs: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        for name, kinds in READS.items():
            function = functions[name]
            function.add_environment("DENYLIST_CACHE_SECONDS", str(denylist_cache_seconds))
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:GetItem"], resources=[data.table.table_arn], conditions=leading_keys(*kinds)
                )
            )
            data.grant_table_key(function, write=name in STAMPS_KEYS)
        for name in STAMPS_KEYS:
            # That one attribute, on key lookup items only.
            functions[name].add_to_role_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:UpdateItem"],
                    resources=[data.table.table_arn],
                    conditions={
                        **leading_keys("APIKEY#*"),
                        "ForAllValues:StringEquals": {"dynamodb:Attributes": ["PK", "SK", "last_used_at"]},
                    },
                )
            )
        # Whether a client has registered certificates (its admin tokens must then be bound):
        # counted on the index of a client's certificates; COUNT only, so no item is ever read.
        functions["admin_authorizer"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"],
                resources=[f"{data.table.table_arn}/index/GSI1"],
                conditions={"StringEquals": {"dynamodb:Select": "COUNT"}},
            )
        )
        for name in VERIFIES_TOKENS:
            functions[name].add_environment("TOKEN_ISSUER", issuer_url)
            functions[name].add_environment("TOKEN_AUDIENCE", token_audience)
            functions[name].add_environment("TOKEN_VERIFY_KEY_IDS", ",".join(k.key_arn for k in data.token_verify_keys))
            # External issuers' JWKS are fetched through the SSRF guard, with the same allowlist as
            # the management API checked their URLs against (the local runtime allowlists loopback).
            functions[name].add_environment("UPSTREAM_ALLOW_CIDRS", ",".join(upstream_allow_cidrs))
            functions[name].add_to_role_policy(
                iam.PolicyStatement(actions=["kms:GetPublicKey"], resources=[k.key_arn for k in data.token_verify_keys])
            )
