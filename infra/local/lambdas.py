"""Lambda, in-process: every function deployed into moto runs here, warm, one import each.

moto's Lambda runs no code without Docker. The runtime takes each function's configuration and
code from moto (handler, environment, timeout, the zip CloudFormation deployed, its layers),
unpacks the code once, imports the handler module once under the function's environment and
calls it for every invocation: API Gateway requests, SQS batches, schedules and Step Functions
tasks alike. moto's own Invoke API is routed here too (see `hook_moto_invoke`).
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.local import environ

log = logging.getLogger("local.lambda")

ACCOUNT_ID = "123456789012"


class FunctionError(Exception):
    """The function raised; carries the Lambda-style error payload."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("errorMessage", "function error"))
        self.payload = payload


class FunctionTimeout(Exception):
    """No answer in time. `by_function`: the function's own timeout ran out (Lambda reports an
    error), rather than the caller's shorter limit (API Gateway's 29 s)."""

    def __init__(self, message: str, *, by_function: bool) -> None:
        super().__init__(message)
        self.by_function = by_function


@dataclass
class LambdaContext:
    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


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
    _callable: Callable[[Any, Any], Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    invocations: int = 0


class LambdaRuntime:
    def __init__(self, work_dir: Path, base_environment: dict[str, str], max_concurrency: int = 64) -> None:
        self.work_dir = work_dir
        self.base_environment = base_environment
        self.functions: dict[str, LocalFunction] = {}
        self._by_arn: dict[str, LocalFunction] = {}
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="lambda")
        environ.install()

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
                    _unzip(version.code_bytes, target)
                    layer_cache[arn] = target / "python"
                layer_dirs.append(layer_cache[arn])
            self.add(
                LocalFunction(
                    name=fn.function_name,
                    arn=fn.function_arn,
                    handler=fn.handler,
                    timeout=int(fn.timeout),
                    memory=int(fn.memory_size),
                    environment=dict(fn.environment_vars or {}),
                    code_dir=code_dir,
                    layer_dirs=layer_dirs,
                )
            )

    def add(self, function: LocalFunction) -> None:
        self.functions[function.name] = function
        self._by_arn[function.arn] = function
        # Function code first, as in /var/task. Layers go after the virtualenv: the dependency
        # layer holds wheels built for the Lambda runtime's Python, while the virtualenv holds the
        # same pinned versions built for this one; shared code (gateway_core) is only in a layer.
        if str(function.code_dir) not in sys.path:
            sys.path.insert(0, str(function.code_dir))
        for layer in function.layer_dirs:
            if str(layer) not in sys.path:
                sys.path.append(str(layer))

    def resolve(self, name_or_arn: str) -> LocalFunction:
        if name_or_arn in self.functions:
            return self.functions[name_or_arn]
        base_arn = ":".join(name_or_arn.split(":")[:7])
        if base_arn in self._by_arn:
            return self._by_arn[base_arn]
        raise KeyError(f"no such function: {name_or_arn}")

    # -- invocation ---------------------------------------------------------------------
    def _environment(self, function: LocalFunction) -> dict[str, str]:
        env = dict(self.base_environment)
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": function.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
                "_HANDLER": function.handler,
                "LAMBDA_TASK_ROOT": str(function.code_dir),
                # X-Ray has no daemon here; powertools' Tracer becomes a no-op.
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )
        env.update(function.environment)
        return env

    def _load(self, function: LocalFunction) -> Callable[[Any, Any], Any]:
        if function._callable is not None:
            return function._callable
        with function._lock:
            if function._callable is None:
                module_name, _, attr = function.handler.rpartition(".")
                module = importlib.import_module(module_name)  # once per function: a warm container
                function._callable = getattr(module, attr)
        return function._callable

    def _run(self, function: LocalFunction, event: Any, request_id: str, deadline: float) -> Any:
        with environ.function_environment(self._environment(function)):
            handler = self._load(function)
            context = LambdaContext(
                function_name=function.name,
                function_version="$LATEST",
                invoked_function_arn=function.arn,
                memory_limit_in_mb=function.memory,
                aws_request_id=request_id,
                log_group_name=f"/aws/lambda/{function.name}",
                log_stream_name=f"local/{request_id}",
                deadline=deadline,
            )
            try:
                return handler(event, context)
            except Exception as error:
                raise FunctionError(
                    {
                        "errorMessage": str(error),
                        "errorType": type(error).__name__,
                        "stackTrace": traceback.format_exception(error)[-5:],
                    }
                ) from error

    def submit(self, name_or_arn: str, event: Any) -> tuple[LocalFunction, Future[Any], float]:
        function = self.resolve(name_or_arn)
        function.invocations += 1
        deadline = time.monotonic() + function.timeout
        request_id = str(uuid.uuid4())
        # Events cross a JSON boundary in Lambda; do the same so handlers never share objects.
        event = json.loads(json.dumps(event))
        return function, self._pool.submit(self._run, function, event, request_id, deadline), deadline

    def invoke(self, name_or_arn: str, event: Any, timeout: float | None = None) -> Any:
        """Synchronous invoke (RequestResponse). Raises FunctionError or FunctionTimeout."""
        function, future, _ = self.submit(name_or_arn, event)
        limit = min(timeout, function.timeout) if timeout else function.timeout
        try:
            result = future.result(timeout=limit)
        except FutureTimeout as error:
            # A Python thread cannot be killed: the call runs on, its result is dropped.
            raise FunctionTimeout(
                f"{function.name} timed out after {limit} s", by_function=limit >= function.timeout
            ) from error
        return json.loads(json.dumps(result)) if result is not None else None

    def invoke_async(self, name_or_arn: str, event: Any) -> None:
        """Asynchronous invoke (Event): errors are logged, as Lambda would after its retries."""
        function, future, _ = self.submit(name_or_arn, event)

        def _done(done: Future[Any]) -> None:
            error = done.exception()
            if error is not None:
                log.warning("async invocation of %s failed: %s", function.name, error)

        future.add_done_callback(_done)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _unzip(data: bytes, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(target)


def hook_moto_invoke(runtime: LambdaRuntime) -> None:
    """Route moto's Lambda Invoke API (used by Step Functions tasks and by any SDK caller)
    to the in-process functions instead of moto's no-op 'simple' backend."""
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
        return json.dumps(result).encode()

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
