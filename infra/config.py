"""Facts about the deployment that the CDK app, the asset build and the local runtime share."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / "build"
FUNCTIONS_SRC = ROOT / "functions"
LAYER_SRC = ROOT / "layers"
STATE_MACHINES_DIR = Path(__file__).resolve().parent / "statemachines"

# The Lambda runtime's Python; wheels for the dependency layer are fetched for it.
LAMBDA_PYTHON_VERSION = "3.14"
LAMBDA_PLATFORM = "manylinux2014_x86_64"

# One Lambda function per folder under functions/ (the design card fixes these five).
FUNCTION_NAMES = ("authorizer", "routes", "integrations", "webhooks", "marketdata")


def function_asset_dir(name: str) -> Path:
    """Staged code of one function: build/functions/<name>/functions/<name>/..."""
    return BUILD_DIR / "functions" / name


def core_layer_asset_dir() -> Path:
    """Staged shared-code layer: build/layers/core/python/gateway_core/..."""
    return BUILD_DIR / "layers" / "core"


def deps_layer_asset_dir() -> Path:
    """Staged third-party dependency layer built for the Lambda runtime."""
    return BUILD_DIR / "layers" / "deps"


def handler_path(name: str) -> str:
    """Handler string of a function; the module lives at functions/<name>/handler.py."""
    return f"functions.{name}.handler.lambda_handler"
