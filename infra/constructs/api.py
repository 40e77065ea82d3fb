"""The REST API: stage with access logs and X-Ray, the API key authorizer, problem+json gateway
responses, and the methods that exist so far.

API Gateway's own errors (missing credential, denied, unknown path, too large, integration
failure or timeout) are rewritten into RFC 9457 problem documents by gateway responses, so a
client sees one error format whether the function or the gateway answered.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

PROBLEM = "application/problem+json"

# (response type, status, code, title, detail)
GATEWAY_PROBLEMS = [
    (apigw.ResponseType.UNAUTHORIZED, "401", "unauthorized", "Unauthorized", "A valid credential is required."),
    (
        apigw.ResponseType.ACCESS_DENIED,
        "403",
        "access_denied",
        "Forbidden",
        "The credential does not allow this request.",
    ),
    (
        apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
        "404",
        "route_not_found",
        "Not Found",
        "No route matches this method and path.",
    ),
    (
        apigw.ResponseType.REQUEST_TOO_LARGE,
        "413",
        "payload_too_large",
        "Content Too Large",
        "The request body exceeds the 10 MB limit.",
    ),
    (
        apigw.ResponseType.THROTTLED,
        "429",
        "throttled",
        "Too Many Requests",
        "The API is throttling requests; retry later.",
    ),
    (
        apigw.ResponseType.AUTHORIZER_FAILURE,
        "500",
        "authorizer_failure",
        "Internal Server Error",
        "The authorizer failed; quote the request id.",
    ),
    (
        apigw.ResponseType.INTEGRATION_FAILURE,
        "502",
        "integration_failure",
        "Bad Gateway",
        "The function behind this route failed.",
    ),
    (
        apigw.ResponseType.INTEGRATION_TIMEOUT,
        "504",
        "integration_timeout",
        "Gateway Timeout",
        "The function behind this route did not answer in time.",
    ),
    (apigw.ResponseType.DEFAULT_4_XX, None, "bad_request", "Bad Request", "The gateway refused this request."),
    (
        apigw.ResponseType.DEFAULT_5_XX,
        None,
        "gateway_error",
        "Gateway Error",
        "The gateway failed; quote the request id.",
    ),
]


# A 401 names the scheme it wants (RFC 9110 §11.6.1); API keys travel in the x-api-key header.
_HEADERS = {"unauthorized": {"WWW-Authenticate": '\'ApiKey realm="finance-gateway", header="x-api-key"\''}}

# ACCESS_DENIED after a Deny from our authorizers says why (its context carries the reason).
_EXTRA = {"access_denied": ',"reason":"$context.authorizer.reason"'}


def problem_template(code: str, title: str, detail: str, status: str | None, extra: str = "") -> str:
    """A problem document as a gateway response template. The DEFAULT_4XX/5XX responses cover
    several statuses and API Gateway offers no variable holding the status, so they omit the
    (optional) status member and carry API Gateway's own message as the detail."""
    detail_json = '"' + detail + '"' if status is not None else "$context.error.messageString"
    status_member = '"status":' + status + "," if status is not None else ""
    return (
        f'{{"type":"urn:gateway:problem:{code}","title":"{title}",{status_member}"detail":{detail_json},'
        f'"code":"{code}","request_id":"$context.requestId"{extra}}}'
    )


class RestApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        functions: dict[str, lambda_.Function],
        log_key: kms.IKey,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, encryption_key=log_key, removal_policy=removal_policy
        )
        self.api = apigw.RestApi(
            self,
            "GatewayApi",
            description="Finance integration gateway",
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=removal_policy,
            deploy_options=apigw.StageOptions(
                stage_name=stage,
                tracing_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
            endpoint_types=[apigw.EndpointType.REGIONAL],
        )
        for response_type, status, code, title, detail in GATEWAY_PROBLEMS:
            self.api.add_gateway_response(
                f"Problem{code.title().replace('_', '')}",
                type=response_type,
                status_code=status,
                templates={PROBLEM: problem_template(code, title, detail, status, _EXTRA.get(code, ""))},
                response_headers={"Content-Type": f"'{PROBLEM}'", **_HEADERS.get(code, {})},
            )
        self.request_validator = self.api.add_request_validator(
            "RequestValidator", validate_request_parameters=True, validate_request_body=True
        )
        self.api_key_authorizer = apigw.RequestAuthorizer(
            self,
            "ApiKeyAuthorizer",
            handler=functions["authorizer"],
            # The source IP is part of the cache key: an allowlist decision must not be reused for
            # another address while the result is cached.
            identity_sources=[
                apigw.IdentitySource.header("x-api-key"),
                apigw.IdentitySource.context("identity.sourceIp"),
            ],
            results_cache_ttl=Duration.minutes(5),
        )
        routes = apigw.LambdaIntegration(functions["routes"], proxy=True)
        v1 = self.api.root.add_resource("api").add_resource("v1")
        gateway = v1.add_resource("gateway")
        self.health_method = gateway.add_resource("health").add_method(
            "GET", routes, authorization_type=apigw.AuthorizationType.NONE, request_validator=self.request_validator
        )
        self.docs_method = v1.add_resource("docs").add_method(
            "GET", routes, authorization_type=apigw.AuthorizationType.NONE, request_validator=self.request_validator
        )
        # OAuth 2.0: the token endpoint authenticates the client itself; discovery is public.
        self.api.root.add_resource("oauth2").add_resource("token").add_method(
            "POST", routes, authorization_type=apigw.AuthorizationType.NONE, request_validator=self.request_validator
        )
        well_known = self.api.root.add_resource(".well-known")
        for document in ("jwks.json", "openid-configuration"):
            well_known.add_resource(document).add_method(
                "GET", routes, authorization_type=apigw.AuthorizationType.NONE, request_validator=self.request_validator
            )
        self.authorized_methods: list[apigw.Method] = []

        def authorized(resource: apigw.IResource, http_method: str) -> None:
            self.authorized_methods.append(
                resource.add_method(
                    http_method,
                    routes,
                    authorizer=self.api_key_authorizer,
                    authorization_type=apigw.AuthorizationType.CUSTOM,
                    request_validator=self.request_validator,
                )
            )

        authorized(v1.add_resource("whoami"), "GET")
        clients = v1.add_resource("clients")
        authorized(clients, "GET")
        authorized(clients.add_resource("{proxy+}"), "ANY")
        authorized(v1.add_resource("audit").add_resource("events"), "GET")
        keys = gateway.add_resource("keys")
        authorized(keys, "GET")
        authorized(keys, "POST")
        authorized(keys.add_resource("{proxy+}"), "ANY")
        denylist = gateway.add_resource("ip-denylist")
        authorized(denylist, "GET")
        authorized(denylist, "PUT")
