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

import dataclasses
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from gateway_core.secret_names import is_secret_name, secret_spans

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


def _text(value: Any) -> str:
    """`str(value)`, or what it is when it has none (a `__str__` that raises)."""
    try:
        return str(value)
    except Exception as error:  # noqa: BLE001 - anything an object's __str__ may raise
        return _unloggable(value, error)


def _unloggable(value: Any, error: Exception) -> str:
    return f"[not logged: {type(value).__name__} ({type(error).__name__})]"


def _secret(name: Any, value: Any) -> bool:
    """A value under a secret name (a dict key, a field, an extra's own name): hidden whole,
    unless it is an object whose members carry their own names."""
    return (
        isinstance(name, str)
        and is_secret_name(name, member=True)
        and value is not None
        and not isinstance(value, bool | Mapping)
        and not dataclasses.is_dataclass(value)
    )


def _member(name: Any, value: Any, depth: int) -> Any:
    return REDACTED if _secret(name, value) else _scrub(value, depth + 1)


def _scrub(value: Any, depth: int = 0) -> Any:
    """`value` with every secret in it replaced, rebuilt as what a JSON line can write: a mapping
    or dataclass as a dict, a set as a list, a NamedTuple as itself (its fields by name), another
    tuple as a tuple; an object by its text when that text holds a secret (or cannot be had)."""
    if value is None or isinstance(value, bool | int | float | Decimal):
        return value
    if isinstance(value, str):
        return redact(value)
    if depth >= _MAX_DEPTH:
        return redact(_text(value))  # too deep to walk: its text, redacted
    if isinstance(value, Mapping):
        return {(redact(k) if isinstance(k, str) else k): _member(k, v, depth) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _member(f.name, getattr(value, f.name, None), depth) for f in dataclasses.fields(value)}
    fields = getattr(type(value), "_fields", None) if isinstance(value, tuple) else None
    if isinstance(fields, tuple):  # a NamedTuple
        items = [_member(name, item, depth) for name, item in zip(fields, value, strict=False)]
        try:
            return type(value)(*items)
        except Exception:  # noqa: BLE001 - a NamedTuple-like class whose constructor is its own
            return tuple(items)
    if isinstance(value, list | tuple | set | frozenset):
        items = [_scrub(item, depth + 1) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    try:
        text = str(value)
    except Exception as error:  # noqa: BLE001 - anything an object's __str__ may raise
        return _unloggable(value, error)  # the formatter would fail on it too: a note instead
    cleaned = redact(text)
    return value if cleaned == text else cleaned


# What every LogRecord has (and Formatter adds): not extra fields. The message, its arguments and
# the exception are redacted on their own; the other standard ones are ours (names, numbers).
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class RedactSecrets(logging.Filter):
    """Rewrites a record in place, then lets it through. On a handler, it sees every record the
    handler writes, from any logger. It never raises (logging does not catch what a filter raises:
    the caller's log call, and so its request, would fail): a field it cannot redact is replaced
    by a note of why, and a record it cannot handle at all keeps only its redacted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._redact(record)
        except Exception as error:  # noqa: BLE001 - see the class's docstring
            _last_resort(record, error)
        return True

    def _redact(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, Mapping) and not record.args:
            record.msg = _scrub(record.msg)  # powertools writes a dict message as an object
        else:
            try:
                message = record.getMessage()
            except Exception as error:  # noqa: BLE001 - arguments that do not format
                # Logging would print the record's arguments to stderr: the template only.
                message = f"{_text(record.msg)} [arguments not logged: {type(error).__name__}]"
            record.msg, record.args = redact(message), ()
        for name, value in list(vars(record).items()):
            if name in _STANDARD:
                continue
            try:
                setattr(record, name, _member(name, value, -1))
            except Exception as error:  # noqa: BLE001 - a field that cannot be walked
                setattr(record, name, _unloggable(value, error))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
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


def _last_resort(record: logging.LogRecord, error: Exception) -> None:
    """The record reduced to what is surely safe: its message template redacted (or a note), no
    arguments, no extra fields, no exception."""
    note = f"[log record not fully redacted: {type(error).__name__}]"
    try:
        message = f"{redact(_text(record.__dict__.get('msg')))} {note}"
    except Exception:  # noqa: BLE001 - nothing of it can be read: the note alone
        message = note
    extras = [name for name in list(record.__dict__) if name not in _STANDARD]
    for name in extras:
        record.__dict__.pop(name, None)
    record.__dict__.update(msg=message, args=(), exc_info=None, exc_text=None, stack_info=None)


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
