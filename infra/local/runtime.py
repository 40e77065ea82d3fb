"""Start everything: synthesize, deploy into moto, and serve the stack like AWS would."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import boto3

from infra.local import moto_host
from infra.local.api_model import load_api
from infra.local.apigateway import RestApiDataPlane
from infra.local.iam_gate import Principal
from infra.local.lambdas import LambdaRuntime, hook_moto_invoke
from infra.local.pki import ensure_pki
from infra.local.schedules import Scheduler, VirtualClock
from infra.local.server import GatewayHttpServer, MtlsGatewayHttpServer
from infra.local.sqs_poller import SqsPoller, load_mappings
from infra.local.state import LocalState
from infra.local.stream_poller import StreamPoller, stream_pollers

if TYPE_CHECKING:
    from infra.admin.keys import BootstrapKey

log = logging.getLogger("local")


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


def seed_admin_key(table_name: str, admin_key: str | None, saved: str | None = None) -> BootstrapKey:
    """The admin key this run serves: GATEWAY_ADMIN_KEY, else the last run's (admin.json) while the
    restored local state still has it working, else a new one. Stored through the admin CLI's code
    path (`infra/admin/keys.py`: hashed, random key id, conditional writes, audited as
    `key.bootstrap_create`), so it is like any other key, manageable by the keys API and the CLI."""
    from infra.admin.keys import AdminKeys, BootstrapRefused, bootstrap_key, operator_actor

    try:
        return bootstrap_key(
            AdminKeys(boto3.client("dynamodb"), table_name),
            given=admin_key,
            saved=saved,
            actor=operator_actor("local-runtime"),
            now=datetime.now(UTC),
            environment="local",
        )
    except BootstrapRefused as error:
        raise SystemExit(str(error)) from None


class LocalGateway:
    def __init__(self, options: RuntimeOptions) -> None:
        self.options = options
        self.stop_event = threading.Event()
        self.stacks: list[moto_host.DeployedStack] = []
        self.pollers: list[SqsPoller] = []
        self.stream_pollers: list[StreamPoller] = []
        self.http: GatewayHttpServer | None = None
        self.admin_key: str | None = None
        self.moto_port = 0

    def start(self) -> None:
        started = time.perf_counter()
        state = self.options.state_dir
        state.mkdir(parents=True, exist_ok=True)
        # Listen first, before anything is started: the port is part of the OAuth2 issuer URL the
        # template is synthesized with, and a port in use is refused at once (PortInUse).
        host = self.options.host
        self.http = _listen(lambda port: GatewayHttpServer(host, port, None), host, self.options.port, tls=False)
        self.port = self.http.server_address[1]
        self.tls: MtlsGatewayHttpServer | None = None
        if self.options.tls_port is not None:
            self.pki = ensure_pki(state / "pki")
            try:
                self.tls = _listen(
                    lambda port: MtlsGatewayHttpServer(
                        host,
                        port,
                        None,
                        cert=str(self.pki.server_cert),
                        key=str(self.pki.server_key),
                        ca=str(self.pki.ca_cert),
                    ),
                    host,
                    self.options.tls_port,
                    tls=True,
                )
            except PortInUse:
                self.http.server_close()
                raise
            self.tls_port = self.tls.server_address[1]
        self.moto_server, self.moto_port = moto_host.start_moto()
        # Upstreams on loopback are what local development and the tests proxy to; in AWS only
        # an operator's allowlist lets the proxy reach private addresses (README, SSRF guard).
        context = {
            "issuer": f"http://{self.options.host}:{self.port}",
            "upstreamAllowCidrs": "127.0.0.0/8,::1/128",
            **self.options.context,
        }
        assembly = synthesize(self.options.app, state / "cdk.out", context)
        moto_host.bootstrap()
        self.lambdas = LambdaRuntime(
            state / "runtime",
            base_environment={},
            aws_environment=moto_host.function_aws_environment(self.moto_port),
        )
        hook_moto_invoke(self.lambdas)
        for name in stack_names(assembly):
            moto_host.publish_assets(assembly, name)
            stack = moto_host.deploy_stack(assembly, name)
            moto_host.apply_function_layers(stack)
            moto_host.move_state_machines_to_interpreter(stack)
            create_unsupported_scheduler_resources(stack)
            self.stacks.append(stack)
        self.local_state = LocalState.attach(state, self.stacks, self.stop_event)  # README: local state
        self.lambdas.register_from_moto(moto_host.lambda_backend())
        self._sign_functions_as_their_roles()
        moto_host.detach_moto_sqs_invocation()
        for mapping in load_mappings():
            poller = SqsPoller(mapping, self.lambdas, self.stop_event)
            poller.start()
            self.pollers.append(poller)
        moto_host.detach_moto_stream_invocation()
        # LATEST, here: every record from now on, not the restored local state's items again (stream_poller.py).
        for stream_poller in stream_pollers(self.lambdas.invoke, self.stop_event, starting_position="LATEST"):
            stream_poller.start()
            self.stream_pollers.append(stream_poller)
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
        if self.tls is not None:
            self.tls.data_plane = self.data_plane
            # What the mTLS custom domain is in AWS: discovery advertises it as the place to ask
            # for certificate-bound tokens (a template value, when the app sets one, wins).
            self.lambdas.base_environment["MTLS_BASE_URL"] = f"https://{self.options.host}:{self.tls_port}"
            threading.Thread(target=self.tls.serve_forever, name="https", daemon=True).start()
        threading.Thread(target=self.http.serve_forever, name="http", daemon=True).start()
        self.started_in = time.perf_counter() - started

    def _sign_functions_as_their_roles(self) -> None:
        """Each function gets credentials of its own, which the IAM gate in front of moto maps to
        its role's policies from the template: a missing grant is an AccessDenied here too."""
        statements: dict[str, list[dict[str, Any]]] = {}
        for stack in self.stacks:
            for role, found in moto_host.role_statements(stack).items():
                statements.setdefault(role, []).extend(found)
        for index, function in enumerate(sorted(self.lambdas.functions.values(), key=lambda f: f.name)):
            role_name = function.role_arn.rsplit("/", 1)[-1]
            access_key = f"ASIALOCALFN{index:09d}"
            self.moto_server.iam_gate.register(
                access_key,
                Principal(
                    role_arn=function.role_arn,
                    session=f"arn:aws:sts::{moto_host.ACCOUNT_ID}:assumed-role/{role_name}/{function.name}",
                    statements=statements.get(role_name, []),
                ),
            )
            function.credentials = {
                "AWS_ACCESS_KEY_ID": access_key,
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_SESSION_TOKEN": "local",
            }

    def _flush_authorizers(self, api_id: str, stage: str) -> int:
        api = self.data_plane.api
        if (api_id, stage) != (api.api_id, api.stage):
            return 0
        return self.data_plane.authorizer_cache.flush()

    def _bootstrap_admin(self, state: Path) -> None:
        table = next((s.outputs["TableName"] for s in self.stacks if "TableName" in s.outputs), None)
        if table is None:
            return
        admin_file = state / "admin.json"
        try:
            saved = json.loads(admin_file.read_text()).get("api_key") if admin_file.exists() else None
        except (OSError, ValueError, AttributeError):
            saved = None
        self.admin_bootstrap = seed_admin_key(table, self.options.admin_key, saved)
        self.admin_key = self.admin_bootstrap.secret
        admin_file.touch(mode=0o600)
        admin_file.chmod(0o600)
        admin_file.write_text(
            json.dumps(
                {
                    "api_key": self.admin_key,
                    "key_id": self.admin_bootstrap.key.key_id,
                    "client_id": self.admin_bootstrap.key.client_id,
                    "scopes": ["admin"],
                },
                indent=2,
            )
        )

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
            # Shown in full once, when this run stored it; a kept key only as prefix and last four.
            boot = self.admin_bootstrap
            shown = self.admin_key if boot.new else f"{boot.key.prefix}…{boot.key.last_four}"
            lines.append(f"  Admin API key  {shown}  ({boot.source}; also in {self.options.state_dir / 'admin.json'})")
        lines.append("Ctrl-C stops.")
        return "\n".join(lines)

    def stop(self) -> None:
        self.stop_event.set()
        for server in (self.http, getattr(self, "tls", None)):
            if server is not None:
                server.shutdown()
                server.server_close()
        self.lambdas.shutdown()
        if getattr(self, "local_state", None) is not None:
            self.local_state.close()  # the final save, once nothing writes any more
        self.moto_server.stop()


class PortInUse(Exception):
    """A listener's port is taken (or not ours to use): said in one line with the setting that
    changes it, before anything has started."""


_Server = TypeVar("_Server", bound=GatewayHttpServer)


def _listen(create: Callable[[int], _Server], host: str, port: int, *, tls: bool) -> _Server:
    try:
        return create(port)
    except OSError as error:
        if error.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        prefix, option, off = ("TLS_", "--tls-port", "; -1 turns HTTPS off") if tls else ("", "--port", "")
        reason = "is in use" if error.errno == errno.EADDRINUSE else f"cannot be used ({error.strerror})"
        raise PortInUse(
            f"{host}:{port} {reason}: choose another with `make local {prefix}PORT=<port>` "
            f"(or `{option} <port>`; 0 picks a free one{off})"
        ) from None


def default_admin_key() -> str | None:
    value = os.environ.get("GATEWAY_ADMIN_KEY", "").strip()
    if value and len(value) < 32:
        raise SystemExit("GATEWAY_ADMIN_KEY must be at least 32 characters")
    return value or None
