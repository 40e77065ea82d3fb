"""Runs schemathesis against a local runtime's served OpenAPI document, as the contract test
(tests/e2e/test_api_contract.py, bounded) and `make fuzz` (deeper) do: every check, positive and
negative generation, authenticated as an admin (schemathesis.toml). No request can lock out the
credential it is made with (functions/routes/logic/lockout.py), so the run keeps its key however
it mutates the API.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The checks and the admin header (from SCHEMATHESIS_ADMIN_KEY) are in the config anyone uses.
CONFIG = ROOT / "schemathesis.toml"


def command(base_url: str, max_examples: int, phases: str, seed: int | None = None) -> list[str]:
    st = str(Path(sys.executable).with_name("st"))
    found = [
        st,
        "--config-file",
        str(CONFIG),
        "run",
        # Every check schemathesis has (README, "API contract").
        "--checks",
        "all",
        f"{base_url}/api/v1/docs?format=json",
        "--url",
        base_url,
        "--mode",
        "all",
        "--phases",
        phases,
        "--max-examples",
        str(max_examples),
        "--workers",
        "2",
        "--no-color",
        "--generation-database",
        "none",
    ]
    if seed is not None:
        found += ["--seed", str(seed)]
    return found


def run(
    base_url: str, admin_key: str, max_examples: int, phases: str, seed: int | None = None
) -> subprocess.CompletedProcess[str]:
    """The run's outcome; the admin key goes through the environment, never a command line."""
    with tempfile.TemporaryDirectory() as home:
        return subprocess.run(
            command(base_url, max_examples, phases, seed),
            capture_output=True,
            text=True,
            timeout=1800,
            cwd=home,  # schemathesis writes its cassettes under the working directory
            env={**os.environ, "SCHEMATHESIS_ADMIN_KEY": admin_key},
            check=False,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description="schemathesis against a running local runtime")
    parser.add_argument("--url", default=os.environ.get("BASE", "http://127.0.0.1:8080"))
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    args = parser.parse_args()
    key = os.environ.get("ADMIN_KEY", "")
    if not key:
        admin = ROOT / ".local" / "admin.json"
        key = json.loads(admin.read_text())["api_key"] if admin.exists() else ""
    if not key:
        print("ADMIN_KEY (or a .local/admin.json from `make local`) is required", file=sys.stderr)
        return 2
    done = run(args.url, key, args.max_examples, args.phases)
    print(done.stdout + done.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
