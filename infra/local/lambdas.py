"""Lambda, locally: every function deployed into moto runs in worker processes of its own.

moto's Lambda runs no code without Docker. The runtime takes each function's configuration and
code from moto (handler, environment, timeout, memory, reserved concurrency, the zip
CloudFormation deployed, its layers in the template's order), unpacks them, and runs each
function in execution environments of its own (`worker.py`): isolated interpreters whose
`sys.path` is the function's code, its layers and the standard library, and whose environment is
the function's template environment plus what Lambda sets, nothing of the runtime's own process.

As in Lambda: one invocation at a time per worker; a concurrent invocation starts another worker,
which pays a cold start (measured and logged in a `REPORT` line with `Init Duration`); idle
workers are reaped; a function that runs past its timeout has its worker killed; a worker that
fails to import or dies is an invocation error; reserved concurrency caps the workers and
invocations beyond it are throttled. API Gateway requests, SQS batches, schedules, Step
Functions tasks and moto's own Invoke API all come through `invoke`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from infra.config import DEPS_LAYER_MARKER, local_deps_layer_dir, runtime_sdk_dir

log = logging.getLogger("local.lambda")

ACCOUNT_ID = "123456789012"
WORKER_SCRIPT = Path(__file__).resolve().parent / "worker.py"
INIT_LIMIT_S = 10.0  # Lambda's init phase limit for on-demand functions
DEFAULT_IDLE_S = 300.0  # how long an unused worker stays warm
DEFAULT_MAX_WORKERS = 8  # per function without reserved concurrency: this machine's limit, not Lambda's
_output_lock = threading.Lock()


class FunctionError(Exception):
    """The invocation failed; carries the Lambda-style error payload (errorType, errorMessage)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("errorMessage", "function error"))
        self.payload = payload


class FunctionTimeout(Exception):
    """No answer in time. `by_function`: the function's own timeout ran out (Lambda reports an
    error), rather than the caller's shorter limit (API Gateway's 29 s)."""

    def __init__(self, message: str, *, by_function: bool) -> None:
        super().__init__(message)
        self.by_function = by_function


class FunctionThrottled(Exception):
    """Every worker the function's reserved concurrency allows is busy (TooManyRequestsException)."""


@dataclass
class LocalFunction:
    name: str
    arn: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    code_dir: Path
    layer_dirs: list[Path]
    reserved_concurrency: int | None = None
    role_arn: str = ""
    # The role's credentials: each function signs its AWS calls as itself (infra/local/iam_gate.py).
    credentials: dict[str, str] = field(default_factory=dict)
    invocations: int = 0
    cold_starts: int = 0
    init_durations_ms: list[float] = field(default_factory=list)


class Worker:
    """One execution environment: a process running worker.py for one function."""

    def __init__(self, function: LocalFunction, environment: dict[str, str]) -> None:
        self.function = function
        self.log_stream = f"local/{uuid.uuid4().hex}"
        request_read, self._request = os.pipe()
        self._response, response_write = os.pipe()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-I", "-S", str(WORKER_SCRIPT), str(request_read), str(response_write)],
            pass_fds=(request_read, response_write),
            env=environment,
            cwd=function.code_dir.resolve(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches the runtime, which stops its workers itself
        )
        os.close(request_read)
        os.close(response_write)
        for stream in (self.process.stdout, self.process.stderr):
            assert stream is not None
            threading.Thread(target=self._forward, args=(stream,), daemon=True).start()
        self.last_used = time.monotonic()

    def _forward(self, stream: IO[bytes]) -> None:
        """The function's output is its log stream: each line goes to the runtime's output."""
        prefix = f"[{self.function.name}] ".encode()
        for line in iter(stream.readline, b""):
            with _output_lock:
                sys.stderr.buffer.write(prefix + line if line.endswith(b"\n") else prefix + line + b"\n")
                sys.stderr.flush()

    def initialize(self) -> float:
        """Send the function's configuration and wait for its handler to import: the init phase.
        Returns its duration in ms; raises FunctionError when the import fails."""
        # Absolute paths: the worker starts in the code directory, and `.local` is relative.
        code_dir = self.function.code_dir.resolve()
        sys_path = [str(code_dir), *(str(p.resolve()) for p in self.function.layer_dirs), str(_runtime_dir().resolve())]
        self._send(
            {
                "sys_path": sys_path,
                "code_dir": str(code_dir),
                "handler": self.function.handler,
                "function_name": self.function.name,
                "function_arn": self.function.arn,
                "memory": self.function.memory,
                "log_stream_name": self.log_stream,
            }
        )
        deadline = time.monotonic() + INIT_LIMIT_S
        reply = self._receive(INIT_LIMIT_S)
        if reply is None:
            exited = self._exit_status(deadline)
            self.kill()
            if exited is not None:
                raise FunctionError(
                    {
                        "errorType": "Runtime.ExitError",
                        "errorMessage": f"Runtime exited during init: exit status {exited}",
                    }
                )
            raise FunctionError(
                {"errorType": "Runtime.InitError", "errorMessage": f"init did not finish in {INIT_LIMIT_S:g} s"}
            )
        if reply.get("type") == "init_error":
            self.kill()
            raise FunctionError(reply["error"])
        return float(reply["init_ms"])

    def call(self, event: Any, request_id: str, deadline: float) -> dict[str, Any]:
        """One invocation; `deadline` is the function's timeout (time.monotonic()). Raises
        FunctionTimeout (the worker is killed) or FunctionError (the worker died)."""
        self._send(
            {
                "request_id": request_id,
                "event": event,
                "deadline_ms": (time.time() + deadline - time.monotonic()) * 1000,
            }
        )
        reply = self._receive(max(0.0, deadline - time.monotonic()))
        if reply is None:
            if self._exit_status(deadline) is None:
                self.kill()
                raise FunctionTimeout(
                    f"{request_id} Task timed out after {self.function.timeout:.2f} seconds", by_function=True
                )
            code = self.process.returncode
            raise FunctionError(
                {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}",
                }
            )
        self.last_used = time.monotonic()
        return reply

    def _exit_status(self, deadline: float) -> int | None:
        """After a receive came back empty: the exit status when the worker is dying (its pipe
        closed before its time ran out; the process may take a moment to be reaped), else None."""
        if time.monotonic() >= deadline:
            return self.process.poll()
        try:
            return self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        data = struct.pack(">I", len(body)) + body
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._request, view) :]
        except OSError:
            pass  # the worker is gone; the receive that follows reports it

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None when the worker died or `timeout` passed."""
        deadline = time.monotonic() + timeout
        header = self._read(4, deadline)
        if header is None:
            return None
        body = self._read(struct.unpack(">I", header)[0], deadline)
        return None if body is None else dict(json.loads(body))

    def _read(self, count: int, deadline: float) -> bytes | None:
        chunks: list[bytes] = []
        while count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._response], [], [], remaining)[0]:
                return None
            chunk = os.read(self._response, min(count, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            count -= len(chunk)
        return b"".join(chunks)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        for fd in (self._request, self._response):
            with contextlib.suppress(OSError):
                os.close(fd)


class FunctionPool:
    """The execution environments of one function."""

    def __init__(self, function: LocalFunction, max_workers: int) -> None:
        self.function = function
        self.max_workers = function.reserved_concurrency or max_workers
        self.throttles = function.reserved_concurrency is not None
        self.idle: list[Worker] = []
        self.count = 0
        self._available = threading.Condition()

    def acquire(self) -> Worker | None:
        """A warm worker, or None when the caller may start a new one (a cold start)."""
        with self._available:
            while True:
                while self.idle:
                    worker = self.idle.pop()  # the most recently used, as Lambda reuses warm ones
                    if worker.alive():
                        return worker
                    self.count -= 1
                if self.count < self.max_workers:
                    self.count += 1
                    return None
                if self.throttles:
                    raise FunctionThrottled(f"Rate Exceeded: {self.function.name} is at its reserved concurrency")
                self._available.wait()

    def release(self, worker: Worker | None, *, reusable: bool) -> None:
        with self._available:
            if worker is not None and reusable and worker.alive():
                self.idle.append(worker)
            else:
                self.count -= 1
            self._available.notify()

    def reap(self, idle_s: float) -> int:
        with self._available:
            now = time.monotonic()
            stale = [w for w in self.idle if now - w.last_used > idle_s or not w.alive()]
            self.idle = [w for w in self.idle if w not in stale]
            self.count -= len(stale)
            self._available.notify_all()
        for worker in stale:
            worker.kill()
        return len(stale)

    def shutdown(self) -> None:
        with self._available:
            workers, self.idle = self.idle, []
        for worker in workers:
            worker.kill()


class LambdaRuntime:
    def __init__(
        self,
        work_dir: Path,
        base_environment: dict[str, str],
        *,
        aws_environment: dict[str, str] | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        idle_s: float = DEFAULT_IDLE_S,
        max_concurrency: int = 64,
    ) -> None:
        self.work_dir = work_dir.resolve()  # workers start elsewhere: their paths must be absolute
        # Runtime additions to every function's environment that stand in for AWS (the mTLS
        # domain's URL); the template's own values win.
        self.base_environment = base_environment
        # Region, credentials and the endpoint override that points boto3 at moto.
        self.aws_environment = dict(aws_environment or {})
        self.max_workers = max_workers
        self.idle_s = idle_s
        self.functions: dict[str, LocalFunction] = {}
        self.pools: dict[str, FunctionPool] = {}
        self._by_arn: dict[str, LocalFunction] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="lambda")
        self._stopped = threading.Event()
        threading.Thread(target=self._reap, name="lambda-reaper", daemon=True).start()

    # -- registration -------------------------------------------------------------------
    def register_from_moto(self, lambda_backend: Any) -> None:
        """Unpack every deployed function's code and layers from moto's Lambda backend."""
        layer_cache: dict[str, Path] = {}
        for fn in lambda_backend.list_functions():
            code_dir = self.work_dir / "functions" / fn.function_name
            _unzip(fn.code_bytes, code_dir)
            layer_dirs = []
            for layer in fn.layers:
                arn = layer["Arn"]
                if arn not in layer_cache:
                    version = lambda_backend.layers_versions_by_arn(arn)
                    target = self.work_dir / "layers" / arn.split(":")[-2] / arn.split(":")[-1]
                    layer_cache[arn] = _layer_dir(version.code_bytes, target)
                layer_dirs.append(layer_cache[arn])
            reserved = getattr(fn, "reserved_concurrency", None)
            self.add(
                LocalFunction(
                    name=fn.function_name,
                    arn=fn.function_arn,
                    handler=fn.handler,
                    timeout=int(fn.timeout),
                    memory=int(fn.memory_size),
                    environment=dict(fn.environment_vars or {}),
                    code_dir=code_dir,
                    # Lambda extracts layers into /opt in order, a later one overwriting an
                    # earlier one's files: here the later layer comes first on sys.path.
                    layer_dirs=list(reversed(layer_dirs)),
                    reserved_concurrency=int(reserved) if reserved else None,
                    role_arn=str(fn.role),
                )
            )

    def add(self, function: LocalFunction) -> None:
        self.functions[function.name] = function
        self._by_arn[function.arn] = function
        self.pools[function.name] = FunctionPool(function, self.max_workers)

    def resolve(self, name_or_arn: str) -> LocalFunction:
        if name_or_arn in self.functions:
            return self.functions[name_or_arn]
        base_arn = ":".join(name_or_arn.split(":")[:7])
        if base_arn in self._by_arn:
            return self._by_arn[base_arn]
        raise KeyError(f"no such function: {name_or_arn}")

    # -- invocation ---------------------------------------------------------------------
    def environment(self, function: LocalFunction) -> dict[str, str]:
        """What the function's process sees: nothing of the runtime's own environment."""
        region = self.aws_environment.get("AWS_REGION", "us-east-1")
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            **self.base_environment,
            **function.environment,
            # No X-Ray daemon locally: powertools' Tracer is a no-op (README, local vs AWS).
            "POWERTOOLS_TRACE_DISABLED": "true",
            **self.aws_environment,
            **function.credentials,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.14",
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "_HANDLER": function.handler,
            "LAMBDA_TASK_ROOT": str(function.code_dir),
            "LAMBDA_RUNTIME_DIR": str(_runtime_dir()),
        }

    def _run(self, function: LocalFunction, event: Any, request_id: str) -> Any:
        pool = self.pools[function.name]
        worker = pool.acquire()
        init_ms: float | None = None
        reusable = False
        try:
            if worker is None:
                worker = Worker(function, self.environment(function))
                function.cold_starts += 1
                init_ms = worker.initialize()
                function.init_durations_ms.append(init_ms)
            deadline = time.monotonic() + function.timeout
            reply = worker.call(event, request_id, deadline)
            reusable = True
        finally:
            pool.release(worker, reusable=reusable)
        self._report(function, request_id, reply, init_ms)
        if reply.get("type") == "error":
            raise FunctionError(reply["error"])
        return reply.get("result")

    def _report(self, function: LocalFunction, request_id: str, reply: dict[str, Any], init_ms: float | None) -> None:
        duration = float(reply.get("duration_ms", 0))
        line = (
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {int(duration) + 1} ms"
            f"\tMemory Size: {function.memory} MB\tMax Memory Used: {reply.get('max_memory_mb', 0)} MB"
        )
        if init_ms is not None:
            line += f"\tInit Duration: {init_ms:.2f} ms"
        log.info("[%s] %s", function.name, line)

    def submit(self, name_or_arn: str, event: Any) -> tuple[LocalFunction, Future[Any]]:
        function = self.resolve(name_or_arn)
        function.invocations += 1
        # Events cross a JSON boundary in Lambda; so they do here (and must be JSON).
        event = json.loads(json.dumps(event))
        return function, self._pool.submit(self._run, function, event, str(uuid.uuid4()))

    def invoke(self, name_or_arn: str, event: Any, timeout: float | None = None) -> Any:
        """Synchronous invoke (RequestResponse). Raises FunctionError, FunctionTimeout or
        FunctionThrottled. `timeout` is the caller's own limit (API Gateway's 29 s): past it the
        caller gets FunctionTimeout while the invocation runs on to its end, as in AWS."""
        function, future = self.submit(name_or_arn, event)
        limit = min(timeout, function.timeout + INIT_LIMIT_S) if timeout else None
        try:
            return future.result(timeout=limit)
        except FutureTimeout as error:
            raise FunctionTimeout(f"{function.name}: no answer within {limit:g} s", by_function=False) from error

    def invoke_async(self, name_or_arn: str, event: Any) -> None:
        """Asynchronous invoke (Event): errors are logged, as Lambda would after its retries."""
        function, future = self.submit(name_or_arn, event)

        def _done(done: Future[Any]) -> None:
            error = done.exception()
            if error is not None:
                log.warning("async invocation of %s failed: %s", function.name, error)

        future.add_done_callback(_done)

    def warm_workers(self) -> dict[str, int]:
        return {name: len(pool.idle) for name, pool in self.pools.items()}

    def _reap(self) -> None:
        while not self._stopped.wait(min(5.0, self.idle_s)):
            for pool in list(self.pools.values()):
                reaped = pool.reap(self.idle_s)
                if reaped:
                    log.debug("reaped %d idle workers of %s", reaped, pool.function.name)

    def shutdown(self) -> None:
        self._stopped.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for pool in self.pools.values():
            pool.shutdown()


def _runtime_dir() -> Path:
    """What Lambda's Python runtime holds besides the standard library (boto3)."""
    return runtime_sdk_dir() / "python"


def _unzip(data: bytes, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(target)


def _layer_dir(data: bytes, target: Path) -> Path:
    """Where a layer's python/ directory is for this machine (see `local_layer_path`); only
    layers that run as shipped are unpacked."""
    marker_name = f"python/{DEPS_LAYER_MARKER}"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if marker_name in archive.namelist():
            return _local_deps_layer(json.loads(archive.read(marker_name)))
    _unzip(data, target)
    return target / "python"


def local_layer_path(python_dir: Path) -> Path:
    """A layer's python/ directory as this machine runs it. The dependency layer holds wheels for
    Lambda's interpreter; its stand-in is the same pins built for this one (`make build`), which
    must be the build of the very requirements the deployed layer was built from."""
    marker = python_dir / DEPS_LAYER_MARKER
    return _local_deps_layer(json.loads(marker.read_text())) if marker.exists() else python_dir


def _local_deps_layer(deployed: dict[str, Any]) -> Path:
    local_marker = local_deps_layer_dir() / "python" / DEPS_LAYER_MARKER
    local = json.loads(local_marker.read_text()) if local_marker.exists() else {}
    if local.get("requirements_sha256") != deployed.get("requirements_sha256"):
        raise RuntimeError(
            f"{local_deps_layer_dir()} was not built from the deployed layer's requirements; run `make build`"
        )
    return local_deps_layer_dir() / "python"


def hook_moto_invoke(runtime: LambdaRuntime) -> None:
    """Route moto's Lambda Invoke API (used by Step Functions tasks and by any SDK caller)
    to the local functions instead of moto's no-op 'simple' backend."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        event = json.loads(body) if body else {}
        if headers.get("X-Amz-Invocation-Type") == "Event":
            runtime.invoke_async(function_name, event)
            return b""
        try:
            result = runtime.invoke(function_name, event)
        except FunctionError as error:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(error.payload).encode()
        except FunctionTimeout as error:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorMessage": str(error), "errorType": "Sandbox.Timedout"}).encode()
        except FunctionThrottled as error:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorMessage": str(error), "errorType": "TooManyRequestsException"}).encode()
        return json.dumps(result).encode()

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
