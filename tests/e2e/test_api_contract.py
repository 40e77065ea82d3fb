"""The served OpenAPI document against what the API really answers: schemathesis generates
requests for every operation (the document's examples, random positive and negative data, and
stateful sequences; `make fuzz` adds every parameter's boundary and negative cases and more
examples) against a local runtime of its own, as an admin, with every check it has, and compares
each answer's status, media type, headers and body with the document.

One check cannot reach zero, by design of API Gateway: `unsupported_method` wants 405 for TRACE,
a method API Gateway's ANY does not stand for, so AWS answers it as an unknown route (404), and
so does the local runtime (README, "Errors"). The test holds that to TRACE alone.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator

import pytest

from tests.api_contract import run
from tests.e2e.conftest import RunningGateway, start_gateway, stop_gateway

ADMIN_KEY = "gk_local_" + secrets.token_urlsafe(32)
# Per operation and phase; `make fuzz` raises it and adds the coverage phase (boundary and
# negative cases of every parameter, about two minutes more than make test's budget allows).
MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "5"))
PHASES = os.environ.get("CONTRACT_PHASES", "examples,fuzzing,stateful")
# The operations whose credential the run does not hold: a bearer token, a client certificate.
NOT_AUTHENTICATED = {"GET /api/v1/whoami/token", "GET /api/v1/whoami/certificate"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    # Its own runtime: generated requests suspend, revoke and delete whatever they find.
    running = start_gateway(tmp_path_factory.mktemp("contract"), env={"GATEWAY_ADMIN_KEY": ADMIN_KEY})
    yield running
    stop_gateway(running)


def failures(report: str) -> list[tuple[str, str, str]]:
    """(operation, check code, schemathesis's account) of each failure it reports."""
    found: list[tuple[str, str, str]] = []
    parts = re.split(r"\n_{3,} (.+?) _{3,}\n", report)
    for operation, section in zip(parts[1::2], parts[2::2], strict=False):
        found += [(operation, code, section[:3000]) for code in re.findall(r"^- (ST\d+)", section, re.M)]
    return found


def test_every_answer_of_every_operation_conforms_to_the_served_document(gateway: RunningGateway) -> None:
    done = run(gateway.base_url, ADMIN_KEY, MAX_EXAMPLES, PHASES, seed=20261202)
    report = done.stdout + done.stderr
    summary = re.search(r"(\d+) generated", report)
    assert summary, report[-4000:]
    assert int(summary.group(1)) > 250, report[-4000:]
    unexpected = [f for f in failures(report) if not (f[0].startswith("TRACE ") and f[1] == "ST204")]
    assert not unexpected, "\n\n".join(f"{op} {code}\n{account}" for op, code, account in unexpected)
    assert done.returncode == 0 or failures(report), report[-4000:]  # a failing run names its failures
    # The admin stayed authenticated throughout: the run tested the operations, not the 401.
    refused = re.search(r"401 Unauthorized \(\d+ operations?\):\n((?:  - .+\n)+)", report)
    listed = set(re.findall(r"  - (.+)", refused.group(1))) if refused else set()
    assert listed <= NOT_AUTHENTICATED, report[-6000:]
