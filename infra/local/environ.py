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

# A layer maps names to values; None marks a variable the function deleted (hidden, not removed).
_overlay: ContextVar[dict[str, str | None] | None] = ContextVar("function_environment", default=None)


class OverlayEnviron(MutableMapping[str, str]):
    def __init__(self, base: MutableMapping[str, str]) -> None:
        self._base = base

    def _layer(self) -> dict[str, str | None] | None:
        return _overlay.get()

    def __getitem__(self, key: str) -> str:
        layer = self._layer()
        if layer is not None and key in layer:
            value = layer[key]
            if value is None:
                raise KeyError(key)
            return value
        return self._base[key]

    def __setitem__(self, key: str, value: str) -> None:
        layer = self._layer()
        if layer is not None:
            layer[key] = value
        else:
            self._base[key] = value

    def __delitem__(self, key: str) -> None:
        layer = self._layer()
        if layer is None:
            del self._base[key]
            return
        if key not in self:
            raise KeyError(key)
        layer[key] = None  # the process environment is never changed from inside a function

    def _keys(self) -> list[str]:
        layer = self._layer() or {}
        visible = [k for k, v in layer.items() if v is not None]
        return visible + [k for k in self._base if k not in layer]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

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
    layer: dict[str, str | None] = {k: str(v) for k, v in variables.items()}
    token = _overlay.set(layer)
    try:
        yield
    finally:
        _overlay.reset(token)
