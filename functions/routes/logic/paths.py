"""Route path templates (`/orders/{id}`, `/files/{rest+}`) and the table that matches requests.

Matching walks a trie of path segments, one dict lookup per segment, so its cost depends on the
path's length, not on how many routes there are. Precedence, as in API Gateway: a literal segment
beats a parameter, a parameter beats a greedy `{name+}` (which must be last); a route for the exact
method beats one for ANY. A path that matches only routes of other methods is a 405 with `Allow`.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Generic, NamedTuple, TypeVar
from urllib.parse import quote, unquote, unquote_to_bytes

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
        param = _PARAM.fullmatch(part)
        if param:
            name, greedy = param.group(1), bool(param.group(2))
            if name in names:
                raise ValueError(f"parameter '{name}' appears twice")
            if greedy and index != len(parts) - 1:
                raise ValueError("a greedy parameter {name+} must be the last segment")
            names.add(name)
            segments.append(Segment(param=name, greedy=greedy))
        elif part and _LITERAL.fullmatch(part):
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


class InvalidPath(ValueError):
    """A path parameter that could reach another path than the route's upstream path."""


# Decoding rounds a value may need before it is stable: more is an attempt to outlast a checker.
MAX_DECODE_ROUNDS = 3
# Look-alikes NFKC leaves alone but "best fit" code pages and some upstreams map to separators.
_SEPARATOR_LOOKALIKES = str.maketrans(
    dict.fromkeys("\u2215\u2044\u29f8\uff0f", "/") | dict.fromkeys("\u2216\u29f5\u29f9\ufe68\uff3c", "\\")
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def fully_decoded(value: str) -> str:
    """`value` percent-decoded until it no longer changes, read as UTF-8 each time. InvalidPath
    when a round is not UTF-8 (overlong forms such as %c0%af are not) or rounds never end."""
    current = value
    for _ in range(MAX_DECODE_ROUNDS + 1):
        try:
            decoded = unquote_to_bytes(current).decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidPath("is not UTF-8 once percent-decoded") from error
        if decoded == current:
            return current
        current = decoded
    raise InvalidPath("is percent-encoded too many times")


def _refuse_separators(value: str) -> str:
    """The view of `value` any upstream might end up with (decoded, NFKC, look-alikes mapped);
    InvalidPath if a separator, a control character or an undecodable byte is in it."""
    view = unicodedata.normalize("NFKC", fully_decoded(value)).translate(_SEPARATOR_LOOKALIKES)
    if "/" in view or "\\" in view:
        raise InvalidPath("may not contain '/' or '\\' in any encoding")
    if _CONTROL.search(view) or "\ufffd" in view:
        # U+FFFD: bytes that were not UTF-8 when they reached the gateway (e.g. overlong forms).
        raise InvalidPath("may not contain control characters or bytes that are not UTF-8")
    return view


def _dot_segment(view: str) -> bool:
    # Tomcat drops `;params` from a segment; an upstream (or a proxy before it) that decodes the
    # path before splitting off the query or fragment ends the segment at `?` or `#`; Windows and
    # IIS drop trailing dots and spaces.
    core = re.split(r"[;?#]", view, maxsplit=1)[0].strip()
    return bool(core) and not core.strip(".")


def check_segment(value: str) -> None:
    """InvalidPath unless `value` stays one segment, neither a separator nor `.`/`..`, in any
    encoding: percent-encoded (any number of times), overlong UTF-8, or look-alike characters."""
    if _dot_segment(_refuse_separators(value)):
        raise InvalidPath("may not be a '.' or '..' segment in any encoding")


def _greedy_segments(value: str) -> list[str]:
    """The segments of a greedy value with `.` and `..` resolved (RFC 3986 5.2.4) below the
    parameter; InvalidPath when one climbs above it, or hides a separator or a dot segment."""
    segments: list[str] = []
    for part in value.split("/"):
        if part == ".":
            continue
        if part == "..":
            if not segments:
                raise InvalidPath("may not climb out of the route's upstream path with '..'")
            segments.pop()
            continue
        if not part:
            raise InvalidPath("may not contain empty segments")
        check_segment(part)
        segments.append(part)
    return segments


def upstream_values(template: str, params: dict[str, str]) -> dict[str, str]:
    """The parameters of a route matched on `template`, checked and percent-encoded for the
    upstream path: one-segment values must stay one segment, greedy ones below their place.
    Values are sent as given (decoded once); only the checks decode further, so an upstream that
    decodes twice meets nothing it could climb with either."""
    greedy = {s.param for s in parse_template(template) if s.greedy}
    out: dict[str, str] = {}
    for name, value in params.items():
        try:
            if name in greedy:
                out[name] = "/".join(quote(s, safe="") for s in _greedy_segments(value))
            else:
                check_segment(value)
                out[name] = quote(value, safe="")
        except InvalidPath as error:
            raise InvalidPath(f"The path parameter '{name}' {error}.") from None
    return out


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
