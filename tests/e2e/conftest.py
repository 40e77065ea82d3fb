"""Start the local runtime as `make local` does (a real process on a free loopback port) and
talk HTTP to it. AWS calls from tests go to the runtime's moto endpoint from the banner."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180


@dataclass
class RunningGateway:
    base_url: str
    aws_endpoint: str
    tls_url: str
    process: subprocess.Popen[str]
    state_dir: Path
    output: list[str] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60, **kwargs)

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def outputs(self, stack: str) -> dict[str, str]:
        described = self.aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def start_gateway(tmp: Path, *args: str, env: dict[str, str] | None = None) -> RunningGateway:
    command = [sys.executable, "-m", "infra.local", "--port", "0", "--tls-port", "0", "--state-dir", str(tmp), *args]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if line.startswith("Ctrl-C stops"):
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(START_TIMEOUT_S) or process.poll() is not None:
        process.kill()
        raise RuntimeError("local runtime did not start:\n" + "".join(output[-60:]))
    text = "".join(output)
    base = re.search(r"^  API\s+(http://127\.0\.0\.1:\d+)", text, re.M)
    aws = re.search(r"^  AWS \(moto\)\s+(http://127\.0\.0\.1:\d+)", text, re.M)
    tls = re.search(r"^  HTTPS \(mTLS\)\s+(https://127\.0\.0\.1:\d+)", text, re.M)
    assert base, text
    assert aws, text
    assert tls, text
    return RunningGateway(base.group(1), aws.group(1), tls.group(1), process, tmp, output)


def stop_gateway(gateway: RunningGateway) -> None:
    gateway.process.terminate()
    try:
        gateway.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        gateway.process.kill()


def eventually(check: Any, timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll until `check()` returns a truthy value (asynchronous paths: queues, schedules)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout} s; last value: {last!r}")


@pytest.fixture(scope="session")
def fixture_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    gateway = start_gateway(
        tmp_path_factory.mktemp("fixture-runtime"),
        "--app",
        "tests.e2e.runtime_app:build_app",
        "--time-scale",
        "60",
        "--integration-timeout",
        "3",
    )
    yield gateway
    stop_gateway(gateway)


@pytest.fixture(scope="session")
def product_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """The product with its default settings, shared by the modules that need nothing else (one
    start, about 15 s, instead of one per module). Schedules run 60 times faster, so the proxy's
    minutely health checks run every second; nothing else here depends on schedules. Tests that
    share it make their own clients, keys and gateways and assert only on those."""
    from tests.e2e.test_product import ADMIN_KEY

    gateway = start_gateway(
        tmp_path_factory.mktemp("product-shared"),
        "--time-scale",
        "60",
        # Webhook retries on a 1000x faster schedule (5 min -> 0.3 s); nothing else reads it.
        "-c",
        "webhookTimeScale=0.001",
        env={"GATEWAY_ADMIN_KEY": ADMIN_KEY},
    )
    yield gateway
    stop_gateway(gateway)
