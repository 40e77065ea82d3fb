"""The management function (the admin API, whoami, /api/v1/docs) and its whole role: the data
table's admin reads and writes, each change in a transaction with its audit event, and the flush
of the stage's authorizer cache after a credential changes. It may not sign tokens, and it never
touches the rate buckets."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.data import DataStore


class ManagementApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.Function,
        data: DataStore,
        api: apigw.RestApi,
        stage: str,
        issuer_url: str,
        upstream_allow_cidrs: tuple[str, ...],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # Clients, keys, certificates, issuers, the denylist, gateways, routes, versions and audit
        # events: item reads and writes (in transactions) and the listing indexes.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:ConditionCheckItem",
                ],
                resources=[
                    data.table.table_arn,
                    f"{data.table.table_arn}/index/GSI1",
                    f"{data.table.table_arn}/index/GSI2",  # every key across clients
                ],
            )
        )
        data.grant_table_key(function, write=True)
        # Revoking or narrowing a credential flushes the stage's authorizer cache.
        function.add_environment("REST_API_ID", api.rest_api_id)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["apigateway:DELETE"],
                resources=[
                    f"arn:{stack.partition}:apigateway:{stack.region}::/restapis/{api.rest_api_id}/stages/{stage}/cache/authorizers"
                ],
            )
        )
        # External issuers may not claim to be us.
        function.add_environment("TOKEN_ISSUER", issuer_url)
        # Upstream secrets are encrypted when set; decrypting them is the data plane's alone.
        function.add_environment("UPSTREAM_SECRETS_KEY_ID", data.secrets_key.key_arn)
        function.add_to_role_policy(iam.PolicyStatement(actions=["kms:Encrypt"], resources=[data.secrets_key.key_arn]))
        # Route targets are checked against the SSRF guard's allowlist when they are written.
        function.add_environment("UPSTREAM_ALLOW_CIDRS", ",".join(upstream_allow_cidrs))
