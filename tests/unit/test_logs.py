"""gateway_core.logs: whatever is logged, by our code or a library, never carries the value of a
secret-named query parameter; the HTTP clients' per-request lines are off; and every function
logs through it."""

from __future__ import annotations

import ast
import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_core.logs import REDACTED, redact, service_logger

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-Value_42"
SECRET_NAMES = [
    "api_key",
    "apikey",
    "API_KEY",
    "Api-Key",
    "x-api-key",
    "apiKey",
    "api%5Fkey",
    "access_token",
    "accessToken",
    "refresh_token",
    "id_token",
    "token",
    "key",
    "secret",
    "client_secret",
    "clientSecret",
    "password",
    "passwd",
    "signature",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "X-Amz-Credential",
    "sig",
    "code",
    "authorization",
]
PLAIN_NAMES = ["country_code", "currency_code", "monkey", "page", "limit", "format", "keyword", "tokens_used"]


@pytest.mark.parametrize("name", SECRET_NAMES)
@pytest.mark.parametrize(
    "template",
    [
        "GET https://api.bank.example/v1/rates?{pair}",
        "GET https://api.bank.example/v1/rates?ccy=EUR&{pair}&page=2",
        'HTTP Request: GET http://127.0.0.1:8080/gw/x?a=1&{pair} "HTTP/1.1 200 OK"',
        "url=https://h.example/cb?{pair}#fragment",
        "refused {pair}, retrying",
        "Retrying after connection broken: /jwks?{pair};",
    ],
)
def test_a_secret_named_value_is_redacted_wherever_it_stands(name: str, template: str) -> None:
    for value in (SECRET, SECRET + "%2B%3D==", SECRET + "?x=1"):
        line = template.format(pair=f"{name}={value}")

        cleaned = redact(line)

        assert SECRET not in cleaned
        assert f"{name}={REDACTED}" in cleaned
        assert cleaned.replace(f"{name}={REDACTED}", "") == line.replace(f"{name}={value}", "")


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_other_values_are_kept(name: str) -> None:
    line = f"GET https://api.bank.example/v1/rates?{name}=EUR&page=2"
    assert redact(line) == line
    assert redact("nothing to see") == "nothing to see"
    assert redact("api_key= empty") == "api_key= empty"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """A handler on the root logger, as Lambda's runtime installs one before the function is
    imported; the logging configuration is restored afterwards."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "urllib3")}
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)
    for name, previous in quiet.items():
        logging.getLogger(name).setLevel(previous)


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def loopback() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_httpx_requests_with_secrets_in_the_url_leave_no_secret_in_the_logs(
    captured: io.StringIO, loopback: str
) -> None:
    # Given a function's logger, and httpx asked to log its requests anyway
    service_logger(service="test-httpx")
    url = f"{loopback}/jwks?api_key={SECRET}&access_token={SECRET}&ccy=EUR"
    httpx.get(url).raise_for_status()
    quiet = captured.getvalue()
    logging.getLogger("httpx").setLevel(logging.INFO)

    # When it requests a URL with secrets in its query
    httpx.get(url).raise_for_status()

    # Then the line is there without the secrets (and by default there is no line at all)
    assert "HTTP Request" not in quiet
    text = captured.getvalue()
    assert "HTTP Request: GET" in text
    assert "ccy=EUR" in text
    assert SECRET not in text


def test_our_own_lines_messages_arguments_extras_and_exceptions_are_redacted() -> None:
    # Given a function's logger writing JSON lines
    stream = io.StringIO()
    logger = service_logger(service="test-own", logger_handler=logging.StreamHandler(stream))
    url = f"https://idp.example/keys?client_secret={SECRET}&tenant=7"

    # When a URL with a secret is logged in every way a line can carry it
    logger.info("fetching %s", url)
    logger.info(f"fetched {url}")
    logger.warning("refresh failed", extra={"url": url, "detail": {"urls": [url]}})
    logger.info({"event": "jwks", "url": url})
    try:
        raise httpx.HTTPStatusError(f"Client error '404 Not Found' for url '{url}'", request=None, response=None)  # type: ignore[arg-type]
    except httpx.HTTPStatusError:
        logger.exception("jwks fetch failed")

    # Then nothing carries the secret, and each line keeps the rest
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 5
    assert SECRET not in stream.getvalue()
    assert all("tenant=7" in json.dumps(line) for line in lines)
    assert lines[4]["exception_name"] == "HTTPStatusError"
    assert "Traceback" in lines[4]["exception"]


def _logger_calls(path: Path) -> list[int]:
    """Lines of `Logger(...)` calls other than `Logger(child=True)`: loggers built past
    service_logger."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Logger":
            child = any(k.arg == "child" and getattr(k.value, "value", None) is True for k in node.keywords)
            if not child:
                found.append(node.lineno)
    return found


def test_every_function_logs_through_the_redacting_logger() -> None:
    sources = sorted([*(ROOT / "functions").rglob("*.py"), *(ROOT / "layers").rglob("*.py")])
    built = {str(path.relative_to(ROOT)) for path in sources if _logger_calls(path)}
    assert built == {"layers/gateway_core/logs.py"}


def test_the_guard_sees_a_logger_built_directly(tmp_path: Path) -> None:
    offender = tmp_path / "offender.py"
    offender.write_text("from aws_lambda_powertools import Logger\nlogger = Logger()\nchild = Logger(child=True)\n")
    assert _logger_calls(offender) == [2]
