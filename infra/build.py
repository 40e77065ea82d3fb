"""Stage Lambda assets without Docker.

* each function's code is copied to build/functions/<name>/functions/<name>/ so the handler is
  `functions.<name>.handler.lambda_handler` both in Lambda and in the local runtime;
* the shared code in layers/ becomes the core layer (build/layers/core/python/...);
* third-party packages become the dependency layer, installed with pip for the Lambda runtime's
  platform and Python (`--platform manylinux2014_x86_64 --only-binary=:all:`), so `cdk deploy`
  from any machine ships Lambda-compatible wheels.

The dependency layer is rebuilt only when requirements/lambda.txt changes (a stamp holds its hash).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from infra.config import (
    FUNCTION_NAMES,
    FUNCTIONS_SRC,
    LAMBDA_PLATFORM,
    LAMBDA_PYTHON_VERSION,
    LAYER_SRC,
    ROOT,
    core_layer_asset_dir,
    deps_layer_asset_dir,
    function_asset_dir,
)

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")


def _copy_tree(src: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dest, ignore=_IGNORE)


def stage_functions() -> None:
    for name in FUNCTION_NAMES:
        _copy_tree(FUNCTIONS_SRC / name, function_asset_dir(name) / "functions" / name)


def stage_core_layer() -> None:
    _copy_tree(LAYER_SRC / "gateway_core", core_layer_asset_dir() / "python" / "gateway_core")


def stage_deps_layer() -> None:
    requirements = ROOT / "requirements" / "lambda.txt"
    digest = hashlib.sha256(
        requirements.read_bytes() + f"{LAMBDA_PLATFORM}-{LAMBDA_PYTHON_VERSION}".encode()
    ).hexdigest()
    target = deps_layer_asset_dir()
    stamp = target.parent / "deps.sha256"
    if stamp.exists() and stamp.read_text() == digest and (target / "python").is_dir():
        return
    if target.exists():
        shutil.rmtree(target)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--platform",
            LAMBDA_PLATFORM,
            "--only-binary=:all:",
            "--python-version",
            LAMBDA_PYTHON_VERSION,
            "--implementation",
            "cp",
            "--target",
            str(target / "python"),
            "-r",
            str(requirements),
        ],
        check=True,
    )
    # Byte-code and pip metadata caches differ per build; leaving them out keeps the asset hash
    # stable, so an unchanged layer is not re-uploaded on every deploy.
    for cache in (target / "python").rglob("__pycache__"):
        shutil.rmtree(cache)
    stamp.write_text(digest)


def main() -> None:
    stage_deps_layer()
    stage_core_layer()
    stage_functions()
    print(f"staged Lambda assets under {function_asset_dir('x').parent.parent}")


if __name__ == "__main__":
    main()
