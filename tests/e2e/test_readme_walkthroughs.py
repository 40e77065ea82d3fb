"""The README's marked shell walkthroughs, run as written against a fresh local runtime (only its
ports and state directory substituted), so an example that drifts from the API fails the build:
every request answers 2xx except the one the README says is refused, the proxied call reaches the
loopback upstream, and nothing is written into the directory they run from."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import ROOT, RunningGateway, start_gateway, stop_gateway

MARK = "<!-- walkthrough:"
# Each request's status and URL on stderr (curl's %{stderr}), the README's own output untouched.
CURL = "curl() { command curl -w '%{stderr}STATUS %{http_code} %{url_effective}\\n' \"$@\"; }\n"
PATIENCE_S = 240


def walkthroughs(readme: str) -> list[str]:
    """The ```sh blocks right after a walkthrough mark, in README order."""
    return re.findall(r"^" + re.escape(MARK) + r"[^\n]*\n```sh\n(.*?)^```", readme, re.S | re.M)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def fresh_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    # Its own runtime: the walkthroughs make clients and gateways whose names are unique.
    gateway = start_gateway(tmp_path_factory.mktemp("readme-runtime"))
    yield gateway
    stop_gateway(gateway)


def test_the_readme_walkthroughs_run_as_written(fresh_gateway: RunningGateway, tmp_path: Path) -> None:
    # Given the marked blocks, pointed at this runtime instead of make local's defaults
    blocks = walkthroughs((ROOT / "README.md").read_text())
    assert len(blocks) >= 3
    api, tls = urlsplit(fresh_gateway.base_url), urlsplit(fresh_gateway.tls_url)
    script = "\n".join(blocks)
    for old, new in (
        ("127.0.0.1:8080", f"127.0.0.1:{api.port}"),
        ("127.0.0.1:8443", f"127.0.0.1:{tls.port}"),
        (".local/", f"{fresh_gateway.state_dir}/"),
        ("9000", str(_free_port())),
        # the walkthroughs run from a scratch directory, not the repository root
        (".venv/bin/python", sys.executable),
    ):
        script = script.replace(old, new)
    workdir, scratch = tmp_path / "cwd", tmp_path / "tmp"
    workdir.mkdir()
    scratch.mkdir()

    # When they run in one shell, stopping at the first failing command
    process = subprocess.Popen(
        ["bash", "-c", "set -euo pipefail\n" + CURL + script],
        cwd=workdir,
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=PATIENCE_S)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the upstream, if a block failed before its kill

    # Then every command succeeded, every request but the README's refused one answered 2xx
    assert process.returncode == 0, err[-2000:]
    statuses = re.findall(r"^STATUS (\d{3}) (\S+)$", err, re.M)
    refused = [(status, url) for status, url in statuses if not status.startswith("2")]
    assert refused == [("401", f"{fresh_gateway.base_url}/api/v1/whoami/token")], err[-2000:]
    assert len(statuses) >= 15
    # the proxied call reached the loopback upstream, and nothing was written where they ran
    assert '{"order_id":"42","status":"shipped"}' in out
    # the webhooks walkthrough: each delivery verified by the Standard Webhooks library (the last
    # with the new and the old secret), the failed first attempt retried, and key.rotated delivered
    assert out.count("verified: key.rotated") == 4, out[-2000:]
    assert '{"attempt":1,"status_code":500,"outcome":"failure"}' in out
    assert '{"attempt":2,"status_code":204,"outcome":"success"}' in out
    assert "key.rotated of key " in out
    assert list(workdir.iterdir()) == []
