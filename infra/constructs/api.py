"""The REST API: stage with access logs and X-Ray, the API key authorizer, problem+json gateway
responses, and the methods that exist so far.

API Gateway's own errors (missing credential, denied, unknown path, too large, integration
failure or timeout) are rewritten into RFC 9457 problem documents by gateway responses, so a
client sees one error format whether the function or the gateway answered. A method a resource
does not serve is a 405 with `Allow` from a MOCK `ANY` method on that resource (see
`method_not_allowed_integration`), since a gateway response can tell neither.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

PROBLEM = "application/problem+json"
# Every media type: the proxy passes upstream answers of any type through (README, "Binary bodies").
BINARY_MEDIA_TYPES = ("*/*",)

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


# A 401 names the schemes it takes (RFC 9110 §11.6.1): bearer tokens (RFC 6750) and API keys in
# the x-api-key header. One gateway response serves the whole API, so it names both.
_HEADERS = {
    "unauthorized": {
        "WWW-Authenticate": '\'Bearer realm="finance-gateway", ApiKey realm="finance-gateway", header="x-api-key"\''
    }
}

# ACCESS_DENIED after a Deny from our authorizers says why (its context carries the reason).
_EXTRA = {"access_denied": ',"reason":"$context.authorizer.reason"'}


# The methods a REST API resource can define (`ANY` stands for all of them), in the order an
# `Allow` header lists them.
METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allow_header(methods: Iterable[str]) -> str:
    """An `Allow` value (RFC 9110 section 10.2.1) in METHOD_ORDER."""
    served = {m.upper() for m in methods}
    return ", ".join(m for m in METHOD_ORDER if m in served)


def method_not_allowed_detail(allow: str) -> str:
    """The detail of a 405: the same text whether the MOCK method or the management function answers."""
    return f"This path does not serve this method; it serves {allow}."


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


@dataclass(frozen=True)
class MtlsDomainSettings:
    """A custom domain that requires client certificates (context `mtlsDomainName`,
    `mtlsCertificateArn`, `mtlsTruststoreUri` = s3://bucket/key of the PEM CA bundle, optional
    `mtlsTruststoreVersion`). API Gateway verifies the chain and puts the certificate in
    `requestContext.identity.clientCert`; the mTLS authorizer checks it is registered."""

    domain_name: str
    certificate_arn: str
    truststore_uri: str
    truststore_version: str | None = None

    def __post_init__(self) -> None:
        bucket, _, key = self.truststore_uri.removeprefix("s3://").partition("/")
        if not self.truststore_uri.startswith("s3://") or not bucket or not key:
            raise ValueError("mtlsTruststoreUri is s3://<bucket>/<key>")

    @property
    def bucket_and_key(self) -> tuple[str, str]:
        bucket, _, key = self.truststore_uri.removeprefix("s3://").partition("/")
        return bucket, key


@dataclass(frozen=True)
class CorsSettings:
    """Browser access (context `corsAllowOrigins`, comma-separated origins or `*`;
    `corsAllowHeaders`, `corsExposeHeaders`, `corsMaxAgeSeconds`). Preflight requests reach the
    function that serves the resource (OPTIONS methods without an authorizer), which answers them
    and adds the headers to its own responses, errors included, only for a listed Origin. API Gateway's own
    errors (401, 403, 404, 429, 5xx) carry the headers too: one origin or `*` as configured; with
    several origins the request's Origin is echoed there, since a gateway response cannot choose
    from a list and those bodies hold nothing but the error."""

    allow_origins: tuple[str, ...]
    allow_headers: tuple[str, ...] = ("Authorization", "Content-Type", "X-Api-Key", "Idempotency-Key", "X-Request-Id")
    expose_headers: tuple[str, ...] = (
        "X-Amzn-RequestId",
        "Location",
        "WWW-Authenticate",
        "Retry-After",
        "RateLimit",
        "RateLimit-Policy",
    )
    max_age_seconds: int = 600

    def __post_init__(self) -> None:
        for origin in self.allow_origins:
            scheme, _, rest = origin.partition("://")
            if origin != "*" and (scheme not in ("https", "http") or not rest or "/" in rest):
                raise ValueError(f"corsAllowOrigins: {origin!r} is not an origin (scheme://host[:port]) or *")
        if "*" in self.allow_origins and len(self.allow_origins) > 1:
            raise ValueError("corsAllowOrigins: '*' stands alone")
        if not 0 <= self.max_age_seconds <= 86_400:
            raise ValueError("corsMaxAgeSeconds is between 0 and 86400")

    def environment(self) -> dict[str, str]:
        return {
            "CORS_ALLOW_ORIGINS": ",".join(self.allow_origins),
            "CORS_ALLOW_HEADERS": ",".join(self.allow_headers),
            "CORS_EXPOSE_HEADERS": ",".join(self.expose_headers),
            "CORS_MAX_AGE_SECONDS": str(self.max_age_seconds),
        }

    def static_response_headers(self) -> dict[str, str]:
        """The headers a MOCK integration response can carry: static values only (its response
        parameters cannot read the request's Origin), so nothing with several origins."""
        if len(self.allow_origins) != 1:
            return {}
        return self.gateway_response_headers()

    def gateway_response_headers(self) -> dict[str, str]:
        origin = f"'{self.allow_origins[0]}'" if len(self.allow_origins) == 1 else "method.request.header.origin"
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": f"'{','.join(self.expose_headers)}'",
            "Vary": "'Origin'",
        }


def method_not_allowed_integration(
    allow: str, cors: CorsSettings | None
) -> tuple[apigw.MockIntegration, list[apigw.MethodResponse]]:
    """A MOCK integration answering 405 with `Allow` and a problem document, for an `ANY` method
    on a resource whose other methods are explicit: API Gateway picks an explicit method over
    `ANY`, so only the methods the resource does not define reach it. No backend runs, so no
    authorizer, role or permission is involved.

    AWS semantics relied on: the one integration response has no selection pattern, so it is the
    default and answers whatever status the mock derives from the request (any body, any content
    type); `CONVERT_TO_TEXT` on the request and the response because with `*/*` binary media
    types a MOCK integration otherwise fails with 500 converting its payload; the single response
    template serves every Accept; static response parameters set `Allow` and `Content-Type`.
    infra/local/apigateway.py emulates exactly this subset (infra/local/api_model.py refuses a
    MOCK method using anything else)."""
    headers = {
        "Allow": f"'{allow}'",
        "Content-Type": f"'{PROBLEM}'",
        **(cors.static_response_headers() if cors else {}),
    }
    template = problem_template("method_not_allowed", "Method Not Allowed", method_not_allowed_detail(allow), "405")
    integration = apigw.MockIntegration(
        request_templates={"application/json": '{"statusCode": 405}'},
        passthrough_behavior=apigw.PassthroughBehavior.WHEN_NO_MATCH,
        content_handling=apigw.ContentHandling.CONVERT_TO_TEXT,
        integration_responses=[
            apigw.IntegrationResponse(
                status_code="405",
                content_handling=apigw.ContentHandling.CONVERT_TO_TEXT,
                response_parameters={f"method.response.header.{k}": v for k, v in headers.items()},
                response_templates={"application/json": template},
            )
        ],
    )
    responses = [
        apigw.MethodResponse(
            status_code="405", response_parameters={f"method.response.header.{k}": True for k in headers}
        )
    ]
    return integration, responses


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
        mtls: MtlsDomainSettings | None = None,
        cors: CorsSettings | None = None,
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
            # The proxy answers with whatever its upstreams send: binary bodies leave the
            # functions base64-encoded and API Gateway decodes them only for listed types.
            # `*/*` also means every request body reaches the functions base64-encoded
            # (they read `decoded_body`); see BINARY_MEDIA_TYPES.
            binary_media_types=list(BINARY_MEDIA_TYPES),
        )
        for response_type, status, code, title, detail in GATEWAY_PROBLEMS:
            self.api.add_gateway_response(
                f"Problem{code.title().replace('_', '')}",
                type=response_type,
                status_code=status,
                templates={PROBLEM: problem_template(code, title, detail, status, _EXTRA.get(code, ""))},
                response_headers={
                    "Content-Type": f"'{PROBLEM}'",
                    **_HEADERS.get(code, {}),
                    **(cors.gateway_response_headers() if cors else {}),
                },
            )
        self.request_validator = self.api.add_request_validator(
            "RequestValidator", validate_request_parameters=True, validate_request_body=True
        )
        # Which credential each endpoint group takes (README, "Credentials per endpoint group"):
        # one authorizer per method, as API Gateway allows.
        self.api_key_authorizer = apigw.RequestAuthorizer(
            self,
            "ApiKeyAuthorizer",
            handler=functions["api_key_authorizer"],
            # The source IP is part of the cache key: an allowlist decision must not be reused for
            # another address while the result is cached.
            identity_sources=[
                apigw.IdentitySource.header("x-api-key"),
                apigw.IdentitySource.context("identity.sourceIp"),
            ],
            results_cache_ttl=Duration.minutes(5),
        )
        self.jwt_authorizer = apigw.RequestAuthorizer(
            self,
            "JwtAuthorizer",
            handler=functions["jwt_authorizer"],
            identity_sources=[
                apigw.IdentitySource.header("Authorization"),
                apigw.IdentitySource.context("identity.sourceIp"),
            ],
            results_cache_ttl=Duration.minutes(5),
        )
        # Not cached: the certificate is not a documented identity source, and a revoked
        # certificate must be refused on its next request. One GetItem per request.
        self.mtls_authorizer = apigw.RequestAuthorizer(
            self,
            "MtlsAuthorizer",
            handler=functions["mtls_authorizer"],
            identity_sources=[],
            results_cache_ttl=Duration.seconds(0),
        )
        # The proxy's: any one credential or none (routes defined at run time decide), so it
        # cannot have identity sources, and is not cached (an anonymous Allow must never be
        # reused for a caller with a credential).
        self.gateway_authorizer = apigw.RequestAuthorizer(
            self,
            "GatewayAuthorizer",
            handler=functions["gateway_authorizer"],
            identity_sources=[],
            results_cache_ttl=Duration.seconds(0),
        )
        # The admin API's: an API key or a bearer token (OAuth2 client credentials). Both cannot
        # be identity sources (API Gateway would answer 401 unless both were sent), and without
        # identity sources the cache must be off: each admin request reads the credential's
        # current state, so a suspension or a removed scope applies to the next request.
        self.admin_authorizer = apigw.RequestAuthorizer(
            self,
            "AdminAuthorizer",
            handler=functions["admin_authorizer"],
            identity_sources=[],
            results_cache_ttl=Duration.seconds(0),
        )
        # One invoke permission per function for the whole API, not one per method: Lambda's
        # resource policy is capped at 20 KB, which per-method statements (stage and test-invoke
        # for each of dozens of methods) overflow at deploy time. A template test guards it.
        integrations = {
            name: apigw.LambdaIntegration(functions[name], proxy=True, scope_permission_to_method=False)
            for name in ("management", "proxy", "oauth", "health", "webhooks")
        }
        # Which function serves each resource (one per resource: its preflight goes there too).
        self.served_by: dict[str, str] = {}
        self.authorized_methods: list[apigw.Method] = []

        def method(
            resource: apigw.IResource,
            http_method: str,
            function: str,
            authorizer: apigw.IAuthorizer | None = None,
        ) -> apigw.Method:
            served = self.served_by.setdefault(resource.path, function)
            if served != function:
                raise ValueError(f"{resource.path} is served by {served}; one function per resource")
            if authorizer is None:
                return resource.add_method(
                    http_method,
                    integrations[function],
                    authorization_type=apigw.AuthorizationType.NONE,
                    request_validator=self.request_validator,
                )
            added = resource.add_method(
                http_method,
                integrations[function],
                authorizer=authorizer,
                authorization_type=apigw.AuthorizationType.CUSTOM,
                request_validator=self.request_validator,
            )
            self.authorized_methods.append(added)
            return added

        def authorized(
            resource: apigw.IResource, http_method: str, authorizer: apigw.IAuthorizer | None = None
        ) -> None:
            method(resource, http_method, "management", authorizer or self.admin_authorizer)

        v1 = self.api.root.add_resource("api").add_resource("v1")
        gateway = v1.add_resource("gateway")
        self.health_method = method(gateway.add_resource("health"), "GET", "health")
        docs = v1.add_resource("docs")
        self.docs_method = method(docs, "GET", "management")
        # OAuth 2.0: the token endpoint authenticates the client itself; discovery is public.
        method(self.api.root.add_resource("oauth2").add_resource("token"), "POST", "oauth")
        well_known = self.api.root.add_resource(".well-known")
        for document in ("jwks.json", "openid-configuration"):
            method(well_known.add_resource(document), "GET", "oauth")

        whoami = v1.add_resource("whoami")
        authorized(whoami, "GET", self.api_key_authorizer)
        authorized(whoami.add_resource("token"), "GET", self.jwt_authorizer)
        authorized(whoami.add_resource("certificate"), "GET", self.mtls_authorizer)
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
        issuers = gateway.add_resource("issuers")
        authorized(issuers, "GET")
        authorized(issuers, "POST")
        authorized(issuers.add_resource("{proxy+}"), "ANY")
        gateway_routes = gateway.add_resource("routes")
        authorized(gateway_routes, "GET")
        authorized(gateway_routes, "POST")
        authorized(gateway_routes.add_resource("{proxy+}"), "ANY")
        gateways = v1.add_resource("gateways")
        authorized(gateways, "GET")
        authorized(gateways, "POST")
        authorized(gateways.add_resource("{proxy+}"), "ANY")
        # Webhooks and events: the webhooks function (any client; it checks scopes and ownership).
        webhooks = v1.add_resource("webhooks")
        method(webhooks, "GET", "webhooks", self.admin_authorizer)
        method(webhooks, "POST", "webhooks", self.admin_authorizer)
        method(webhooks.add_resource("{proxy+}"), "ANY", "webhooks", self.admin_authorizer)
        events = v1.add_resource("events")
        method(events.add_resource("types"), "GET", "webhooks", self.admin_authorizer)
        method(events.add_resource("trigger"), "POST", "webhooks", self.admin_authorizer)
        method(docs.add_resource("events"), "GET", "webhooks", self.admin_authorizer)
        # The data plane: the dynamic proxy and batches of proxied requests, any credential,
        # checked per route.
        method(v1.add_resource("batch"), "POST", "proxy", self.gateway_authorizer)
        proxied = self.api.root.add_resource("gw")
        method(proxied, "ANY", "proxy", self.gateway_authorizer)
        method(proxied.add_resource("{proxy+}"), "ANY", "proxy", self.gateway_authorizer)

        if cors is not None:
            # Preflight for every resource that has methods, answered by the function that serves
            # the resource (no credential: browsers send none on a preflight).
            for resource in self._resources_with_methods():
                resource.add_method(
                    "OPTIONS",
                    integrations[self.served_by[resource.path]],
                    authorization_type=apigw.AuthorizationType.NONE,
                )
        # Every other standard method on a resource with explicit methods: 405 with the methods it
        # serves (its preflight included). Resources served by ANY (greedy admin resources, /gw)
        # get every method already; their function answers 405 itself where a path serves others.
        self.method_not_allowed: dict[str, str] = {}
        for resource in self._resources_with_methods():
            served = [c.http_method for c in resource.node.children if isinstance(c, apigw.Method)]
            if "ANY" in served:
                continue
            allow = allow_header(served)
            integration, method_responses = method_not_allowed_integration(allow, cors)
            resource.add_method(
                "ANY",
                integration,
                authorization_type=apigw.AuthorizationType.NONE,
                method_responses=method_responses,
            )
            self.method_not_allowed[resource.path] = allow
        self.mtls_domain: apigw.DomainName | None = None
        if mtls is not None:
            bucket, key = mtls.bucket_and_key
            self.mtls_domain = apigw.DomainName(
                self,
                "MtlsDomain",
                domain_name=mtls.domain_name,
                certificate=acm.Certificate.from_certificate_arn(self, "MtlsCertificate", mtls.certificate_arn),
                endpoint_type=apigw.EndpointType.REGIONAL,
                security_policy=apigw.SecurityPolicy.TLS_1_2,
                mtls=apigw.MTLSConfig(
                    bucket=s3.Bucket.from_bucket_name(self, "Truststore", bucket),
                    key=key,
                    version=mtls.truststore_version,
                ),
            )
            self.mtls_domain.add_base_path_mapping(self.api, stage=self.api.deployment_stage)

    def _resources_with_methods(self) -> list[apigw.Resource]:
        found = []
        for node in self.api.root.node.find_all():
            if isinstance(node, apigw.Resource) and any(isinstance(c, apigw.Method) for c in node.node.children):
                found.append(node)
        return found
