"""One Lambda execution environment: a process that imports one function's handler and runs its
invocations, one at a time.

Started by infra/local/lambdas.py as `python -I -S worker.py REQUEST_FD RESPONSE_FD`: isolated
(no user site, no PYTHON* variables) and without `site`, so nothing of the development
virtualenv is importable. The first message names the function's code directory and layers;
`sys.path` becomes those followed by the standard library, as /var/task, /opt/python and the
runtime are on Lambda. This file uses the standard library only and is not itself importable by
the function.

Messages in both directions are a 4-byte big-endian length and a JSON document. Standard output
and error stay the function's log stream.
"""

from __future__ import annotations

import decimal
import importlib
import json
import os
import resource
import struct
import sys
import time
import traceback
from typing import Any


def _read(fd: int) -> Any:
    header = _read_exactly(fd, 4)
    if header is None:
        return None
    (length,) = struct.unpack(">I", header)
    body = _read_exactly(fd, length)
    return None if body is None else json.loads(body)


def _read_exactly(fd: int, count: int) -> bytes | None:
    chunks = []
    while count:
        chunk = os.read(fd, min(count, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def _write(fd: int, message: dict[str, Any]) -> None:
    body = json.dumps(message, default=_lambda_json_default).encode()
    data = struct.pack(">I", len(body)) + body
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _lambda_json_default(value: Any) -> Any:
    # Lambda's Python runtime serializes Decimal results as numbers; anything else is an error.
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class LambdaContext:
    def __init__(self, config: dict[str, Any], request_id: str, deadline_ms: float) -> None:
        self.function_name = config["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = config["function_arn"]
        self.memory_limit_in_mb = int(config["memory"])
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{config['function_name']}"
        self.log_stream_name = config["log_stream_name"]
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _error(error: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "stackTrace": traceback.format_exception(error)[-5:],
    }


def _max_memory_mb() -> int:
    # VmHWM is this process's own peak; ru_maxrss would carry the forking runtime's over exec.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main(request_fd: int, response_fd: int) -> int:
    config = _read(request_fd)
    if config is None:
        return 1
    standard_library = [p for p in sys.path if p and "site-packages" not in p]
    sys.path[:] = [*config["sys_path"], *standard_library]
    os.chdir(config["code_dir"])
    module_name, _, attribute = config["handler"].rpartition(".")
    started = time.perf_counter()
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except Exception as error:  # noqa: BLE001 - reported as Lambda reports a failed init
        failure = _error(error, "Runtime.ImportModuleError")
        failure["errorMessage"] = f"Unable to import module '{module_name}': {error}"
        _write(response_fd, {"type": "init_error", "error": failure})
        return 1
    init_ms = (time.perf_counter() - started) * 1000
    _write(response_fd, {"type": "ready", "init_ms": init_ms, "max_memory_mb": _max_memory_mb()})
    while True:
        message = _read(request_fd)
        if message is None:
            return 0
        context = LambdaContext(config, message["request_id"], message["deadline_ms"])
        started = time.perf_counter()
        reply: dict[str, Any]
        try:
            reply = {"type": "result", "result": handler(message["event"], context)}
        except Exception as error:  # noqa: BLE001 - a function error is data for the caller
            reply = {"type": "error", "error": _error(error)}
        sys.stdout.flush()
        sys.stderr.flush()
        measured = {"duration_ms": (time.perf_counter() - started) * 1000, "max_memory_mb": _max_memory_mb()}
        try:
            _write(response_fd, {**reply, **measured})
        except (TypeError, ValueError) as error:  # the result is not JSON: Lambda's marshal error
            _write(response_fd, {"type": "error", "error": _error(error, "Runtime.MarshalError"), **measured})


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
