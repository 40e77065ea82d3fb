"""The OAuth2 function (token, JWKS, discovery) and its whole role: the only holder of kms:Sign
(on the current signing key), the public keys of the signing keys it publishes, and the two
reads a token request makes (the client, and the certificate a bound token names)."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.data import DataStore, leading_keys


class OAuthServer(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.Function,
        data: DataStore,
        issuer_url: str,
        token_audience: str,
        mtls_base_url: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem"],
                resources=[data.table.table_arn],
                conditions=leading_keys("CLIENT#*", "CERT#*"),
            )
        )
        data.grant_table_key(function, write=False)
        # Sign with the current key; publish the current and the previous public key.
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["kms:Sign"], resources=[data.token_signing_key.key_arn])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["kms:GetPublicKey"], resources=[k.key_arn for k in data.token_verify_keys])
        )
        function.add_environment("TOKEN_SIGNING_KEY_ID", data.token_signing_key.key_arn)
        function.add_environment("TOKEN_VERIFY_KEY_IDS", ",".join(k.key_arn for k in data.token_verify_keys))
        function.add_environment("TOKEN_ISSUER", issuer_url)
        function.add_environment("TOKEN_AUDIENCE", token_audience)
        if mtls_base_url:
            # Discovery names the mTLS host for certificate-bound tokens (RFC 8705 §5).
            function.add_environment("MTLS_BASE_URL", mtls_base_url)
