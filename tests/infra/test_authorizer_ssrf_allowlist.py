"""The authorizers that fetch external issuers' JWKS get the SSRF guard's allowlist, the same one
the management API checks issuers' JWKS URLs against: empty unless an operator sets
`upstreamAllowCidrs` (then the same ranges in both places)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.app import STACK_NAME, build_app

TOKEN_VERIFIERS = ("JwtAuthorizerFunction", "GatewayAuthorizerFunction", "AdminAuthorizerFunction")


def _environments(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical: dict(resource["Properties"].get("Environment", {}).get("Variables", {}))
        for logical, resource in template_json["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }


def _env_of(environments: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    (env,) = [env for logical, env in environments.items() if name in logical]
    return env


def test_a_plain_deploy_lets_the_token_verifiers_reach_no_private_range(template_json: dict[str, Any]) -> None:
    environments = _environments(template_json)
    for name in TOKEN_VERIFIERS:
        assert _env_of(environments, name)["UPSTREAM_ALLOW_CIDRS"] == ""


def test_an_operators_allowlist_reaches_the_token_verifiers_and_the_management_api(tmp_path: Path) -> None:
    assembly = build_app(outdir=str(tmp_path), context={"upstreamAllowCidrs": "10.20.0.0/16"}).synth()
    environments = _environments(dict(assembly.get_stack_by_name(STACK_NAME).template))
    for name in (*TOKEN_VERIFIERS, "ManagementFunction"):
        assert _env_of(environments, name)["UPSTREAM_ALLOW_CIDRS"] == "10.20.0.0/16"
