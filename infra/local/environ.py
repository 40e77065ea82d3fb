"""Per-invocation environment variables for functions that share one process.

Lambda gives each function its own environment. Here every function runs in-process, so
`os.environ` is replaced by a mapping that overlays the running function's variables (held in a
ContextVar, so concurrent invocations on other threads see their own) on the process
environment. Code reading `os.environ`/`os.getenv` sees the function's view. Threads a function
starts itself begin without the overlay and see only the process environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_overlay: ContextVar[dict[str, str] | None] = ContextVar("function_environment", default=None)


class OverlayEnviron(MutableMapping[str, str]):
    def __init__(self, base: MutableMapping[str, str]) -> None:
        self._base = base

    def _layer(self) -> dict[str, str] | None:
        return _overlay.get()

    def __getitem__(self, key: str) -> str:
        layer = self._layer()
        if layer is not None and key in layer:
            return layer[key]
        return self._base[key]

    def __setitem__(self, key: str, value: str) -> None:
        layer = self._layer()
        if layer is not None:
            layer[key] = value
        else:
            self._base[key] = value

    def __delitem__(self, key: str) -> None:
        layer = self._layer()
        if layer is not None and key in layer:
            del layer[key]
        else:
            del self._base[key]

    def __iter__(self) -> Iterator[str]:
        layer = self._layer() or {}
        yield from layer
        yield from (k for k in self._base if k not in layer)

    def __len__(self) -> int:
        layer = self._layer() or {}
        return len(layer) + sum(1 for k in self._base if k not in layer)

    def copy(self) -> dict[str, str]:
        return dict(self.items())

    def __repr__(self) -> str:
        return f"OverlayEnviron({len(self)} variables)"


def install() -> None:
    """Replace os.environ once; idempotent."""
    if not isinstance(os.environ, OverlayEnviron):
        os.environ = OverlayEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003 - replaced on purpose, not cleared


@contextmanager
def function_environment(variables: Mapping[str, Any]) -> Iterator[None]:
    token = _overlay.set({k: str(v) for k, v in variables.items()})
    try:
        yield
    finally:
        _overlay.reset(token)
