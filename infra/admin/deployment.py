"""Where a deployed stack keeps what the admin CLI needs: its table (the `TableName` output), its
REST API and stage (for flushing the authorizer cache), read with CloudFormation as deployed,
on AWS or on the local twin's moto."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_STACK = "FinanceGateway"


class DeploymentError(Exception):
    """The stack or its table cannot be found; the message says what to do."""


@dataclass(frozen=True)
class Deployment:
    table: str
    rest_api_id: str | None
    stage: str | None
    environment: str  # what new keys are marked with: gk_<environment>_...


class Aws:
    """boto3 clients for one region, optionally against another endpoint (the local twin's moto)."""

    def __init__(self, region: str | None, endpoint_url: str | None) -> None:
        self.endpoint_url = endpoint_url
        if endpoint_url:
            # moto accepts any credentials; real ones from the environment are used when present.
            session = boto3.session.Session(region_name=region or "us-east-1")
            if session.get_credentials() is None:
                session = boto3.session.Session(
                    region_name=region or "us-east-1",
                    aws_access_key_id="local",
                    aws_secret_access_key="local",  # noqa: S106 - moto accepts any; not a secret
                )
        else:
            session = boto3.session.Session(region_name=region)
        self.session = session

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def caller(self) -> str | None:
        """The AWS identity running the tool (for the audit trail), when STS answers."""
        try:
            return str(self.client("sts").get_caller_identity()["Arn"])
        except (BotoCoreError, ClientError):
            return None


def _stage_environment(stage: str | None) -> str:
    # As the keys API marks keys (functions/routes/api/keys.py): live in prod/live, else test.
    return "live" if stage in (None, "prod", "live") else "test"


def _api_from_url(url: str) -> tuple[str | None, str | None]:
    """`https://<api id>.execute-api.<region>.<suffix>/<stage>/` -> (api id, stage)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    api_id = host.split(".", 1)[0] if ".execute-api." in host else None
    stage = parts.path.strip("/").split("/", 1)[0] or None
    return api_id, stage


def _template_stage(cloudformation: Any, stack: str) -> str | None:
    """The stage name as the template writes it (the local twin's moto creates no stage resource)."""
    try:
        template = cloudformation.get_template(StackName=stack)["TemplateBody"]
    except (BotoCoreError, ClientError):
        return None
    if isinstance(template, str):
        try:
            template = json.loads(template)
        except ValueError:
            return None
    names = [
        resource.get("Properties", {}).get("StageName")
        for resource in template.get("Resources", {}).values()
        if resource.get("Type") == "AWS::ApiGateway::Stage"
    ]
    return names[0] if len(names) == 1 and isinstance(names[0], str) else None


def resolve(aws: Aws, stack: str, table: str | None) -> Deployment:
    """The table from the stack's `TableName` output (or `table` as given) and, best effort, the
    REST API id and stage. With `table` given, a stack that cannot be read is no error."""
    cloudformation = aws.client("cloudformation")
    outputs: dict[str, str] = {}
    rest_apis: list[str] = []
    stages: list[str] = []
    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in described.get("Outputs", [])}
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
            for summary in page["StackResourceSummaries"]:
                if summary.get("ResourceType") == "AWS::ApiGateway::RestApi" and summary.get("PhysicalResourceId"):
                    rest_apis.append(summary["PhysicalResourceId"])
                if summary.get("ResourceType") == "AWS::ApiGateway::Stage" and summary.get("PhysicalResourceId"):
                    stages.append(summary["PhysicalResourceId"])
    except (BotoCoreError, ClientError) as error:
        if table is None:
            raise DeploymentError(
                f"cannot read stack {stack}: {error} (give --stack and --region of the deployment, "
                "or --table; locally, --endpoint-url of the runtime's moto)"
            ) from error
    table = table or outputs.get("TableName")
    if not table:
        raise DeploymentError(f"stack {stack} has no TableName output; give --table")
    url_api, url_stage = _api_from_url(outputs.get("ApiUrl", ""))
    if url_api in rest_apis or (url_api and not rest_apis):
        rest_api_id: str | None = url_api
    else:
        rest_api_id = rest_apis[0] if len(rest_apis) == 1 else None
    stage = stages[0] if len(stages) == 1 else url_stage if url_stage not in (None, "None") else None
    if stage is None and rest_api_id is not None:
        stage = _template_stage(cloudformation, stack)
    environment = "local" if aws.endpoint_url else _stage_environment(stage)
    return Deployment(table=table, rest_api_id=rest_api_id, stage=stage, environment=environment)


def flush_authorizer_cache(aws: Aws, deployment: Deployment) -> str | None:
    """Flush the stage's authorizer cache (best effort); None when done, else why not."""
    if not deployment.rest_api_id or not deployment.stage:
        return "the stack's REST API id or stage is unknown"
    try:
        aws.client("apigateway").flush_stage_authorizers_cache(
            restApiId=deployment.rest_api_id, stageName=deployment.stage
        )
    except (BotoCoreError, ClientError) as error:
        return str(error)
    return None
