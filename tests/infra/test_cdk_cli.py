"""`cdk synth` through the pinned CLI works offline and without Docker (assets are pre-staged)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"


def test_cdk_cli_synthesizes_the_app(tmp_path: Path) -> None:
    assert CDK.exists(), "run through make: it installs the pinned CDK CLI into node_modules"
    env = {
        **os.environ,
        "PATH": f"{CDK.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "--no-notices", "--output", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    template = json.loads((tmp_path / "out" / "FinanceGateway.template.json").read_text())
    assert any(r["Type"] == "AWS::ApiGateway::RestApi" for r in template["Resources"].values())
