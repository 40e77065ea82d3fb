"""Synthesize the product app once (the real app: nag runs and must pass) for every infra test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.app import STACK_NAME, build_app


@pytest.fixture(scope="session")
def assembly_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("cdk.out")
    build_app(outdir=str(outdir)).synth()
    return outdir


@pytest.fixture(scope="session")
def template_json(assembly_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((assembly_dir / f"{STACK_NAME}.template.json").read_text())
    return data


@pytest.fixture(scope="session")
def template(template_json: dict[str, Any]) -> Template:
    return Template.from_json(template_json)
