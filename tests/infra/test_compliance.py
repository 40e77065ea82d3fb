"""cdk-nag (AwsSolutions) and cfn-lint on the synthesized template."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks

from infra.app import STACK_NAME
from infra.nag import ACKNOWLEDGMENTS


def test_nag_runs_on_the_real_app_and_reports_no_unacknowledged_findings(assembly_dir: Path) -> None:
    # build_app adds AwsSolutionsChecks; synth raises on any unacknowledged error, so reaching
    # here means none. The report shows the pack ran and records every acknowledgment.
    report = json.loads((assembly_dir / "validation-report.json").read_text())
    text = json.dumps(report)
    assert "AwsSolutions" in text
    assert report.get("success", True) is not False


def test_every_acknowledgment_has_a_reason() -> None:
    assert ACKNOWLEDGMENTS
    for path, rule, reason in ACKNOWLEDGMENTS:
        assert rule.startswith("AwsSolutions::AwsSolutions-"), rule
        assert len(reason) > 40, f"{path} {rule}: a reason says why"


def test_nag_fails_synth_for_an_unacknowledged_finding(tmp_path: Path) -> None:
    # Given a stack with a queue that breaks AwsSolutions rules (no DLQ, no TLS enforcement)
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "NagProbe")
    sqs.Queue(stack, "Plain")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
    # When it is synthesized, Then synthesis fails
    with pytest.raises(Exception, match=r"[Vv]alidation"):
        app.synth()


def test_cfn_lint_finds_no_errors(assembly_dir: Path) -> None:
    template = assembly_dir / f"{STACK_NAME}.template.json"
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "json", str(template)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    errors = [f for f in findings if f.get("Level") == "Error"]
    assert errors == [], errors
