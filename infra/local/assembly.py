"""Functions as a synthesized cloud assembly ships them, without deploying anything: each one's
code asset, layers in order and environment, ready for a local worker (infra/local/lambdas.py).
The import guard in `make test` and the cold-start benchmark start workers from these."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.local.lambdas import LocalFunction, local_layer_path


def _asset_dirs(assembly_dir: Path, stack_name: str) -> dict[str, Path]:
    """S3 object key of each file asset -> its staged directory in the cloud assembly."""
    manifest = json.loads((assembly_dir / f"{stack_name}.assets.json").read_text())
    found = {}
    for asset in manifest["files"].values():
        for destination in asset["destinations"].values():
            found[destination["objectKey"]] = assembly_dir / asset["source"]["path"]
    return found


def shipped_functions(
    template: dict[str, Any], assembly_dir: Path, stack_name: str, render: Any = str
) -> list[LocalFunction]:
    """Each AWS::Lambda::Function of the template, named by its logical id. `render` turns an
    unresolved environment value (Ref, GetAtt) into a string."""
    assets = _asset_dirs(assembly_dir, stack_name)
    resources = template.get("Resources", {})
    functions = []
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        layer_dirs = [
            local_layer_path(assets[resources[layer["Ref"]]["Properties"]["Content"]["S3Key"]] / "python")
            for layer in props.get("Layers", [])
        ]
        variables = props.get("Environment", {}).get("Variables", {})
        functions.append(
            LocalFunction(
                name=logical,
                arn=f"arn:aws:lambda:us-east-1:123456789012:function:{logical}",
                handler=props["Handler"],
                timeout=int(props.get("Timeout", 3)),
                memory=int(props.get("MemorySize", 128)),
                environment={k: v if isinstance(v, str) else render(v) for k, v in variables.items()},
                code_dir=assets[props["Code"]["S3Key"]],
                # A later layer overwrites an earlier one in /opt: it comes first on sys.path.
                layer_dirs=list(reversed(layer_dirs)),
            )
        )
    return functions
