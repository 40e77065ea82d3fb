"""The data plane's view of upstream secrets (logic/secrets.py): the values a route sends upstream,
decrypted once per container and version, and checked again after a short time so that a new
value or a deletion takes effect within `CHECK_SECONDS`.

Per secret: while its value is younger than `CHECK_SECONDS` it is used as it is; after that one
read of the item tells whether it changed, by its ciphertext (a digest of it is kept): only a new
ciphertext is decrypted. Not by its version number: a secret deleted and set again starts over at
version 1, so a number seen before may stand for another value. A ciphertext cannot: it decrypts
to one value only (and KMS gives a new one on every encryption, so each put is seen as a change). A secret that is gone, or that cannot be decrypted, fails the call with a 502
`secret_unavailable` naming the secret, never its value. Values live in this process's memory
only: they are never logged, cached in DynamoDB or put in a request log (which records the
caller's request, not the upstream's).

Stdlib only, and the templates are imported only for routes that use secrets: this module is on
the data plane's cold path.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

from gateway_core.errors import UpstreamError

CHECK_SECONDS = 30.0
MAX_ENTRIES = 1024


def encryption_context(gateway_id: str, name: str) -> dict[str, str]:
    """What a secret's ciphertext is bound to: decrypting it for another gateway or name fails."""
    return {"gateway_id": gateway_id, "secret_name": name}


class SecretUnavailable(UpstreamError):
    """502: the route's upstream credential cannot be had (deleted, or not decryptable)."""

    code = "secret_unavailable"


class Sealed(NamedTuple):
    ciphertext: bytes


class SecretSource(Protocol):
    """The stored secrets (dal/secret_reader.py)."""

    def sealed(self, gateway_id: str, name: str) -> Sealed | None:
        """The secret's current ciphertext; None when it does not exist."""
        ...

    def unseal(self, gateway_id: str, name: str, ciphertext: bytes) -> str:
        """The value; SecretUnavailable when it cannot be decrypted."""
        ...


class _Entry(NamedTuple):
    sealed_digest: bytes  # of the ciphertext the value came from
    value: str
    checked_at: float


class SecretValues:
    """One per container (built by proxy_bootstrap.py); safe to share between a batch's threads."""

    def __init__(
        self,
        source: SecretSource,
        *,
        check_seconds: float = CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.source = source
        self.check_seconds = check_seconds
        self.clock = clock
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def values(self, gateway_id: str, names: Iterable[str]) -> dict[str, str]:
        return {name: self.value(gateway_id, name) for name in sorted(names)}

    def value(self, gateway_id: str, name: str) -> str:
        key = (gateway_id, name)
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now - entry.checked_at < self.check_seconds:
            return entry.value
        sealed = self.source.sealed(gateway_id, name)
        if sealed is None:
            with self._lock:
                self._entries.pop(key, None)
            raise SecretUnavailable(
                f"The upstream credential '{name}' this route uses is not set on its gateway.",
                extensions={"secret": name},
            )
        digest = hashlib.sha256(sealed.ciphertext).digest()
        if entry is not None and entry.sealed_digest == digest:
            fresh = entry._replace(checked_at=now)  # the same ciphertext: the same value, no decryption
        else:
            fresh = _Entry(digest, self.source.unseal(gateway_id, name, sealed.ciphertext), now)
        with self._lock:
            self._entries[key] = fresh
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return fresh.value


def _mentions_secrets(*templates: Any) -> bool:
    return any(t is not None and "secrets" in str(t) for t in templates)


def referenced(transform: Any, graphql: Any) -> frozenset[str]:
    """The secrets a deployed route sends upstream: its request header and query rules, request
    body template and GraphQL variables (the only places a route may name them)."""
    headers, query, body = (
        (transform.headers, transform.query, transform.body) if transform is not None else (None, None, None)
    )
    variables = graphql.variables if graphql is not None else None
    if not _mentions_secrets(headers, query, body, variables):
        return frozenset()
    from functions.routes.logic.transform import rules, templates

    return (
        rules.secret_references(headers)
        | rules.secret_references(query)
        | templates.secret_references(body)
        | templates.secret_references(variables)
    )
