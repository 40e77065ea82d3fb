"""Route path templates (`/orders/{id}`, `/files/{rest+}`) and the table that matches requests.

Matching walks a trie of path segments, one dict lookup per segment, so its cost depends on the
path's length, not on how many routes there are. Precedence, as in API Gateway: a literal segment
beats a parameter, a parameter beats a greedy `{name+}` (which must be last); a route for the exact
method beats one for ANY. A path that matches only routes of other methods is a 405 with `Allow`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Generic, NamedTuple, TypeVar
from urllib.parse import unquote

MAX_PATH_LENGTH = 512
MAX_SEGMENTS = 20
_LITERAL = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@-]+$")
_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]{0,63})(\+?)\}$")

T = TypeVar("T")


class Segment(NamedTuple):
    literal: str | None = None
    param: str | None = None
    greedy: bool = False


@lru_cache(maxsize=8192)
def parse_template(path: str) -> tuple[Segment, ...]:
    """Segments of a template; ValueError says what is wrong. Cached: the proxy asks per request."""
    if not path.startswith("/") or len(path) > MAX_PATH_LENGTH:
        raise ValueError(f"a path starts with '/' and has at most {MAX_PATH_LENGTH} characters")
    if path == "/":
        return ()
    parts = path[1:].split("/")
    if len(parts) > MAX_SEGMENTS:
        raise ValueError(f"at most {MAX_SEGMENTS} segments")
    segments: list[Segment] = []
    names: set[str] = set()
    for index, part in enumerate(parts):
        param = _PARAM.match(part)
        if param:
            name, greedy = param.group(1), bool(param.group(2))
            if name in names:
                raise ValueError(f"parameter '{name}' appears twice")
            if greedy and index != len(parts) - 1:
                raise ValueError("a greedy parameter {name+} must be the last segment")
            names.add(name)
            segments.append(Segment(param=name, greedy=greedy))
        elif part and _LITERAL.match(part):
            segments.append(Segment(literal=part))
        else:
            raise ValueError(f"segment '{part}' is neither a literal nor a {{parameter}}")
    return tuple(segments)


def shape(path: str) -> str:
    """The template with parameter names erased: two routes with one shape and method clash."""
    return "/" + "/".join(
        s.literal if s.literal is not None else ("{+}" if s.greedy else "{}") for s in parse_template(path)
    )


def parameters(path: str) -> list[str]:
    return [s.param for s in parse_template(path) if s.param]


def render(template: str, values: dict[str, str]) -> str:
    """Fill `{name}` and `{name+}` in a path template (values are already URL-encoded)."""
    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\+?\}", lambda m: values.get(m.group(1), ""), template)


class _Node(Generic[T]):
    __slots__ = ("greedy", "here", "literals", "param")

    def __init__(self) -> None:
        self.literals: dict[str, _Node[T]] = {}
        self.param: _Node[T] | None = None
        # method -> (names of the parameters on the way here, greedy parameter name or "", value)
        self.here: dict[str, tuple[tuple[str, ...], T]] = {}
        self.greedy: dict[str, tuple[tuple[str, ...], str, T]] = {}


class Match(NamedTuple, Generic[T]):
    value: T
    params: dict[str, str]


class MethodNotAllowedHere(Exception):
    def __init__(self, allowed: list[str]) -> None:
        super().__init__("method not allowed")
        self.allowed = allowed


class RouteTable(Generic[T]):
    """Routes by (method, template); `match(method, path)` finds the value and its parameters."""

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self.size = 0

    def add(self, method: str, template: str, value: T) -> None:
        segments = parse_template(template)
        names = tuple(s.param for s in segments if s.param and not s.greedy)
        node = self._root
        for segment in segments:
            if segment.greedy:
                if method in node.greedy:
                    raise ValueError(f"{method} {template} clashes with another route")
                node.greedy[method] = (names, segment.param or "", value)
                self.size += 1
                return
            if segment.literal is not None:
                node = node.literals.setdefault(segment.literal, _Node())
            else:
                node.param = node.param or _Node()
                node = node.param
        if method in node.here:
            raise ValueError(f"{method} {template} clashes with another route")
        node.here[method] = (names, value)
        self.size += 1

    def match(self, method: str, path: str) -> Match[T] | None:
        """The best route for the request, or None; MethodNotAllowedHere when only other
        methods match the path."""
        trimmed = path.strip("/")
        parts = [unquote(p) for p in trimmed.split("/")] if trimmed else []
        found = self._walk(self._root, parts, 0, method, [])
        if found is not None:
            return found
        allowed = sorted(self._methods(self._root, parts, 0))
        if allowed:
            raise MethodNotAllowedHere(allowed)
        return None

    def _walk(self, node: _Node[T], parts: list[str], i: int, method: str, captured: list[str]) -> Match[T] | None:
        if i == len(parts):
            entry = node.here.get(method) or node.here.get("ANY")
            if entry is not None:
                return Match(entry[1], dict(zip(entry[0], captured, strict=True)))
            return None
        child = node.literals.get(parts[i])
        if child is not None:
            found = self._walk(child, parts, i + 1, method, captured)
            if found is not None:
                return found
        if node.param is not None and parts[i]:
            found = self._walk(node.param, parts, i + 1, method, [*captured, parts[i]])
            if found is not None:
                return found
        greedy = node.greedy.get(method) or node.greedy.get("ANY")
        if greedy is not None:
            params = dict(zip(greedy[0], captured, strict=True))
            params[greedy[1]] = "/".join(parts[i:])
            return Match(greedy[2], params)
        return None

    def _methods(self, node: _Node[T], parts: list[str], i: int) -> set[str]:
        if i == len(parts):
            return set(node.here)
        found: set[str] = set(node.greedy)
        child = node.literals.get(parts[i])
        if child is not None:
            found |= self._methods(child, parts, i + 1)
        if node.param is not None and parts[i]:
            found |= self._methods(node.param, parts, i + 1)
        return found
