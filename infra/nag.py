"""cdk-nag (AwsSolutions) acknowledgments. Each names the construct, the rule and the reason;
anything not acknowledged here fails the infra tests and `cdk synth`."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_apigateway as apigw
from constructs import IConstruct

_PUBLIC_METHODS = (
    "Api/GatewayApi/Default/oauth2/token/POST",
    "Api/GatewayApi/Default/.well-known/jwks.json/GET",
    "Api/GatewayApi/Default/.well-known/openid-configuration/GET",
    "Api/GatewayApi/Default/api/v1/gateway/health/GET",
    "Api/GatewayApi/Default/api/v1/docs/GET",
)
# Every function's role: construct ids are the names of infra/config.py LAMBDA_FUNCTIONS in title case.
_FUNCTION_ROLES = [
    f"Functions/{n}Role/DefaultPolicy"
    for n in (
        "ApiKeyAuthorizer",
        "JwtAuthorizer",
        "MtlsAuthorizer",
        "GatewayAuthorizer",
        "AdminAuthorizer",
        "Proxy",
        "Management",
        "Oauth",
        "Health",
        "Integrations",
        "Webhooks",
        "WebhookFanout",
        "WebhookDelivery",
        "Marketdata",
    )
]

_AUTHORIZED_METHODS = (
    "Api/GatewayApi/Default/api/v1/whoami/GET",
    "Api/GatewayApi/Default/api/v1/whoami/token/GET",
    "Api/GatewayApi/Default/api/v1/whoami/certificate/GET",
    "Api/GatewayApi/Default/api/v1/clients/GET",
    "Api/GatewayApi/Default/api/v1/clients/{proxy+}/ANY",
    "Api/GatewayApi/Default/api/v1/audit/events/GET",
    "Api/GatewayApi/Default/api/v1/gateway/keys/GET",
    "Api/GatewayApi/Default/api/v1/gateway/keys/POST",
    "Api/GatewayApi/Default/api/v1/gateway/keys/{proxy+}/ANY",
    "Api/GatewayApi/Default/api/v1/gateway/ip-denylist/GET",
    "Api/GatewayApi/Default/api/v1/gateway/ip-denylist/PUT",
    "Api/GatewayApi/Default/api/v1/gateway/issuers/GET",
    "Api/GatewayApi/Default/api/v1/gateway/issuers/POST",
    "Api/GatewayApi/Default/api/v1/gateway/issuers/{proxy+}/ANY",
    "Api/GatewayApi/Default/api/v1/gateway/routes/GET",
    "Api/GatewayApi/Default/api/v1/gateway/routes/POST",
    "Api/GatewayApi/Default/api/v1/gateway/routes/{proxy+}/ANY",
    "Api/GatewayApi/Default/api/v1/gateways/GET",
    "Api/GatewayApi/Default/api/v1/gateways/POST",
    "Api/GatewayApi/Default/api/v1/gateways/{proxy+}/ANY",
    "Api/GatewayApi/Default/api/v1/batch/POST",
    "Api/GatewayApi/Default/gw/ANY",
    "Api/GatewayApi/Default/gw/{proxy+}/ANY",
    "Api/GatewayApi/Default/api/v1/webhooks/GET",
    "Api/GatewayApi/Default/api/v1/webhooks/POST",
    "Api/GatewayApi/Default/api/v1/webhooks/{proxy+}/ANY",
    "Api/GatewayApi/Default/api/v1/events/types/GET",
    "Api/GatewayApi/Default/api/v1/events/trigger/POST",
    "Api/GatewayApi/Default/api/v1/docs/events/GET",
)

# (construct path under the stack, rule id, reason)
ACKNOWLEDGMENTS: list[tuple[str, str, str]] = [
    *[
        (
            path,
            "AwsSolutions::AwsSolutions-APIG4",
            "Deliberately public: health is polled by load balancers and monitors, the OpenAPI document is public documentation, the OAuth2 token endpoint authenticates the client itself (RFC 6749 client credentials), and the JWKS and server metadata are public by design (RFC 7517, RFC 8414).",
        )
        for path in _PUBLIC_METHODS
    ],
    *[
        (path, "AwsSolutions::AwsSolutions-COG4", "Public method (see APIG4); Cognito is not used by this product.")
        for path in _PUBLIC_METHODS
    ],
    *[
        (
            path,
            "AwsSolutions::AwsSolutions-COG4",
            "Callers are third-party machines with API keys, OAuth2 client-credential JWTs or client certificates, checked by our Lambda authorizers; there are no Cognito user pools.",
        )
        for path in _AUTHORIZED_METHODS
    ],
    (
        "Api/GatewayApi/DeploymentStage.{stage}",
        "AwsSolutions::AwsSolutions-APIG3",
        "WAFv2 is an account-level choice with its own cost; the gateway enforces its own IP allow/deny lists and rate limits. Attach a web ACL to the stage where policy requires one.",
    ),
    (
        "Api/GatewayApi/CloudWatchRole",
        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
        "The account-wide role API Gateway needs to write access and execution logs; AWS maintains this policy for exactly that purpose.",
    ),
    *[
        (
            path,
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permissions; for the health function also scheduler:ListSchedules, which takes the group as a parameter and has no resource ARN; for the webhook fan-out dynamodb:ListStreams (its stream mapping), which has none either.",
        )
        for path in _FUNCTION_ROLES
    ],
    (
        "Payments/PaymentFallback/Role/DefaultPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "CloudWatch Logs delivery (logs:CreateLogDelivery and friends) and X-Ray accept only '*' as resource, per the Step Functions documentation.",
    ),
    *[
        (
            "Functions/WebhookFanoutRole/DefaultPolicy",
            f"AwsSolutions::AwsSolutions-IAM5[Action::{action}]",
            "CDK's grant for sending to the KMS-encrypted fan-out DLQ (the stream mapping's on-failure destination), on that queue's key only.",
        )
        for action in ("kms:ReEncrypt*", "kms:GenerateDataKey*")
    ],
    (
        "Webhooks/FanoutDlq",
        "AwsSolutions::AwsSolutions-SQS3",
        "It is a dead-letter destination itself: the fan-out stream mapping's on-failure queue (exhausted batches' shard and sequence ranges).",
    ),
    (
        "Schedules/SchedulerRole/DefaultPolicy",
        "AwsSolutions::AwsSolutions-IAM5[Resource::<FunctionsIntegrationsFunctionD39D9C51.Arn>:*]",
        "Lets schedules invoke published versions and aliases of the integrations function, and nothing else.",
    ),
]


def _find(stack: Stack, path: str) -> IConstruct:
    node: IConstruct = stack
    for part in path.split("/"):
        node = node.node.find_child(part)
    return node


_PREFLIGHT = [
    ("AwsSolutions::AwsSolutions-APIG4", "CORS preflight (OPTIONS): browsers send no credential on a preflight."),
    ("AwsSolutions::AwsSolutions-COG4", "CORS preflight (OPTIONS): browsers send no credential on a preflight."),
]


_METHOD_NOT_ALLOWED = [
    (
        "AwsSolutions::AwsSolutions-APIG4",
        "405 Method Not Allowed (MOCK integration, ANY on a resource with explicit methods): answers from API Gateway itself with a static problem document and Allow header; nothing runs and nothing is read.",
    ),
    ("AwsSolutions::AwsSolutions-COG4", "405 Method Not Allowed from a MOCK integration (see APIG4)."),
]


def acknowledge_findings(stack: Stack, stage: str) -> None:
    for path, rule, reason in ACKNOWLEDGMENTS:
        Validations.of(_find(stack, path.replace("{stage}", stage))).acknowledge(Acknowledgment(id=rule, reason=reason))
    # Preflight methods exist only when CORS is configured (context corsAllowOrigins).
    for node in stack.node.find_all():
        if isinstance(node, apigw.Method) and node.http_method == "OPTIONS":
            for rule, reason in _PREFLIGHT:
                Validations.of(node).acknowledge(Acknowledgment(id=rule, reason=reason))
        if isinstance(node, apigw.Method) and _is_mock(node):
            for rule, reason in _METHOD_NOT_ALLOWED:
                Validations.of(node).acknowledge(Acknowledgment(id=rule, reason=reason))


def _is_mock(method: apigw.Method) -> bool:
    cfn = method.node.default_child
    integration = cfn.integration if isinstance(cfn, apigw.CfnMethod) else None
    return isinstance(integration, apigw.CfnMethod.IntegrationProperty) and integration.type == "MOCK"
