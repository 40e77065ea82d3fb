"""The data plane's function (`proxy`: /gw, /gw/{proxy+}, POST /api/v1/batch) and its whole role.

It reads what serves (and decrypts the upstream secrets its routes use) and writes what each
request leaves behind, nothing else: it cannot change gateways, clients, keys or secrets, sign
tokens or flush caches. Reads and writes on the data table are
narrowed to the item kinds it touches (`dynamodb:LeadingKeys`, README "DynamoDB key design").
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.data import DataStore, leading_keys


class DataPlane(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.Function,
        data: DataStore,
        upstream_allow_cidrs: tuple[str, ...],
        global_rate_limit_per_second: int,
    ) -> None:
        super().__init__(scope, construct_id)
        table = data.table.table_arn
        # What serves: the deployments index and the targets' health (one BatchGetItem every 2 s).
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:BatchGetItem"], resources=[table], conditions=leading_keys("CONFIG"))
        )
        # Deployed versions, read once per container.
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:Query"], resources=[table], conditions=leading_keys("GATEWAY#*"))
        )
        # A client's limits and tier (every few seconds), cached answers, and the upstream secrets
        # routes use (every 30 s per secret).
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem"],
                resources=[table],
                conditions=leading_keys("CLIENT#*", "CACHE#*", "SECRET#*"),
            )
        )
        # The only role that may decrypt upstream secrets (the management function encrypts them).
        function.add_environment("UPSTREAM_SECRETS_KEY_ID", data.secrets_key.key_arn)
        function.add_to_role_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[data.secrets_key.key_arn]))
        # One request log per request, and answers to cache.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:PutItem"], resources=[table], conditions=leading_keys("CACHE#*", "REQLOG#*")
            )
        )
        # Rate limits: one conditional UpdateItem per scope (and refunds).
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem"], resources=[data.rate_limit_table.table_arn])
        )
        # Both tables are encrypted with the data key: every item read and write needs it.
        data.grant_table_key(function, write=True)
        # Upstreams: https only unless an address is on the operator's allowlist (context
        # `upstreamAllowCidrs`; the local runtime allowlists loopback for its test upstreams).
        function.add_environment("UPSTREAM_ALLOW_CIDRS", ",".join(upstream_allow_cidrs))
        function.add_environment("GLOBAL_RATE_LIMIT_PER_SECOND", str(global_rate_limit_per_second))
