"""Stage Lambda assets without Docker.

* each function's code is copied to build/functions/<name>/functions/<name>/ so the handler is
  `functions.<name>.handler.lambda_handler` both in Lambda and in the local runtime;
* the shared code in layers/ becomes the core layer (build/layers/core/python/...);
* third-party packages become the dependency layer, installed with pip for the Lambda runtime's
  platform and Python (`--platform manylinux2014_x86_64 --only-binary=:all:`), so `cdk deploy`
  from any machine ships Lambda-compatible wheels. Transitive versions come from
  requirements/constraints.txt, so nothing floats between builds;
* the same pins installed for this machine's interpreter (build/layers/deps-local/): the local
  runtime's workers import from it in place of the Lambda layer, so a package missing from the
  layer is missing locally too;
* the SDK that Lambda's Python runtime itself provides (boto3 and what it needs, at our pins;
  build/runtime/python), placed after the layers as /var/runtime is in Lambda.

Each installed directory is rebuilt only when its inputs change (a stamp holds their hash).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from infra.config import (
    DEPS_LAYER_MARKER,
    FUNCTION_NAMES,
    FUNCTIONS_SRC,
    LAMBDA_PLATFORM,
    LAMBDA_PYTHON_VERSION,
    LAYER_SRC,
    ROOT,
    RUNTIME_SDK_PACKAGES,
    core_layer_asset_dir,
    deps_layer_asset_dir,
    function_asset_dir,
    local_deps_layer_dir,
    runtime_sdk_dir,
)

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")
REQUIREMENTS = ROOT / "requirements" / "lambda.txt"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"


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


def requirements_digest() -> str:
    """What the dependency layer is built from: the pins and the constraints."""
    return hashlib.sha256(REQUIREMENTS.read_bytes() + CONSTRAINTS.read_bytes()).hexdigest()


def pip_install_command(target: Path, requirements: list[str], *, lambda_platform: bool) -> list[str]:
    """pip for one installed directory; always under the constraints file."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    if lambda_platform:
        command += [
            "--platform",
            LAMBDA_PLATFORM,
            "--only-binary=:all:",
            "--python-version",
            LAMBDA_PYTHON_VERSION,
            "--implementation",
            "cp",
        ]
    return [*command, "--target", str(target), "-c", str(CONSTRAINTS), *requirements]


def _install(target: Path, requirements: list[str], digest: str, *, lambda_platform: bool) -> bool:
    stamp = target.parent / f"{target.name}.sha256"
    if stamp.exists() and stamp.read_text() == digest and (target / "python").is_dir():
        return False
    if target.exists():
        shutil.rmtree(target)
    subprocess.run(pip_install_command(target / "python", requirements, lambda_platform=lambda_platform), check=True)
    # Byte-code and pip metadata caches differ per build; leaving them out keeps the asset hash
    # stable, so an unchanged layer is not re-uploaded on every deploy.
    for cache in (target / "python").rglob("__pycache__"):
        shutil.rmtree(cache)
    stamp.write_text(digest)
    return True


def _marker(target: Path) -> None:
    """Names the layer and the pins it holds, so the local runtime can tell it apart and find
    the build of the same pins for this machine's interpreter."""
    (target / "python" / DEPS_LAYER_MARKER).write_text(
        json.dumps({"requirements_sha256": requirements_digest()}, indent=2) + "\n"
    )


def stage_deps_layer() -> None:
    target = deps_layer_asset_dir()
    digest = hashlib.sha256(f"{requirements_digest()}-{LAMBDA_PLATFORM}-{LAMBDA_PYTHON_VERSION}".encode()).hexdigest()
    _install(target, ["-r", str(REQUIREMENTS)], digest, lambda_platform=True)
    _marker(target)


def stage_local_deps_layer() -> None:
    target = local_deps_layer_dir()
    digest = hashlib.sha256(f"{requirements_digest()}-{sys.version}".encode()).hexdigest()
    _install(target, ["-r", str(REQUIREMENTS)], digest, lambda_platform=False)
    _marker(target)


def stage_runtime_sdk() -> None:
    target = runtime_sdk_dir()
    digest = hashlib.sha256(f"{','.join(RUNTIME_SDK_PACKAGES)}-{CONSTRAINTS.read_text()}-{sys.version}".encode())
    _install(target, list(RUNTIME_SDK_PACKAGES), digest.hexdigest(), lambda_platform=False)


def main() -> None:
    stage_deps_layer()
    stage_local_deps_layer()
    stage_runtime_sdk()
    stage_core_layer()
    stage_functions()
    print(f"staged Lambda assets under {function_asset_dir('x').parent.parent}")


if __name__ == "__main__":
    main()
