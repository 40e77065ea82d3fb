"""Logging of every function: a powertools Logger whose lines never carry a secret query value.

URLs reach logs in many ways: an HTTP client's own INFO line (httpx logs every request with its
full URL), a retry warning of urllib3, an exception's text, a message or an extra field of ours.
A URL may hold a credential in its query (`?api_key=`, `?access_token=`, an issuer's JWKS URL
with `?code=`, a pre-signed URL's `X-Amz-Signature=`). So every function logs through
`service_logger()`, which

* sets the HTTP clients' loggers (httpx, httpcore, urllib3) to WARNING: their INFO and DEBUG
  lines are a URL per request and nothing we need;
* puts `RedactSecrets` on the function's handler and on the root logger's handlers (where
  library loggers propagate to), so whatever is logged, by whom, has the value of every
  secret-named `name=value` pair (and `"name": "value"` member, `<Name>value</Name>` element)
  replaced before it is written: in the message, its arguments, extra fields and the text of a
  logged exception. Which names are secret is gateway_core.secret_names, the same list that
  keeps credentials out of routes.

tests/unit/test_design_guards.py makes sure no function builds a Logger another way.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools import Logger

from gateway_core.secret_names import secret_spans

REDACTED = "[redacted]"
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3")
_MAX_DEPTH = 8


def redact(text: str) -> str:
    """`text` with the value of every secret-named `name=value` pair, `"name": "value"` member and
    `<Name>value</Name>` element replaced (the names: gateway_core.secret_names)."""
    spans = secret_spans(text)
    if not spans:
        return text
    out: list[str] = []
    done = 0
    for start, end in spans:
        out += [text[done:start], REDACTED]
        done = end
    return "".join([*out, text[done:]])


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact(value)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: _scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v, depth + 1) for v in value)
    return value


_OWN = frozenset({"msg", "args", "exc_info", "exc_text"})


class RedactSecrets(logging.Filter):
    """Rewrites a record in place, then lets it through. On a handler, it sees every record the
    handler writes, from any logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict) and not record.args:
            record.msg = _scrub(record.msg)  # powertools writes a dict message as an object
        else:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a malformed record: logging reports it, unchanged
                return True
            record.msg, record.args = redact(message), ()
        for name, value in list(vars(record).items()):
            if name not in _OWN and isinstance(value, str | dict | list | tuple):
                setattr(record, name, _scrub(value))
        if record.exc_info and record.exc_info[0] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            cleaned = redact(text)
            if cleaned != text:
                # The traceback as redacted text: the standard formatter appends `exc_text`,
                # powertools' writes the extra fields; neither sees the original any more.
                name = record.exc_info[0].__name__
                record.exc_info, record.exc_text = None, cleaned
                record.__dict__.update(exception=cleaned, exception_name=name)
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactSecrets()


def install(*handlers: logging.Handler) -> None:
    """The filter on the given handlers, the root logger's and logging's last resort (what a
    library's line goes to when nothing else is configured); the HTTP clients quietened.
    Idempotent."""
    for quiet in QUIET_LOGGERS:
        logging.getLogger(quiet).setLevel(logging.WARNING)
    targets = [*handlers, *logging.getLogger().handlers]
    if logging.lastResort is not None:
        targets.append(logging.lastResort)
    for handler in targets:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


def service_logger(**options: Any) -> Logger:
    """The function's powertools Logger (options as `Logger(...)`), redacting."""
    logger = Logger(**options)
    install(*logger.handlers)
    return logger
