"""A validating pattern anchored with `$` and used with `.match` or `.search` lets a trailing
newline through (Python's `$` also matches before a final "\\n"): `X-Trace\\n` passed as a header
name, `https://bank.example\\n` as an origin, `ops@bank.example\\n` as an e-mail, `orders\\n` as a
path segment. The rule: such patterns are used with `.fullmatch` (or end in `\\Z`), checked on the
product's source; and each field that had the gap refuses the newline now."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from functions.routes.logic import clients, paths
from functions.routes.logic.catalog import RateLimits
from functions.routes.logic.gateways import CorsSpec
from gateway_core.errors import ValidationFailed

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "functions").rglob("*.py"), *(ROOT / "layers").rglob("*.py")])


def _loose_uses(path: Path, root: Path = ROOT) -> list[str]:
    """`NAME.match(` / `NAME.search(` where NAME is a compiled pattern ending in a bare `$`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    dollar: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "attr", None) == "compile"
            and node.value.args
            and isinstance(node.value.args[0], ast.Constant)
            and isinstance(node.value.args[0].value, str)
        ):
            pattern = node.value.args[0].value
            # `\s*$` and `\s+$` take a trailing newline by design: no gap there.
            if pattern.endswith("$") and not pattern.endswith(("\\$", "\\s*$", "\\s+$")):
                dollar |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return [
        f"{path.relative_to(root)}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("match", "search")
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in dollar
    ]


def test_no_dollar_anchored_pattern_is_used_with_match_or_search() -> None:
    assert [use for path in SOURCES for use in _loose_uses(path)] == []


def test_the_guard_sees_a_loose_use(tmp_path: Path) -> None:
    offender = tmp_path / "offender.py"
    offender.write_text('import re\n_X = re.compile(r"^a$")\nok = _X.fullmatch("a")\nbad = _X.match("a")\n')
    assert _loose_uses(offender, tmp_path) == ["offender.py:4"]


@pytest.mark.parametrize(
    "cors",
    [
        {"allow_origins": ["https://bank.example\n"]},
        {"allow_origins": ["*"], "allow_headers": ["X-Trace\n"]},
        {"allow_origins": ["*"], "expose_headers": ["X-Trace\n"]},
    ],
)
def test_cors_settings_with_a_trailing_newline_are_refused(cors: dict[str, list[str]]) -> None:
    with pytest.raises(ValidationError):
        CorsSpec.model_validate(cors)


@pytest.mark.parametrize("path", ["/orders\n", "/orders/{id}\n", "/{id}\n/x"])
def test_a_path_segment_with_a_trailing_newline_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match="neither a literal nor"):
        paths.parse_template(path)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("contact_email", "ops@bank.example\n", "invalid_email"),
        ("allowed_endpoints", ["/payments\n"], "invalid_endpoint"),
    ],
)
def test_client_fields_with_a_trailing_newline_are_refused(field: str, value: object, code: str) -> None:
    spec = clients.ClientSpec(
        name="Acme",
        description="",
        client_type="integration",
        organization="",
        contact_email="ops@bank.example",
        allowed_scopes=["data:read"],
        allowed_endpoints=[],
        ip_allowlist=[],
        tier="free",
        rate_limits=RateLimits(1, 2, 3),
        monthly_quota=None,
        expires_at=None,
    )
    with pytest.raises(ValidationFailed) as caught:
        clients.validate(spec.__class__(**{**spec.__dict__, field: value}), datetime.now(UTC))
    assert caught.value.code == code
