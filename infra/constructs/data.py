"""State: the single data table, the rate-limit bucket table, the KMS key that encrypts them, the
key of the upstream secrets and the token signing keys.

Key design (README 'DynamoDB key design' lists every access pattern): generic PK/SK plus two
overloaded GSIs; the rate-limit table is separate so its hot, tiny writes never share partitions
or capacity with configuration data. TTL attribute `ttl` (epoch seconds) expires logs and buckets.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

TTL_ATTRIBUTE = "ttl"


def leading_keys(*patterns: str) -> dict[str, dict[str, list[str]]]:
    """A condition that lets item calls through only for partition keys matching `patterns`."""
    return {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(patterns)}}


class DataStore(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy,
        signing_key_generation: int = 1,
    ) -> None:
        super().__init__(scope, construct_id)
        self._removal_policy = removal_policy
        self.key = kms.Key(
            self,
            "DataKey",
            description="Encrypts gateway data at rest: tables, queues, logs and stored integration credentials",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        # CloudWatch Logs encrypts the gateway's log groups with this key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{Stack.of(self).region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{Stack.of(self).partition}:logs:{Stack.of(self).region}:{Stack.of(self).account}:log-group:*"
                    }
                },
            )
        )
        # Signs OAuth2 access tokens (RS256); the private key never leaves KMS. KMS cannot rotate
        # asymmetric keys, so rotation is a new key per generation (context
        # `tokenSigningKeyGeneration`): the current one signs, the previous one stays in the JWKS
        # so the tokens it signed verify until they expire, older ones leave the stack.
        # Encrypts the gateways' upstream secrets (functions/routes/logic/secrets.py) and nothing
        # else: a key of their own, so that encrypting (the management function) and decrypting
        # (the data plane alone) can be granted apart; the data key is usable by every function
        # that reads the tables.
        self.secrets_key = kms.Key(
            self,
            "UpstreamSecretsKey",
            description="Encrypts the gateways' upstream secrets; only the data plane may decrypt",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        if signing_key_generation < 1:
            raise ValueError("tokenSigningKeyGeneration starts at 1")
        self.token_signing_key = self._signing_key(signing_key_generation)
        self.token_verify_keys = [self.token_signing_key]
        if signing_key_generation > 1:
            self.token_verify_keys.append(self._signing_key(signing_key_generation - 1))
        common = {
            "billing_mode": dynamodb.BillingMode.PAY_PER_REQUEST,
            "encryption": dynamodb.TableEncryption.CUSTOMER_MANAGED,
            "encryption_key": self.key,
            "point_in_time_recovery_specification": dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            "time_to_live_attribute": TTL_ATTRIBUTE,
            "removal_policy": removal_policy,
        }
        self.table = dynamodb.Table(
            self,
            "DataTable",
            partition_key=dynamodb.Attribute(name="PK", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="SK", type=dynamodb.AttributeType.STRING),
            # Items that carry a webhook event (gateway_core.events) reach the fan-out through the
            # stream: the event is published by the write that commits the change.
            stream=dynamodb.StreamViewType.NEW_IMAGE,
            **common,  # type: ignore[arg-type]
        )
        for index in ("GSI1", "GSI2"):
            self.table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=f"{index}PK", type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=f"{index}SK", type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        self.rate_limit_table = dynamodb.Table(
            self,
            "RateLimitTable",
            partition_key=dynamodb.Attribute(name="PK", type=dynamodb.AttributeType.STRING),
            **common,  # type: ignore[arg-type]
        )

    def grant_table_key(self, grantee: iam.IGrantable, *, write: bool) -> None:
        """What a principal needs of the data key to read (and write) items of the encrypted
        tables, as CDK's table grants add: without it every item call is denied in AWS (moto
        does not check KMS use; tests/infra guards it on the template)."""
        actions = ["kms:Decrypt", "kms:DescribeKey"]
        if write:
            actions += ["kms:Encrypt", "kms:GenerateDataKey"]
        self.key.grant(grantee, *actions)

    def _signing_key(self, generation: int) -> kms.Key:
        # Generation 1 keeps the original construct id, so enabling rotation later replaces nothing.
        return kms.Key(
            self,
            "TokenSigningKey" if generation == 1 else f"TokenSigningKeyV{generation}",
            description=f"Signs the gateway's OAuth2 access tokens (RS256), generation {generation}",
            key_spec=kms.KeySpec.RSA_2048,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=self._removal_policy,
        )
