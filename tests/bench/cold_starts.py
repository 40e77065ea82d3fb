"""Cold starts through the local twin: the init phase of each shipped function, measured by the
same worker that serves `make local` (an isolated interpreter with only the function's assets and
layers), against a baseline function that only imports boto3 and powertools from the same layer,
in the same run. The ratio is what the cold-start budgets are about; the milliseconds move with
the machine."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from infra.app import STACK_NAME
from infra.local.assembly import shipped_functions
from infra.local.lambdas import LambdaRuntime, LocalFunction, Worker
from tests.bench import REPO_ROOT

_AWS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-east-1"}
BASELINE = "baseline (import boto3, aws_lambda_powertools)"


def _synthesize(outdir: Path) -> dict[str, Any]:
    subprocess.run(
        [sys.executable, "-m", "infra.local.synth", "infra.app:build_app", str(outdir)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    return dict(json.loads((outdir / f"{STACK_NAME}.template.json").read_text()))


def _baseline(like: LocalFunction, code_dir: Path) -> LocalFunction:
    code_dir.mkdir(parents=True, exist_ok=True)
    (code_dir / "baseline.py").write_text(
        "import boto3\nimport aws_lambda_powertools\n\n\ndef lambda_handler(event, context):\n    return None\n"
    )
    return LocalFunction(
        name=BASELINE,
        arn="arn:aws:lambda:us-east-1:123456789012:function:baseline",
        handler="baseline.lambda_handler",
        timeout=3,
        memory=like.memory,
        environment={},
        code_dir=code_dir,
        layer_dirs=like.layer_dirs,
    )


def _init_ms(function: LocalFunction, runtime: LambdaRuntime) -> float:
    worker = Worker(function, runtime.environment(function))
    try:
        return worker.initialize()
    finally:
        worker.kill()


def run(runs: int = 5) -> dict[str, Any]:
    runtime = LambdaRuntime(Path("unused"), {}, aws_environment=_AWS)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            template = _synthesize(Path(tmp) / "cdk.out")
            functions = shipped_functions(template, Path(tmp) / "cdk.out", STACK_NAME, lambda v: "x")
            with_layers = next(f for f in functions if f.layer_dirs)
            targets = [_baseline(with_layers, Path(tmp) / "baseline"), *functions]
            samples: dict[str, list[float]] = {t.name: [] for t in targets}
            for _ in range(runs):  # interleaved, so drift on a noisy machine hits every target alike
                for target in targets:
                    samples[target.name].append(_init_ms(target, runtime))
    finally:
        runtime.shutdown()
    baseline = statistics.median(samples[BASELINE])
    handlers = {f.name: f.handler for f in functions}
    return {
        "runs": runs,
        "baseline_ms": round(baseline, 1),
        "functions": {
            name: {
                "handler": handlers.get(name, "baseline.lambda_handler"),
                "init_ms_median": round(statistics.median(values), 1),
                "ratio": round(statistics.median(values) / baseline, 2),
            }
            for name, values in samples.items()
        },
    }


def table(section: dict[str, Any]) -> str:
    lines = [
        f"Cold start through the local twin (init phase, median of {section['runs']} workers)",
        f"{'function (logical id)':58} {'handler':48} {'init ms':>8} {'ratio':>6}",
    ]
    for name, row in sorted(section["functions"].items(), key=lambda item: item[1]["ratio"]):
        lines.append(f"{name[:58]:58} {row['handler'][:48]:48} {row['init_ms_median']:8.1f} {row['ratio']:5.2f}x")
    return "\n".join(lines)
