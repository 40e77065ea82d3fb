"""The Lambda layers (dependencies, shared code) and one function per job (infra/config.py
LAMBDA_FUNCTIONS; a functions/* folder is one code asset and may hold several functions).

Assets come from build/ (staged by infra/build.py without Docker). Each function gets its own
role, empty but for its log group and X-Ray (its grants are added by the construct of its job:
authorizers, data_plane, management, oauth, health), its own log group with retention, X-Ray
tracing and the shared environment.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import (
    LAMBDA_FUNCTIONS,
    core_layer_asset_dir,
    deps_layer_asset_dir,
    function_asset_dir,
    handler_path,
)

RUNTIME = lambda_.Runtime.PYTHON_3_14

_SETTINGS = {
    "api_key_authorizer": {"memory": 512, "timeout": 10},
    "jwt_authorizer": {"memory": 512, "timeout": 10},
    "mtls_authorizer": {"memory": 512, "timeout": 10},
    "gateway_authorizer": {"memory": 512, "timeout": 10},
    "admin_authorizer": {"memory": 512, "timeout": 10},
    "proxy": {"memory": 1024, "timeout": 29},
    "management": {"memory": 1024, "timeout": 29},
    "oauth": {"memory": 512, "timeout": 10},
    "health": {"memory": 512, "timeout": 29},
    "integrations": {"memory": 1024, "timeout": 60},
    "webhooks": {"memory": 512, "timeout": 29},
    "webhook_fanout": {"memory": 512, "timeout": 60},
    # A batch's attempts run side by side, each within its endpoint's timeout (at most 30 s).
    "webhook_delivery": {"memory": 512, "timeout": 60},
    "marketdata": {"memory": 1024, "timeout": 29},
}


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        log_key: kms.IKey,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        timeouts: dict[str, int] | None = None,
    ) -> None:
        """`timeouts`: seconds per function name, over the defaults below (the webhook worker's
        is a setting: the chaos tests run it short, with a queue visibility to match)."""
        super().__init__(scope, construct_id)
        self.deps_layer = lambda_.LayerVersion(
            self,
            "DependenciesLayer",
            code=lambda_.Code.from_asset(str(deps_layer_asset_dir())),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="Pinned third-party packages (requirements/lambda.txt) built for the Lambda runtime",
        )
        self.core_layer = lambda_.LayerVersion(
            self,
            "CoreLayer",
            code=lambda_.Code.from_asset(str(core_layer_asset_dir())),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="gateway_core: errors, settings, AWS clients and HTTP glue shared by every function",
        )
        self.functions: dict[str, lambda_.Function] = {}
        for name, folder, module in LAMBDA_FUNCTIONS:
            construct_name = name.title().replace("_", "")
            log_group = logs.LogGroup(
                self,
                f"{construct_name}Logs",
                retention=log_retention,
                encryption_key=log_key,
                removal_policy=removal_policy,
            )
            role = iam.Role(
                self,
                f"{construct_name}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"Execution role of the {name} function",
            )
            log_group.grant_write(role)
            settings = _SETTINGS[name]
            function = lambda_.Function(
                self,
                f"{construct_name}Function",
                runtime=RUNTIME,
                architecture=lambda_.Architecture.X86_64,
                handler=handler_path(folder, module),
                code=lambda_.Code.from_asset(str(function_asset_dir(folder))),
                layers=[self.deps_layer, self.core_layer],
                role=role,
                memory_size=settings["memory"],
                timeout=Duration.seconds((timeouts or {}).get(name, settings["timeout"])),
                tracing=lambda_.Tracing.ACTIVE,
                log_group=log_group,
                environment={
                    "STAGE": stage,
                    "POWERTOOLS_SERVICE_NAME": f"gateway-{name.replace('_', '-')}",
                    "POWERTOOLS_LOG_LEVEL": "INFO",
                },
                description=f"Gateway {name} function",
            )
            self.functions[name] = function

    def add_environment(self, key: str, value: str) -> None:
        for function in self.functions.values():
            function.add_environment(key, value)
