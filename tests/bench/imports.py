"""Cold-start import time of each function's handler module, relative to boto3 (+ powertools).

Every sample is a fresh interpreter. The child times `importlib.import_module` with
`time.perf_counter` and prints the result, so interpreter start-up is left out of the number the
ratios use (the parent's wall clock of the whole process is reported next to it). Baselines are
measured in the same run, interleaved with the handlers, so machine noise hits them alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from infra.config import LAMBDA_FUNCTIONS, local_deps_layer_dir, runtime_sdk_dir
from tests.bench import LAYERS_DIR, REPO_ROOT
from tests.bench.report import format_table, median

# Every function of the stack (infra/config.py), by its handler module, and the budget of its cold
# import as a ratio to the baseline below (README, "Benchmarks"): what the function's job is worth.
HANDLER_MODULES = tuple(f"functions.{folder}.{module}" for _, folder, module in LAMBDA_FUNCTIONS)
BUDGETS: dict[str, float] = {
    "api_key_authorizer": 1.5,
    "jwt_authorizer": 1.8,  # PyJWT and cryptography verify the signature
    "mtls_authorizer": 1.5,
    "gateway_authorizer": 1.8,
    "admin_authorizer": 1.8,  # the API key and JWT checks
    "proxy": 1.5,  # the data plane: its pipeline only
    "management": 3.0,  # the resolver with validation, pydantic models, OpenAPI
    "oauth": 2.0,  # PyJWT assembles the tokens KMS signs
    "health": 1.5,
    "integrations": 1.3,  # no API yet: a 404 problem must not cost a cold start
    "webhooks": 3.0,  # the resolver with validation and pydantic models, as management
    "webhook_fanout": 1.5,  # the batch utility and the filter evaluation (no pydantic)
    # the async batch utility (asyncio), the rate limiter, ssl for the guarded pool; cryptography
    # only for v1a endpoints, at their first delivery
    "webhook_delivery": 1.8,
    "marketdata": 1.3,
}
FUNCTION_OF = {f"functions.{folder}.{module}": name for name, folder, module in LAMBDA_FUNCTIONS}
BASELINE = "boto3 + aws_lambda_powertools"
BOTO3_ONLY = "boto3"
TARGETS: dict[str, tuple[str, ...]] = {
    BASELINE: ("boto3", "aws_lambda_powertools"),
    BOTO3_ONLY: ("boto3",),
    **{module: (module,) for module in HANDLER_MODULES},
    # The JWT check's own module, apart from the handler's set-up.
    "functions.authorizer.jwt_token": ("functions.authorizer.jwt_token",),
}

_CHILD = """\
import importlib, json, sys, time
started = time.perf_counter()
for name in sys.argv[1:]:
    importlib.import_module(name)
elapsed = (time.perf_counter() - started) * 1000
print(json.dumps({"import_ms": elapsed, "modules_loaded": len(sys.modules)}))
"""

# Environment a function gets in Lambda, minus anything that would point boto3 elsewhere.
_CHILD_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_EC2_METADATA_DISABLED": "true",
}
# PYTHONDONTWRITEBYTECODE would make every sample compile our sources again (the installed
# packages come with byte code): the ratios would measure the compiler, not the imports.
_DROPPED_ENV = (
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONDONTWRITEBYTECODE",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
)
_CHILD_TIMEOUT_S = 120


@dataclass
class ImportSamples:
    modules: tuple[str, ...]
    import_ms: list[float] = field(default_factory=list)
    process_ms: list[float] = field(default_factory=list)
    modules_loaded: int = 0
    errors: list[str] = field(default_factory=list)


def shipped_packages() -> list[str]:
    """Where the children import third-party packages from, as Lambda would: the dependency
    layer's pins built for this interpreter and the runtime's SDK (`make build` stages both), so
    that a development tool the virtualenv holds (httpx imports click and pygments when they are
    installed) weighs on no ratio. Empty before a build: the virtualenv's packages are used."""
    found = [local_deps_layer_dir() / "python", runtime_sdk_dir() / "python"]
    return [str(path) for path in found] if all(path.is_dir() for path in found) else []


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update(_CHILD_ENV)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(LAYERS_DIR), *shipped_packages()])
    return env


def measure_once(modules: tuple[str, ...], env: dict[str, str]) -> tuple[float, float, int]:
    """(in-child import ms, whole-process wall ms, modules in sys.modules) of one fresh interpreter."""
    started = time.perf_counter()
    # -S: no site-packages, when the shipped packages are on the path instead.
    isolated = ["-S"] if shipped_packages() else []
    done = subprocess.run(
        [sys.executable, *isolated, "-c", _CHILD, *modules],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=_CHILD_TIMEOUT_S,
        check=False,
    )
    process_ms = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"exit {done.returncode}: {tail}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["import_ms"]), process_ms, int(result["modules_loaded"])


def run(runs: int = 5) -> dict[str, Any]:
    env = child_env()
    samples = {name: ImportSamples(modules) for name, modules in TARGETS.items()}
    # Round 0 is discarded: it fills the page cache and writes any missing .pyc files.
    for round_no in range(runs + 1):
        for sample in samples.values():
            if sample.errors:
                continue
            try:
                import_ms, process_ms, loaded = measure_once(sample.modules, env)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError) as error:
                sample.errors.append(f"{type(error).__name__}: {error}")
                continue
            if round_no == 0:
                continue
            sample.import_ms.append(import_ms)
            sample.process_ms.append(process_ms)
            sample.modules_loaded = loaded

    baseline_ms = median(samples[BASELINE].import_ms) if samples[BASELINE].import_ms else None
    boto3_ms = median(samples[BOTO3_ONLY].import_ms) if samples[BOTO3_ONLY].import_ms else None
    results: dict[str, Any] = {}
    for name, sample in samples.items():
        entry: dict[str, Any] = {"modules": list(sample.modules), "runs": len(sample.import_ms)}
        if sample.errors:
            entry["error"] = sample.errors[0]
        if sample.import_ms:
            module_ms = median(sample.import_ms)
            entry.update(
                {
                    "median_import_ms": round(module_ms, 2),
                    "median_process_ms": round(median(sample.process_ms), 2),
                    "min_import_ms": round(min(sample.import_ms), 2),
                    "max_import_ms": round(max(sample.import_ms), 2),
                    "modules_loaded": sample.modules_loaded,
                    "ratio_vs_baseline": round(module_ms / baseline_ms, 3) if baseline_ms else None,
                    "function": FUNCTION_OF.get(name),
                    "budget_vs_baseline": BUDGETS.get(FUNCTION_OF.get(name, "")),
                    "ratio_vs_boto3": round(module_ms / boto3_ms, 3) if boto3_ms else None,
                    "samples_import_ms": [round(v, 3) for v in sample.import_ms],
                }
            )
        results[name] = entry
    return {
        "method": "fresh interpreter per sample; perf_counter around importlib.import_module in the child; median",
        "packages": "shipped (dependency layer and runtime SDK)" if shipped_packages() else "virtualenv",
        "runs": runs,
        "baseline": BASELINE,
        "baseline_median_ms": round(baseline_ms, 2) if baseline_ms else None,
        "boto3_median_ms": round(boto3_ms, 2) if boto3_ms else None,
        "results": results,
    }


def table(section: dict[str, Any]) -> str:
    headers = [
        "module",
        "median ms",
        "min ms",
        "max ms",
        "process ms",
        "modules",
        "x baseline",
        "x boto3",
        "budget",
    ]
    rows: list[list[Any]] = []
    for name, entry in section["results"].items():
        if "median_import_ms" not in entry:
            rows.append([name, "error", "", "", "", "", "", "", ""])
            continue
        rows.append(
            [
                name,
                entry["median_import_ms"],
                entry["min_import_ms"],
                entry["max_import_ms"],
                entry["median_process_ms"],
                entry["modules_loaded"],
                _ratio(entry["ratio_vs_baseline"]),
                _ratio(entry["ratio_vs_boto3"]),
                _budget(entry.get("ratio_vs_baseline"), entry.get("budget_vs_baseline")),
            ]
        )
    title = (
        f"Cold-start import (fresh interpreter, median of {section['runs']}; "
        f"baseline = import {section['baseline'].replace(' + ', ', ')}; packages: {section['packages']})"
    )
    text = format_table(title, headers, rows)
    errors = [f"  ! {name}: {entry['error']}" for name, entry in section["results"].items() if "error" in entry]
    return "\n".join([text, *errors])


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _budget(ratio: float | None, budget: float | None) -> str:
    """The function's budget and whether this run kept to it (noise moves ratios by ~0.2x)."""
    if budget is None:
        return ""
    if ratio is None:
        return f"<= {budget:.1f}x"
    return f"<= {budget:.1f}x {'ok' if ratio <= budget else 'OVER'}"
