"""An in-process moto server with the synthesized cloud assembly deployed through CloudFormation.

What `cdk deploy` does against AWS happens here against moto: the bootstrap bucket and version
parameter exist, file assets are zipped and uploaded to the bucket named in the asset manifest,
and the template is created as a stack. moto's CloudFormation skips resource types it does not
know (gateway responses, authorizers, stages, alarms, schedule groups...); the runtime reads
those from the template and resolves their references against the deployed stack.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3

from infra.local.iam_gate import IamGate

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_VERSION = "30"

log = logging.getLogger("local.moto")


def configure_process_for_moto(port: int) -> None:
    """Credentials and endpoint every boto3 client in this process (functions included) uses."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ["AWS_REGION"] = REGION
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    # moto's Step Functions interpreter calls Lambda through the server on this port.
    os.environ["MOTO_PORT"] = str(port)


def function_aws_environment(port: int) -> dict[str, str]:
    """What a local function's process needs to reach moto as a Lambda reaches AWS: the region,
    credentials (moto accepts any) and the endpoint override."""
    return {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_SESSION_TOKEN": "local",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }


def start_moto() -> tuple[Any, int]:
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    default_user_config["lambda"]["use_docker"] = False  # code runs in-process instead (lambdas.py)
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    _patch_moto_gaps()
    _bound_stream_iterators()
    _keep_streams_through_failed_transactions()
    serialize_dynamodb_writes()
    for noisy in ("werkzeug", "moto", "botocore.configprovider", "botocore.credentials"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # moto warns once per resource type its CloudFormation skips; the runtime handles those.
    warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    # Requests are served by the app the WSGI server holds; the IAM gate goes in front of it.
    wsgi = server._server
    assert wsgi is not None
    server.iam_gate = wsgi.app = IamGate(wsgi.app, ACCOUNT_ID, REGION, _partition_key)  # type: ignore[attr-defined]
    _, port = server.get_host_and_port()
    configure_process_for_moto(port)
    return server, port


def _partition_key(table_name: str) -> str | None:
    """The partition key attribute of a table in moto's DynamoDB (None when there is no such table)."""
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[ACCOUNT_ID][REGION].tables.get(table_name)
    return str(table.hash_key_attr) if table is not None else None


def serialize_dynamodb_writes() -> None:
    """DynamoDB applies a conditional write atomically; moto checks the condition and then writes
    without a lock, so two threads can both pass a condition only one of them should. Every write
    path of moto's DynamoDB backend takes one process-wide lock (reentrant: a transaction calls
    the single-item writes)."""
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend.update_item, "_gateway_serialized", False):
        return
    lock = threading.RLock()

    def serialized(method: Callable[..., Any]) -> Callable[..., Any]:
        def locked(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        locked._gateway_serialized = True  # type: ignore[attr-defined]
        return locked

    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
        setattr(DynamoDBBackend, name, serialized(getattr(DynamoDBBackend, name)))


# Shard iterators moto keeps (it never forgets one: each GetRecords makes the next); AWS lets an
# iterator expire after 15 minutes, and the stream pollers use each one once or twice.
MAX_SHARD_ITERATORS = 1000


def _bound_stream_iterators() -> None:
    """moto stores every shard iterator it hands out, one per GetRecords (about 25 MB an hour
    for one idle stream poller): keep the newest MAX_SHARD_ITERATORS, as AWS expires them."""
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    if getattr(DynamoDBStreamsBackend.get_records, "_gateway_patched", False):
        return
    get_records = DynamoDBStreamsBackend.get_records

    def bounded(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        result = get_records(self, iterator_arn, limit)
        excess = len(self.shard_iterators) - MAX_SHARD_ITERATORS
        for arn in list(itertools.islice(self.shard_iterators, max(excess, 0))):
            del self.shard_iterators[arn]  # the oldest first: dicts keep insertion order
        return result

    bounded._gateway_patched = True  # type: ignore[attr-defined]
    DynamoDBStreamsBackend.get_records = bounded  # type: ignore[method-assign]


def _keep_streams_through_failed_transactions() -> None:
    """moto backs a transaction up by deep-copying its tables, and puts the copies in place when
    it fails. The copy took the table's stream shard with it, so the stream pollers' iterators
    kept reading the old shard, which no write reaches any more: the webhook fan-out went silent
    after the first refused transaction (a duplicate name, a stale version). Here the backup
    shares the stream, and a failed transaction takes back the records it appended, as DynamoDB
    writes none for a transaction that did not commit. (Applied before state.py's write lock
    wraps the method, so the truncation happens under that lock.)"""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard

    if getattr(DynamoDBBackend.transact_write_items, "_gateway_patched", False):
        return
    StreamShard.__deepcopy__ = lambda self, memo: self  # type: ignore[attr-defined]
    transact = DynamoDBBackend.transact_write_items

    def keeping_streams(self: Any, transact_items: Any) -> None:
        lengths = {name: len(t.stream_shard.items) for name, t in self.tables.items() if t.stream_shard}
        try:
            transact(self, transact_items)
        except Exception:
            for name, length in lengths.items():
                table = self.tables.get(name)
                if table is not None and table.stream_shard is not None:
                    del table.stream_shard.items[length:]
            raise

    keeping_streams._gateway_patched = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = keeping_streams  # type: ignore[method-assign]


def _patch_moto_gaps() -> None:
    """Three CloudFormation gaps of moto, fixed where they are:
    * `Ref` of an AWS::Lambda::LayerVersion is its version ARN in AWS; moto has no physical id
      for layer versions, so functions could not reference them;
    * moto creates every AWS::KMS::Key as a symmetric encryption key, ignoring KeySpec and
      KeyUsage, so an asymmetric signing key could not sign;
    * moto reads IntegrationHttpMethod and Uri of every AWS::ApiGateway::Method, which a MOCK
      integration has neither of in AWS (the template's 405 methods), and fails the stack."""
    from moto.apigateway.models import Method as ApiMethod
    from moto.awslambda.models import LayerVersion
    from moto.kms.models import Key, kms_backends

    if not getattr(ApiMethod.create_from_cloudformation_json, "_gateway_patched", False):
        create_method = ApiMethod.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

        def create_mock_method(
            cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any
        ) -> Any:
            properties = cloudformation_json["Properties"]
            integration = properties.get("Integration") or {}
            if integration.get("Type") == "MOCK":
                # moto's put_integration takes a MOCK without either, as API Gateway does.
                integration = {"IntegrationHttpMethod": None, "Uri": None, **integration}
                cloudformation_json = {**cloudformation_json, "Properties": {**properties, "Integration": integration}}
            return create_method(cls, resource_name, cloudformation_json, *args, **kwargs)

        create_mock_method._gateway_patched = True  # type: ignore[attr-defined]
        ApiMethod.create_from_cloudformation_json = classmethod(create_mock_method)  # type: ignore[assignment,method-assign]

    if not isinstance(getattr(LayerVersion, "physical_resource_id", None), property):
        LayerVersion.physical_resource_id = property(lambda self: self.arn)  # type: ignore[attr-defined]

    if getattr(Key.create_from_cloudformation_json, "_gateway_patched", False):
        return

    def create_key(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json["Properties"]
        key = kms_backends[account_id][region_name].create_key(
            policy=properties["KeyPolicy"],
            key_usage=properties.get("KeyUsage", "ENCRYPT_DECRYPT"),
            key_spec=properties.get("KeySpec", "SYMMETRIC_DEFAULT"),
            description=properties.get("Description"),
            tags=properties.get("Tags", []),
        )
        key.key_rotation_status = properties.get("EnableKeyRotation", False)
        key.enabled = properties.get("Enabled", True)
        return key

    create_key._gateway_patched = True  # type: ignore[attr-defined]
    Key.create_from_cloudformation_json = classmethod(create_key)  # type: ignore[assignment,method-assign]


@dataclass
class DeployedStack:
    name: str
    template: dict[str, Any]
    physical_ids: dict[str, str]
    outputs: dict[str, str]

    def physical_id(self, logical_id: str) -> str:
        return self.physical_ids[logical_id]


def _zip_dir(source: Path) -> bytes:
    buffer = io.BytesIO()
    # Stored, not deflated: the bytes never leave this machine and zipping 60 MB must be quick.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(source))
    return buffer.getvalue()


def _substitute(value: str) -> str:
    return (
        value.replace("${AWS::AccountId}", ACCOUNT_ID)
        .replace("${AWS::Region}", REGION)
        .replace("${AWS::Partition}", "aws")
    )


def bootstrap() -> str:
    """What `cdk bootstrap` leaves behind that a deploy reads: the asset bucket and version."""
    bucket = f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{ACCOUNT_ID}-{REGION}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    boto3.client("ssm").put_parameter(
        Name=f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version", Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True
    )
    return bucket


def publish_assets(assembly_dir: Path, stack_name: str) -> int:
    manifest = json.loads((assembly_dir / f"{stack_name}.assets.json").read_text())
    s3 = boto3.client("s3")
    count = 0
    for asset in manifest.get("files", {}).values():
        source = assembly_dir / asset["source"]["path"]
        body = _zip_dir(source) if asset["source"].get("packaging") == "zip" else source.read_bytes()
        for destination in asset["destinations"].values():
            s3.put_object(Bucket=_substitute(destination["bucketName"]), Key=destination["objectKey"], Body=body)
            count += 1
    return count


def deploy_stack(assembly_dir: Path, stack_name: str) -> DeployedStack:
    template_text = (assembly_dir / f"{stack_name}.template.json").read_text()
    cloudformation = boto3.client("cloudformation")
    with warnings.catch_warnings():
        # moto warns once per resource type it skips; the runtime handles those types itself.
        warnings.simplefilter("ignore")
        cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=template_text,
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"stack {stack_name} ended in {stack['StackStatus']}: {stack.get('StackStatusReason')}")
    physical: dict[str, str] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for summary in page["StackResourceSummaries"]:
            if summary.get("LogicalResourceId") and summary.get("PhysicalResourceId"):
                physical[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    return DeployedStack(stack_name, json.loads(template_text), physical, outputs)


def apply_function_layers(stack: DeployedStack) -> None:
    """moto's CloudFormation drops a function's `Layers`; set them through the Lambda API."""
    client = boto3.client("lambda")
    for logical, resource in stack.template.get("Resources", {}).items():
        if resource["Type"] == "AWS::Lambda::Function" and resource.get("Properties", {}).get("Layers"):
            layers = resolve_properties(stack.name, logical)["Layers"]
            client.update_function_configuration(FunctionName=stack.physical_id(logical), Layers=layers)


def _state_machine_definition(stack: DeployedStack, logical_id: str) -> str:
    """The definition CloudFormation would run: inline or from S3, with substitutions applied."""
    props = resolve_properties(stack.name, logical_id)
    if props.get("DefinitionString"):
        definition = str(props["DefinitionString"])
    elif props.get("Definition"):
        definition = json.dumps(props["Definition"])
    else:
        location = props["DefinitionS3Location"]
        body = boto3.client("s3").get_object(Bucket=location["Bucket"], Key=location["Key"])["Body"]
        definition = body.read().decode()
    for name, value in (props.get("DefinitionSubstitutions") or {}).items():
        definition = definition.replace("${" + name + "}", str(value))
    return definition


def move_state_machines_to_interpreter(stack: DeployedStack) -> int:
    """moto's CloudFormation creates state machines in its plain Step Functions backend (reading
    only `DefinitionString`), while its API serves the interpreting backend once
    `execute_state_machine` is on. Re-create each one there under the same name, hence the same
    ARN, with the definition CloudFormation would have used (S3 location and substitutions too)."""
    from moto.stepfunctions.models import stepfunctions_backends

    plain = {m.arn: m for m in stepfunctions_backends[ACCOUNT_ID][REGION].state_machines}
    client = boto3.client("stepfunctions")
    moved = 0
    for logical, resource in stack.template.get("Resources", {}).items():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        machine = plain[stack.physical_id(logical)]
        client.create_state_machine(
            name=machine.name,
            definition=_state_machine_definition(stack, logical),
            roleArn=machine.roleArn,
            type=resource["Properties"].get("StateMachineType", "STANDARD"),
        )
        moved += 1
    return moved


def resolve_properties(stack_name: str, logical_id: str) -> dict[str, Any]:
    """Properties of a template resource with Ref/GetAtt/Sub/Join resolved against the deployed
    stack, for the resource types moto's CloudFormation skipped."""
    from moto.cloudformation.models import cloudformation_backends
    from moto.cloudformation.parsing import clean_json

    backend = cloudformation_backends[ACCOUNT_ID][REGION]
    stack = next(s for s in backend.stacks.values() if s.name == stack_name and s.status == "CREATE_COMPLETE")
    resource_json = stack.template_dict["Resources"][logical_id]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(clean_json(resource_json.get("Properties", {}), stack.resource_map))


def role_statements(stack: DeployedStack) -> dict[str, list[dict[str, Any]]]:
    """Identity-policy statements of each role of the stack, by role name, with every reference
    resolved to the deployed resource (AWS::IAM::Policy resources and roles' inline policies)."""
    resources = stack.template.get("Resources", {})
    by_role: dict[str, list[dict[str, Any]]] = {}

    def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
        found = document.get("Statement", [])
        return [found] if isinstance(found, dict) else list(found)

    for logical, resource in resources.items():
        if resource["Type"] == "AWS::IAM::Role" and stack.physical_ids.get(logical):
            props = resolve_properties(stack.name, logical)
            by_role.setdefault(stack.physical_ids[logical], []).extend(
                s for policy in props.get("Policies", []) for s in statements(policy["PolicyDocument"])
            )
    for logical, resource in resources.items():
        if resource["Type"] == "AWS::IAM::Policy":
            props = resolve_properties(stack.name, logical)
            for role in props.get("Roles", []):
                by_role.setdefault(str(role), []).extend(statements(props["PolicyDocument"]))
    return by_role


def serve_authorizer_cache_flush(flush: Callable[[str, str], int]) -> None:
    """moto has no FlushStageAuthorizersCache (DELETE /restapis/{id}/stages/{stage}/cache/authorizers);
    route it to the local data plane's authorizer cache, which is the cache that matters here."""
    from moto.apigateway import urls

    def handler(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(full_url).path.strip("/").split("/")  # restapis/{id}/stages/{stage}/cache/authorizers
        if request.method != "DELETE":
            return 405, {}, ""
        flushed = flush(parts[1], parts[3])
        log.info("flushed %d cached authorizer results for %s/%s", flushed, parts[1], parts[3])
        return 202, {}, ""

    urls.url_paths["{0}/restapis/(?P<function_id>[^/]+)/stages/(?P<stage_name>[^/]+)/cache/authorizers$"] = handler


def lambda_backend() -> Any:
    from moto.awslambda.utils import get_backend

    return get_backend(ACCOUNT_ID, REGION)


def detach_moto_sqs_invocation() -> None:
    """moto invokes SQS-mapped functions synchronously inside SendMessage, deleting the batch on
    any answer; the runtime polls like Lambda's poller instead (sqs_poller.py)."""
    from moto.sqs.models import sqs_backends

    for queue in sqs_backends[ACCOUNT_ID][REGION].queues.values():
        queue.lambda_event_source_mappings.clear()


def detach_moto_stream_invocation() -> None:
    """moto invokes a stream-mapped function itself inside every table write (and then drops the
    shard's records); the runtime polls the stream like Lambda's poller instead (stream_poller.py)."""
    from moto.dynamodb.models import dynamodb_backends

    for table in dynamodb_backends[ACCOUNT_ID][REGION].tables.values():
        table.lambda_event_source_mappings.clear()
