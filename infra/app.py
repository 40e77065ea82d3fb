"""CDK app entry (cdk.json runs `python -m infra.app`).

Context: `stage` (default "prod"), `retainData` (default true: tables, keys and logs survive a
stack deletion), `alarmEmail` (optional), `healthDeadlineMs` (default 80: how long the health
check waits for its probes before it reports one as timed out), `issuer` (the OAuth2 issuer URL;
default the stage's execute-api URL; set it to the custom domain when there is one), `tokenAudience`
(default "finance-gateway"), `denylistCacheSeconds` (default 0: how long an authorizer
container may reuse what it read of the global IP denylist, client states and issuer
configurations; above 0, an admin change can take that long plus the authorizer result TTL to
apply, because a stale answer given right after a cache flush is cached by API Gateway again), `tokenSigningKeyGeneration` (default 1: bump it to rotate the token signing key; the
previous key stays in the JWKS), and, for an mTLS custom domain, `mtlsDomainName`,
`mtlsCertificateArn`, `mtlsTruststoreUri` (s3://bucket/key) and optional `mtlsTruststoreVersion`;
for browsers, `corsAllowOrigins` (comma-separated origins, or `*`; none by default: no browser
access), `corsAllowHeaders`, `corsExposeHeaders`, `corsMaxAgeSeconds` (default 600).
cdk-nag's AwsSolutions pack runs on every synth.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.constructs.api import CorsSettings, MtlsDomainSettings
from infra.nag import acknowledge_findings
from infra.stack import GatewayStack, WebhookSettings

STACK_NAME = "FinanceGateway"


def build_app(outdir: str | None = None, context: dict[str, object] | None = None) -> cdk.App:
    app = cdk.App(outdir=outdir, context=context) if outdir else cdk.App(context=context)
    stage = str(app.node.try_get_context("stage") or "prod")
    retain = str(app.node.try_get_context("retainData") or "true").lower() != "false"
    alarm_email = app.node.try_get_context("alarmEmail")
    health_deadline_ms = int(str(app.node.try_get_context("healthDeadlineMs") or "80"))
    issuer = app.node.try_get_context("issuer")
    denylist_cache_seconds = int(str(app.node.try_get_context("denylistCacheSeconds") or "0"))
    audience = str(app.node.try_get_context("tokenAudience") or "finance-gateway")
    generation = int(str(app.node.try_get_context("tokenSigningKeyGeneration") or "1"))
    mtls = _mtls_settings(app)
    cors = _cors_settings(app)
    upstream_allow = _list(app, "upstreamAllowCidrs") or ()
    global_rps = int(str(app.node.try_get_context("globalRateLimitPerSecond") or "0"))
    webhooks = WebhookSettings(
        time_scale=float(str(app.node.try_get_context("webhookTimeScale") or "1")),
        rotation_grace_seconds=_optional_int(app, "webhookRotationGraceSeconds"),
        disable_after_seconds=_optional_int(app, "webhookDisableAfterSeconds"),
        worker_timeout_seconds=_optional_int(app, "webhookWorkerTimeoutSeconds") or 60,
        queue_visibility_seconds=_optional_int(app, "webhookQueueVisibilitySeconds"),
    )
    stack = GatewayStack(
        app,
        STACK_NAME,
        stage=stage,
        retain_data=retain,
        alarm_email=str(alarm_email) if alarm_email else None,
        health_deadline_ms=health_deadline_ms,
        denylist_cache_seconds=denylist_cache_seconds,
        issuer=str(issuer) if issuer else None,
        token_audience=audience,
        signing_key_generation=generation,
        mtls=mtls,
        cors=cors,
        upstream_allow_cidrs=upstream_allow,
        global_rate_limit_per_second=global_rps,
        webhooks=webhooks,
        description="Finance integration gateway: API Gateway, Lambda, DynamoDB, SQS, Step Functions, Scheduler",
    )
    acknowledge_findings(stack, stage)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(verbose=True))
    return app


def _optional_int(app: cdk.App, name: str) -> int | None:
    value = app.node.try_get_context(name)
    return None if value is None or value == "" else int(str(value))


def _list(app: cdk.App, name: str) -> tuple[str, ...] | None:
    value = app.node.try_get_context(name)
    if value is None:
        return None
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(v).strip() for v in items if str(v).strip())


def _cors_settings(app: cdk.App) -> CorsSettings | None:
    origins = _list(app, "corsAllowOrigins")
    if not origins:
        return None
    options: dict[str, Any] = {}
    for context_name, field in (("corsAllowHeaders", "allow_headers"), ("corsExposeHeaders", "expose_headers")):
        values = _list(app, context_name)
        if values is not None:
            options[field] = values
    max_age = app.node.try_get_context("corsMaxAgeSeconds")
    if max_age is not None:
        options["max_age_seconds"] = int(str(max_age))
    return CorsSettings(allow_origins=origins, **options)


def _mtls_settings(app: cdk.App) -> MtlsDomainSettings | None:
    names = ("mtlsDomainName", "mtlsCertificateArn", "mtlsTruststoreUri")
    values = [app.node.try_get_context(n) for n in names]
    if not any(values):
        return None
    if not all(values):
        missing = [n for n, v in zip(names, values, strict=True) if not v]
        raise ValueError(f"an mTLS custom domain needs {', '.join(missing)} as well")
    version = app.node.try_get_context("mtlsTruststoreVersion")
    return MtlsDomainSettings(
        domain_name=str(values[0]),
        certificate_arn=str(values[1]),
        truststore_uri=str(values[2]),
        truststore_version=str(version) if version else None,
    )


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
