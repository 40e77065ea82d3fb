"""gateway_core.logs: whatever is logged, by our code or a library, never carries the value of a
secret-named query parameter; the HTTP clients' per-request lines are off; and every function
logs through it."""

from __future__ import annotations

import ast
import io
import itertools
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from gateway_core.logs import REDACTED, RedactSecrets, redact, service_logger

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


# -- whatever an extra field holds, the filter redacts what it can and never fails the call ---------


_LOGGERS = itertools.count()


class Pair(NamedTuple):
    url: str
    token: str


@dataclass
class Call:
    url: str
    password: str
    attempts: int = 1


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


class Exploding(list[str]):
    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("cannot be walked")


def _json_logger(name: str) -> tuple[Any, io.StringIO]:
    # A service name of its own: powertools keeps the first handler given for a name.
    stream = io.StringIO()
    unique = f"{name}-{next(_LOGGERS)}"
    return service_logger(service=unique, logger_handler=logging.StreamHandler(stream)), stream


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    "extra",
    [
        {"pair": Pair(f"https://h.example/?api_key={SECRET}&page=2", SECRET)},  # a NamedTuple
        {"pairs": [Pair("u", SECRET), (f"token={SECRET}",)]},
        {"call": Call(f"https://h.example/?access_token={SECRET}", SECRET)},  # a dataclass
        {"urls": {f"https://h.example/?client_secret={SECRET}"}},  # a set
        {"seen": frozenset({f"sig={SECRET}"})},
        {"request": {"headers": {"Authorization": f"Bearer {SECRET}"}, "body": {"auth": {"client_secret": SECRET}}}},
        {"token": SECRET, "api_keys": [SECRET, SECRET]},  # extra fields named like secrets
        {"text": f"{{'password': '{SECRET}'}}"},  # a dict's repr in a text
        {"deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"password": SECRET}}}}}}}}}}},
    ],
)
def test_extra_fields_of_any_shape_are_redacted_and_the_line_is_written(extra: dict[str, Any]) -> None:
    logger, stream = _json_logger("test-shapes")

    logger.info("calling upstream", extra={**extra, "ccy": "EUR"})

    (line,) = _lines(stream)
    assert SECRET not in stream.getvalue()
    assert (line["message"], line["ccy"]) == ("calling upstream", "EUR")


def test_a_named_tuple_keeps_its_type_and_other_tuples_become_plain_tuples() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "m", (), None)
    record.__dict__["pair"] = Pair(f"x?token={SECRET}", "t-1")
    record.__dict__["point"] = type("Point", (tuple,), {})(("a", f"key={SECRET}"))

    assert RedactSecrets().filter(record) is True

    assert record.__dict__["pair"] == Pair(f"x?token={REDACTED}", REDACTED)
    assert type(record.__dict__["point"]) is tuple
    assert record.__dict__["point"] == ("a", f"key={REDACTED}")


@pytest.mark.parametrize(
    "extra",
    [
        {"thing": Unprintable()},
        {"things": [Unprintable(), f"api_key={SECRET}"]},
        {"nested": {"thing": Unprintable(), "password": SECRET}},
        {"items": Exploding([f"api_key={SECRET}"])},
    ],
)
def test_a_field_that_cannot_be_read_is_dropped_not_the_line(extra: dict[str, Any]) -> None:
    logger, stream = _json_logger("test-unprintable")

    logger.info(f"fetching https://h.example/?api_key={SECRET}", extra={**extra, "ccy": "EUR"})

    (line,) = _lines(stream)
    assert SECRET not in stream.getvalue()
    assert line["ccy"] == "EUR"
    assert line["message"] == f"fetching https://h.example/?api_key={REDACTED}"
    assert "RuntimeError" in json.dumps(line)  # what was left out says why


def test_arguments_that_cannot_be_formatted_leave_a_redacted_line_and_nothing_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger, stream = _json_logger("test-args")

    logger.info("fetching %s with %s", f"https://h.example/?api_key={SECRET}", Unprintable())
    logger.info("two %s %s", f"token={SECRET}")  # one argument short

    lines = _lines(stream)
    assert len(lines) == 2
    assert SECRET not in stream.getvalue() + "".join(capsys.readouterr())
    assert all("fetching" in line["message"] or "two" in line["message"] for line in lines)


def test_an_exception_inside_the_filter_never_reaches_the_caller() -> None:
    class Hostile(logging.LogRecord):
        def getMessage(self) -> str:
            raise RuntimeError(f"password={SECRET}")

        def __getattribute__(self, name: str) -> Any:
            if name == "exc_info":
                raise RuntimeError("unreadable")
            return super().__getattribute__(name)

    record = Hostile("t", logging.INFO, __file__, 1, f"msg token={SECRET}", (), None)
    record.__dict__["detail"] = f"api_key={SECRET}"

    assert RedactSecrets().filter(record) is True
    assert SECRET not in json.dumps({k: str(v) for k, v in vars(record).items()})
