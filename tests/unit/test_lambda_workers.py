"""A local worker (infra/local/lambdas.py) started from relative paths, as `make local`'s default
state directory `.local` gives them, and one whose process dies during init."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.local.lambdas import FunctionError, LambdaRuntime, LocalFunction, Worker


def _function(code_dir: Path, handler: str) -> LocalFunction:
    return LocalFunction(
        name="fn",
        arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
        handler=handler,
        timeout=3,
        memory=128,
        environment={},
        code_dir=code_dir,
        layer_dirs=[],
    )


def _runtime() -> LambdaRuntime:
    return LambdaRuntime(Path("runtime"), {}, aws_environment={"AWS_REGION": "us-east-1"})


def test_a_worker_runs_from_a_relative_code_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "state" / "fn").mkdir(parents=True)
    (tmp_path / "state" / "fn" / "app.py").write_text("def handler(event, context):\n    return {'seen': event}\n")
    monkeypatch.chdir(tmp_path)
    runtime = _runtime()
    assert runtime.work_dir.is_absolute()
    function = _function(Path("state/fn"), "app.handler")
    worker = Worker(function, runtime.environment(function))
    try:
        worker.initialize()
        import time

        reply = worker.call({"n": 1}, "req-1", time.monotonic() + 3)
    finally:
        worker.kill()
        runtime.shutdown()
    assert reply["result"] == {"seen": {"n": 1}}


def test_a_worker_that_dies_during_init_is_an_exit_error_at_once(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import os\nos._exit(7)\n")
    runtime = _runtime()
    function = _function(tmp_path, "app.handler")
    worker = Worker(function, runtime.environment(function))
    try:
        with pytest.raises(FunctionError) as failed:
            worker.initialize()
    finally:
        runtime.shutdown()
    assert failed.value.payload["errorType"] == "Runtime.ExitError"
    assert "exit status 7" in failed.value.payload["errorMessage"]
