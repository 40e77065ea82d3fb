"""Webhooks through the local runtime (`make local`'s, in a process of its own) with a fast 204
receiver on loopback: publish->delivered latency (the trigger request sent to the receiver's
arrival, p50/p99, and the share within 5 s: issue 13's seed asks for >98% within 5 s), deliveries
per second with several endpoints and a burst of events, and the AWS calls each function makes per
delivery.

The calls are counted where every function's AWS call arrives: in front of moto's IAM gate, which
knows each function by the credentials it signs with (infra/local/iam_gate.py). The runtime is
started through this module (`python -m tests.bench.webhooks --serve ...`), which wraps the gate
with a counter and otherwise runs `python -m infra.local` unchanged; SIGUSR1 makes it write the
counts so far to the file named by BENCH_CALLS_FILE. The SQS receives and deletes of the event
source mappings are the runtime's own (Lambda's poller, not billed to a function) and are not
counted; they poll continuously, so a count per delivery would mean nothing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.bench import REPO_ROOT
from tests.bench.report import format_table, percentile

KNOBS = ("-c", "webhookTimeScale=0.001")
WITHIN_S = 5.0
# How long a run waits for its deliveries; the ones still missing then are reported as such.
SETTLE_S = 300.0
# The functions whose calls are the cost of a delivery (the API's are the trigger's: per event).
_DELIVERY_FUNCTIONS = ("WebhookFanout", "WebhookDelivery")
_PUBLISHING_FUNCTION = "Webhooks"
START_TIMEOUT_S = 240.0
# Function names are CloudFormation's (`<stack>-FunctionsWebhookDeliveryFunction<hash>-<suffix>`):
# shown by the construct's name.
_LOGICAL = re.compile(r"Functions(\w+?)Function[0-9A-F]{8}")


# -- inside the runtime's process ---------------------------------------------------------------
def _serve(argv: list[str]) -> int:
    """Run `python -m infra.local` with a call counter in front of moto's IAM gate."""
    from infra.local import __main__ as local_main
    from infra.local import moto_host
    from infra.local.iam_gate import _CREDENTIAL

    counts: Counter[str] = Counter()
    lock = threading.Lock()
    original = moto_host.start_moto

    def start_moto() -> tuple[Any, int]:
        server, port = original()
        gate = server.iam_gate
        wsgi = server._server

        def counting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
            principal = gate.principals.get(match.group(1)) if match else None
            if match is not None and principal is not None:
                # Most services here speak JSON with the operation in X-Amz-Target.
                target = environ.get("HTTP_X_AMZ_TARGET", "")
                operation = target.rsplit(".", 1)[-1] if target else environ["REQUEST_METHOD"]
                key = f"{principal.session.rsplit('/', 1)[-1]}\t{match.group(3)}:{operation}"
                with lock:
                    counts[key] += 1
            return gate(environ, start_response)

        wsgi.app = counting
        return server, port

    def dump(*_: object) -> None:
        target = Path(os.environ["BENCH_CALLS_FILE"])
        with lock:
            text = json.dumps(dict(counts))
        partial = target.with_suffix(".partial")
        partial.write_text(text)
        partial.replace(target)

    moto_host.start_moto = start_moto
    signal.signal(signal.SIGUSR1, dump)
    return local_main.main(argv)


# -- the benchmark --------------------------------------------------------------------------------
class _Runtime:
    def __init__(self, state_dir: Path, admin_key: str) -> None:
        self.calls_file = state_dir / "calls.json"
        command = [sys.executable, "-m", "tests.bench.webhooks", "--serve", "--port", "0", "--tls-port", "-1"]
        self.process = subprocess.Popen(
            [*command, "--state-dir", str(state_dir), *KNOBS],
            cwd=REPO_ROOT,
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "GATEWAY_ADMIN_KEY": admin_key,
                "BENCH_CALLS_FILE": str(self.calls_file),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        ready = threading.Event()

        def pump() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                if line.startswith("Ctrl-C stops"):
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(START_TIMEOUT_S) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("local runtime did not start:\n" + "".join(self.output[-40:]))
        found = re.search(r"^  API\s+(http://127\.0\.0\.1:\d+)", "".join(self.output), re.M)
        assert found, "".join(self.output)
        self.base_url = found.group(1)

    def calls(self) -> Counter[str]:
        self.calls_file.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not self.calls_file.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the runtime wrote no call counts")
            time.sleep(0.05)
        return Counter(json.loads(self.calls_file.read_text()))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _function_label(name: str) -> str:
    found = _LOGICAL.search(name)
    return found.group(1) if found else name


def _create_endpoints(http: Any, receiver: Any, paths: list[str], event_type: str) -> None:
    for path in paths:
        response = http.post(
            "/api/v1/webhooks",
            json={"name": f"bench {path}", "url": receiver.url_for(path), "event_types": [event_type]},
        )
        assert response.status_code == 201, response.text


def _trigger(http: Any, event_type: str, number: int) -> tuple[str, float]:
    sent = time.time()
    response = http.post("/api/v1/events/trigger", json={"event_type": event_type, "data": {"n": number}})
    if response.status_code != 202:
        raise RuntimeError(f"trigger answered {response.status_code}: {response.text}")
    return str(response.json()["event_id"]), sent


def _wait_for(receiver: Any, count: int, paths: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sum(len(receiver.requests_for(p)) for p in paths) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def _latencies(receiver: Any, paths: list[str], sent: dict[str, float]) -> tuple[list[float], int]:
    """Seconds from each trigger to each endpoint's first request with its webhook-id; and how
    many (event, endpoint) pairs never arrived."""
    samples: list[float] = []
    missing = 0
    for path in paths:
        first: dict[str, float] = {}
        for request in receiver.requests_for(path):
            first.setdefault(request.headers.get("webhook-id", ""), request.wall)
        for event_id, at in sent.items():
            if event_id in first:
                samples.append(first[event_id] - at)
            else:
                missing += 1
    return samples, missing


def _per_function(
    before: Counter[str], after: Counter[str], per: int, functions: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for key, count in (after - before).items():
        function, operation = key.split("\t")
        label = _function_label(function)
        if label in functions:
            table.setdefault(label, {})[operation] = round(count / per, 3)
    return {name: dict(sorted(ops.items())) for name, ops in sorted(table.items())}


def run(events: int = 200, burst_events: int = 100, endpoints: int = 3, pause_s: float = 0.05) -> dict[str, Any]:
    """`events` triggered one at a time (`pause_s` apart) to 2 endpoints: latency and calls per
    delivery; then `burst_events` from 4 threads at once to `endpoints` endpoints: deliveries/s."""
    import httpx

    from tests.webhook_receivers import Receiver

    admin_key = "gk_local_" + secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp, Receiver() as receiver:
        runtime = _Runtime(Path(tmp), admin_key)
        try:
            with httpx.Client(base_url=runtime.base_url, headers={"x-api-key": admin_key}, timeout=60) as http:
                steady = [f"/steady-{i}" for i in range(2)]
                burst = [f"/burst-{i}" for i in range(endpoints)]
                _create_endpoints(http, receiver, steady, "key.created")
                _create_endpoints(http, receiver, burst, "key.rotated")
                time.sleep(2)  # the fan-out lists endpoints from an index that may lag a second
                # Warm: every function's first worker started, the signing key cache filled.
                for number in range(5):
                    _trigger(http, "key.created", -1 - number)
                _wait_for(receiver, 5 * len(steady), steady, 60)
                warm = len(receiver.requests)

                # Latency, and the calls made per delivery while nothing else runs.
                before = runtime.calls()
                sent: dict[str, float] = {}
                for number in range(events):
                    event_id, at = _trigger(http, "key.created", number)
                    sent[event_id] = at
                    time.sleep(pause_s)
                _wait_for(receiver, warm + events * len(steady), steady, SETTLE_S)
                time.sleep(1.0)  # the last attempts' records are written after the receiver's answer
                after = runtime.calls()
                samples, missing = _latencies(receiver, steady, sent)
                delivered = len(samples)

                # Throughput: a burst of events to several endpoints.
                burst_sent: dict[str, float] = {}
                lock = threading.Lock()

                def publish(numbers: range) -> None:
                    with httpx.Client(base_url=runtime.base_url, headers={"x-api-key": admin_key}, timeout=60) as own:
                        for number in numbers:
                            event_id, at = _trigger(own, "key.rotated", number)
                            with lock:
                                burst_sent[event_id] = at

                started = time.time()
                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(publish, [range(i, burst_events, 4) for i in range(4)]))
                triggered_s = time.time() - started
                _wait_for(receiver, burst_events * endpoints, burst, SETTLE_S)
                burst_samples, burst_missing = _latencies(receiver, burst, burst_sent)
                last = max((r.wall for p in burst for r in receiver.requests_for(p)), default=started)
        finally:
            runtime.stop()

    in_ms = [s * 1000 for s in samples]
    return {
        "latency": {
            "events": events,
            "endpoints": len(steady),
            "deliveries": delivered,
            "missing": missing,
            "p50_ms": round(percentile(in_ms, 50), 1) if in_ms else None,
            "p99_ms": round(percentile(in_ms, 99), 1) if in_ms else None,
            "max_ms": round(max(in_ms), 1) if in_ms else None,
            "within_5s_pct": round(100 * sum(s <= WITHIN_S for s in samples) / max(1, events * len(steady)), 2),
        },
        "burst": {
            "events": burst_events,
            "endpoints": endpoints,
            "deliveries": len(burst_samples),
            "missing": burst_missing,
            "trigger_s": round(triggered_s, 2),
            "elapsed_s": round(last - started, 2),
            "deliveries_per_s": round(len(burst_samples) / max(0.001, last - started), 1),
            "p50_ms": round(percentile([s * 1000 for s in burst_samples], 50), 1) if burst_samples else None,
            "p99_ms": round(percentile([s * 1000 for s in burst_samples], 99), 1) if burst_samples else None,
            "within_5s_pct": round(
                100 * sum(s <= WITHIN_S for s in burst_samples) / max(1, burst_events * endpoints), 2
            ),
        },
        "calls_per_delivery": _per_function(before, after, max(1, delivered), _DELIVERY_FUNCTIONS),
        "calls_per_event": _per_function(before, after, max(1, events), (_PUBLISHING_FUNCTION,)),
    }


def tables(section: dict[str, Any]) -> str:
    latency, burst = section["latency"], section["burst"]
    rows = [
        [
            f"steady: {latency['events']} events, {latency['endpoints']} endpoints, {latency['missing']} missing",
            latency["deliveries"],
            latency["p50_ms"],
            latency["p99_ms"],
            f"{latency['within_5s_pct']:.2f}%",
            "",
        ],
        [
            f"burst: {burst['events']} events from 4 threads, {burst['endpoints']} endpoints, {burst['missing']} missing",
            burst["deliveries"],
            burst["p50_ms"],
            burst["p99_ms"],
            f"{burst['within_5s_pct']:.2f}%",
            f"{burst['deliveries_per_s']:g}",
        ],
    ]
    call_rows = [
        [function, operation, f"{count:g}", "delivery"]
        for function, operations in section["calls_per_delivery"].items()
        for operation, count in operations.items()
    ] + [
        [function, operation, f"{count:g}", "event (the trigger's publishing)"]
        for function, operations in section["calls_per_event"].items()
        for operation, count in operations.items()
    ]
    return "\n\n".join(
        [
            format_table(
                "Webhooks through the local runtime, fast 204 receiver (publish -> arrival; seed: >98% within 5 s)",
                ["run", "deliveries", "p50 ms", "p99 ms", "within 5 s", "deliveries/s"],
                rows,
            ),
            format_table(
                "Webhooks: AWS calls per delivery, by function (steady run, first attempts succeeding)",
                ["function", "call", "count", "per"],
                call_rows,
                align="llrl",
            ),
        ]
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        sys.exit(_serve(sys.argv[2:]))
    result = run()
    print(tables(result))
