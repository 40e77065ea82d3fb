"""`python -m infra.local` on a port another program holds: one line on stderr naming the port
and the setting that changes it, a non-zero exit, no traceback, for either listener."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# How long the runtime may take to give up (a hang fails here; never a timing assertion).
PATIENCE_S = 120


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _run(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.local", "--state-dir", str(state_dir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
        check=False,
    )


@pytest.mark.parametrize(
    ("listener", "setting"),
    [
        (["--tls-port", "-1", "--port"], "make local PORT="),
        (["--tls-port", "-1", "--port"], "--port"),
        (["--port", "0", "--tls-port"], "--tls-port"),
        (["--port", "0", "--tls-port"], "TLS_PORT="),
    ],
)
def test_a_port_in_use_is_one_line_naming_the_port_and_the_setting(
    busy_port: int, tmp_path: Path, listener: list[str], setting: str
) -> None:
    # Given a port another program listens on, when the runtime is asked to serve on it
    finished = _run(*listener, str(busy_port), state_dir=tmp_path)

    # Then it says so in one line and exits non-zero, having started nothing
    assert finished.returncode != 0
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert str(busy_port) in lines[0]
    assert setting in lines[0]
    assert "Traceback" not in finished.stderr + finished.stdout
    assert not (tmp_path / "cdk.out").exists()
