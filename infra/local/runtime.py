"""Start everything: synthesize, deploy into moto, and serve the stack like AWS would."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from infra.local import moto_host
from infra.local.api_model import load_api
from infra.local.apigateway import RestApiDataPlane
from infra.local.lambdas import LambdaRuntime, hook_moto_invoke
from infra.local.pki import ensure_pki
from infra.local.schedules import Scheduler, VirtualClock
from infra.local.server import GatewayHttpServer, MtlsGatewayHttpServer
from infra.local.sqs_poller import SqsPoller, load_mappings

log = logging.getLogger("local")

ADMIN_CLIENT_ID = "bootstrap-admin"


@dataclass
class RuntimeOptions:
    app: str = "infra.app:build_app"  # module:function returning an aws_cdk.App
    host: str = "127.0.0.1"
    port: int = 8080
    time_scale: float = 1.0
    state_dir: Path = Path(".local")
    admin_key: str | None = None
    integration_timeout_s: float = 29.0  # API Gateway's limit; tests lower it to prove the 504 path
    tls_port: int | None = 8443  # HTTPS with client certificates (mTLS); None: no TLS listener
    context: dict[str, Any] = field(default_factory=dict)


def synthesize(app_ref: str, outdir: Path, context: dict[str, Any]) -> Path:
    if outdir.exists():
        shutil.rmtree(outdir)
    subprocess.run(
        [sys.executable, "-m", "infra.local.synth", app_ref, str(outdir), json.dumps(context)],
        check=True,
        start_new_session=True,  # Ctrl-C on the terminal stops the runtime, not a half-done synth
    )
    return outdir


def stack_names(assembly: Path) -> list[str]:
    manifest = json.loads((assembly / "manifest.json").read_text())
    return [
        name
        for name, artifact in manifest.get("artifacts", {}).items()
        if artifact.get("type") == "aws:cloudformation:stack"
    ]


def create_unsupported_scheduler_resources(stack: moto_host.DeployedStack) -> None:
    """Schedule groups and schedules: moto's CloudFormation skips them, its Scheduler API has them."""
    client = boto3.client("scheduler")
    resources = stack.template.get("Resources", {})
    for logical, resource in resources.items():
        if resource["Type"] == "AWS::Scheduler::ScheduleGroup":
            props = moto_host.resolve_properties(stack.name, logical)
            name = props.get("Name") or f"{stack.name}-{logical}"
            client.create_schedule_group(Name=name)
            stack.physical_ids[logical] = name
    for logical, resource in resources.items():
        if resource["Type"] == "AWS::Scheduler::Schedule":
            props = moto_host.resolve_properties(stack.name, logical)
            group = props.get("GroupName")
            if isinstance(group, dict) and "Ref" in group:
                group = stack.physical_ids.get(group["Ref"])
            request = {
                "Name": props.get("Name") or f"{stack.name}-{logical}"[:64],
                "GroupName": group or "default",
                "ScheduleExpression": props["ScheduleExpression"],
                "FlexibleTimeWindow": props.get("FlexibleTimeWindow") or {"Mode": "OFF"},
                "Target": props["Target"],
                "State": props.get("State", "ENABLED"),
            }
            if props.get("ScheduleExpressionTimezone"):
                request["ScheduleExpressionTimezone"] = props["ScheduleExpressionTimezone"]
            client.create_schedule(**request)
            stack.physical_ids[logical] = request["Name"]


def seed_admin_key(table_name: str, admin_key: str) -> None:
    """The bootstrap admin key, stored like any other key (hash only), manageable by the keys API."""
    from gateway_core.credentials import api_key_items, hash_api_key, key_prefix, new_key_record

    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record = new_key_record(
        key_hash=hash_api_key(admin_key),
        prefix=key_prefix(admin_key),
        last_four=admin_key[-4:],
        key_id="key_bootstrap_admin",
        client_id=ADMIN_CLIENT_ID,
        name="bootstrap admin key",
        scopes=["admin"],
        tier="enterprise",
        created_at=now,
    )
    lookup, pointer = api_key_items(record)
    client = boto3.client("dynamodb")
    client.put_item(TableName=table_name, Item=lookup)
    client.put_item(TableName=table_name, Item=pointer)


class LocalGateway:
    def __init__(self, options: RuntimeOptions) -> None:
        self.options = options
        self.stop_event = threading.Event()
        self.stacks: list[moto_host.DeployedStack] = []
        self.pollers: list[SqsPoller] = []
        self.http: GatewayHttpServer | None = None
        self.admin_key: str | None = None
        self.moto_port = 0

    def start(self) -> None:
        started = time.perf_counter()
        state = self.options.state_dir
        state.mkdir(parents=True, exist_ok=True)
        self.moto_server, self.moto_port = moto_host.start_moto()
        # Bind first: the port is part of the OAuth2 issuer URL the template is synthesized with.
        self.http = GatewayHttpServer(self.options.host, self.options.port, None)
        self.port = self.http.server_address[1]
        # Upstreams on loopback are what local development and the tests proxy to; in AWS only
        # an operator's allowlist lets the proxy reach private addresses (README, SSRF guard).
        context = {
            "issuer": f"http://{self.options.host}:{self.port}",
            "upstreamAllowCidrs": "127.0.0.0/8,::1/128",
            **self.options.context,
        }
        assembly = synthesize(self.options.app, state / "cdk.out", context)
        moto_host.bootstrap()
        self.lambdas = LambdaRuntime(state / "runtime", base_environment={})
        hook_moto_invoke(self.lambdas)
        for name in stack_names(assembly):
            moto_host.publish_assets(assembly, name)
            stack = moto_host.deploy_stack(assembly, name)
            moto_host.apply_function_layers(stack)
            moto_host.move_state_machines_to_interpreter(stack)
            create_unsupported_scheduler_resources(stack)
            self.stacks.append(stack)
        self.lambdas.register_from_moto(moto_host.lambda_backend())
        moto_host.detach_moto_sqs_invocation()
        for mapping in load_mappings():
            poller = SqsPoller(mapping, self.lambdas, self.stop_event)
            poller.start()
            self.pollers.append(poller)
        self.clock = VirtualClock(self.options.time_scale)
        self.scheduler = Scheduler(self.lambdas, self.clock, self.stop_event)
        self.scheduler.start()
        api_stack = next((s for s in self.stacks if load_api(s) is not None), None)
        if api_stack is None:
            raise RuntimeError("the app defines no REST API to serve")
        api = load_api(api_stack)
        assert api is not None
        self.data_plane = RestApiDataPlane(api, self.lambdas, domain=f"{self.options.host}:{self.port}")
        self.data_plane.integration_timeout_s = self.options.integration_timeout_s
        moto_host.serve_authorizer_cache_flush(self._flush_authorizers)
        self._bootstrap_admin(state)
        self.http.data_plane = self.data_plane
        self.tls: MtlsGatewayHttpServer | None = None
        if self.options.tls_port is not None:
            self.pki = ensure_pki(state / "pki")
            self.tls = MtlsGatewayHttpServer(
                self.options.host,
                self.options.tls_port,
                self.data_plane,
                cert=str(self.pki.server_cert),
                key=str(self.pki.server_key),
                ca=str(self.pki.ca_cert),
            )
            self.tls_port = self.tls.server_address[1]
            # What the mTLS custom domain is in AWS: discovery advertises it as the place to ask
            # for certificate-bound tokens (a template value, when the app sets one, wins).
            self.lambdas.base_environment["MTLS_BASE_URL"] = f"https://{self.options.host}:{self.tls_port}"
            threading.Thread(target=self.tls.serve_forever, name="https", daemon=True).start()
        threading.Thread(target=self.http.serve_forever, name="http", daemon=True).start()
        self.started_in = time.perf_counter() - started

    def _flush_authorizers(self, api_id: str, stage: str) -> int:
        api = self.data_plane.api
        if (api_id, stage) != (api.api_id, api.stage):
            return 0
        return self.data_plane.authorizer_cache.flush()

    def _bootstrap_admin(self, state: Path) -> None:
        table = next((s.outputs["TableName"] for s in self.stacks if "TableName" in s.outputs), None)
        if table is None:
            return
        from gateway_core.credentials import generate_api_key

        self.admin_key = self.options.admin_key or generate_api_key("local")
        seed_admin_key(table, self.admin_key)
        admin_file = state / "admin.json"
        admin_file.write_text(
            json.dumps({"api_key": self.admin_key, "client_id": ADMIN_CLIENT_ID, "scopes": ["admin"]}, indent=2)
        )
        admin_file.chmod(0o600)

    def banner(self) -> str:
        base = f"http://{self.options.host}:{self.port}"
        api = self.data_plane.api
        lines = [
            "",
            "Finance integration gateway: local runtime ready "
            f"in {self.started_in:.1f} s (stage '{api.stage}', {len(self.lambdas.functions)} functions, time x{self.options.time_scale:g})",
            f"  API            {base}",
            f"  Health         {base}/api/v1/gateway/health",
            f"  OpenAPI/Swagger {base}/api/v1/docs",
            f"  AWS (moto)     http://127.0.0.1:{self.moto_port}  (AWS_ENDPOINT_URL for boto3 and the AWS CLI)",
        ]
        if self.tls is not None:
            lines.append(f"  HTTPS (mTLS)   https://{self.options.host}:{self.tls_port}  (client certificate required)")
            lines.append(
                f"  PKI            CA {self.pki.ca_cert}, demo client {self.pki.client_cert} + {self.pki.client_key}"
            )
        if self.admin_key:
            source = "from GATEWAY_ADMIN_KEY" if self.options.admin_key else "generated"
            lines.append(
                f"  Admin API key  {self.admin_key}  ({source}; also in {self.options.state_dir / 'admin.json'})"
            )
        lines.append("Ctrl-C stops.")
        return "\n".join(lines)

    def stop(self) -> None:
        self.stop_event.set()
        for server in (self.http, getattr(self, "tls", None)):
            if server is not None:
                server.shutdown()
                server.server_close()
        self.lambdas.shutdown()
        self.moto_server.stop()


def default_admin_key() -> str | None:
    value = os.environ.get("GATEWAY_ADMIN_KEY", "").strip()
    if value and len(value) < 32:
        raise SystemExit("GATEWAY_ADMIN_KEY must be at least 32 characters")
    return value or None
