"""Conditional requests on the management API (RFC 9110 section 13): every resource an admin
changes carries a version, shown as its `ETag` (`"<n>"`). A change of an existing resource names
the version it was based on in `If-Match` (or `*`: whatever is there now); the store's write is
conditioned on that same version, so the check and the write are one atomic step.

`expected` below is the version an `If-Match` named, None for `*` (any current version), or
ABSENT when a PUT or PATCH came without one: the resource exists (else it is a 404), so that is a
428 naming the ETag to send.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Literal, TypeAlias

from gateway_core.errors import Conflict, PreconditionFailed, PreconditionRequired

MISMATCH = "version_mismatch"


class _Absent(Enum):
    ABSENT = "absent"


ABSENT = _Absent.ABSENT
Expected: TypeAlias = int | Literal[_Absent.ABSENT] | None


class ConcurrentChange(Exception):
    """A store's conditional write failed: the item is no longer at the version read."""


@dataclass(frozen=True)
class Conditions:
    """The conditional headers of a request that may create or replace (PUT of a secret)."""

    if_match: bool = False  # sent at all
    version: int | None = None  # the version it names; None for `*`
    if_none_match_any: bool = False  # `If-None-Match: *`: only if nothing is there yet


def etag(version: int) -> str:
    return f'"{version}"'


def stale(what: str, current: int) -> PreconditionFailed:
    return PreconditionFailed(
        f"{what} is at version {current} (ETag {etag(current)}), not the one If-Match names: read it again "
        "with GET and retry with its ETag.",
        code=MISMATCH,
        extensions={"current_version": current},
    )


def required(what: str) -> PreconditionRequired:
    return PreconditionRequired(
        f"{what} exists: send If-Match with the ETag a GET of it answered (If-Match: * overwrites whatever "
        "is there), so that a change made meanwhile by someone else is not overwritten.",
    )


def check(what: str, current: int, expected: Expected) -> None:
    """428 without If-Match, 412 when it named a version other than the current one."""
    if expected is ABSENT:
        raise required(what)
    if expected is not None and expected != current:
        raise stale(what, current)


@contextmanager
def no_lost_update(what: str, expected: Expected) -> Iterator[None]:
    """A conditional write that lost a race: the resource changed between the read and the write.
    With a version in If-Match that precondition no longer holds (412); with `*`, or where no
    If-Match is taken (the POST actions), the server's own read-modify-write lost (409)."""
    try:
        yield
    except ConcurrentChange as error:
        if isinstance(expected, int):
            raise PreconditionFailed(
                f"{what} changed meanwhile: it is no longer at version {expected}; read it again with GET "
                "and retry with its ETag.",
                code=MISMATCH,
            ) from error
        raise Conflict(f"{what} changed meanwhile; read it again and retry.", code="concurrent_change") from error
