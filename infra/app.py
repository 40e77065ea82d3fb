"""CDK app entry (cdk.json runs `python -m infra.app`).

Context: `stage` (default "prod"), `retainData` (default true: tables, keys and logs survive a
stack deletion), `alarmEmail` (optional), `healthDeadlineMs` (default 80: how long the health
check waits for its probes before it reports one as timed out), `issuer` (the OAuth2 issuer URL;
default the stage's execute-api URL; set it to the custom domain when there is one), `tokenAudience`
(default "finance-gateway"), `denylistCacheSeconds` (default 30: how long an authorizer
container keeps the global IP denylist before reading it again). cdk-nag's AwsSolutions pack runs on every synth.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.nag import acknowledge_findings
from infra.stack import GatewayStack

STACK_NAME = "FinanceGateway"


def build_app(outdir: str | None = None, context: dict[str, object] | None = None) -> cdk.App:
    app = cdk.App(outdir=outdir, context=context) if outdir else cdk.App(context=context)
    stage = str(app.node.try_get_context("stage") or "prod")
    retain = str(app.node.try_get_context("retainData") or "true").lower() != "false"
    alarm_email = app.node.try_get_context("alarmEmail")
    health_deadline_ms = int(str(app.node.try_get_context("healthDeadlineMs") or "80"))
    issuer = app.node.try_get_context("issuer")
    denylist_cache_seconds = int(str(app.node.try_get_context("denylistCacheSeconds") or "30"))
    audience = str(app.node.try_get_context("tokenAudience") or "finance-gateway")
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
        description="Finance integration gateway: API Gateway, Lambda, DynamoDB, SQS, Step Functions, Scheduler",
    )
    acknowledge_findings(stack, stage)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(verbose=True))
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
