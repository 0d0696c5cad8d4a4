"""Route templates as API Gateway matches them (``/v1/accounts/{id}``, ``/files/{proxy+}``).

API Gateway first finds the *resource* — the most specific template matching the path, a literal
segment beating ``{param}`` beating ``{proxy+}`` — and only then the method on that resource. So
``GET /v1/transfers/batch`` hits the resource ``/v1/transfers/batch`` (POST only) and is refused,
rather than falling through to ``GET /v1/transfers/{id}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import unquote

T = TypeVar("T")
_PARAM = re.compile(r"^\{(\w+)(\+?)\}$")


@dataclass(frozen=True)
class Template:
    path: str
    segments: tuple[tuple[str, str], ...]  # (kind, text): kind literal | param | greedy

    @classmethod
    def parse(cls, path: str) -> Template:
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {path!r}")
        parsed: list[tuple[str, str]] = []
        parts = path.strip("/").split("/") if path.strip("/") else []
        for i, part in enumerate(parts):
            found = _PARAM.match(part)
            if not found:
                parsed.append(("literal", part))
            elif found.group(2):
                if i != len(parts) - 1:
                    raise ValueError(f"a greedy parameter must come last: {path!r}")
                parsed.append(("greedy", found.group(1)))
            else:
                parsed.append(("param", found.group(1)))
        return cls(path, tuple(parsed))

    @property
    def rank(self) -> tuple[int, ...]:
        """Specificity, compared segment by segment: literal > parameter > greedy."""
        return tuple({"literal": 2, "param": 1, "greedy": 0}[kind] for kind, _ in self.segments)

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """Path parameters when ``segments`` (raw, still percent-encoded) fit this template."""
        params: dict[str, str] = {}
        for i, (kind, text) in enumerate(self.segments):
            if kind == "greedy":
                rest = segments[i:]
                if not rest or not all(rest):
                    return None
                params[text] = unquote("/".join(rest))
                return params
            if i >= len(segments):
                return None
            if kind == "literal":
                if unquote(segments[i]) != text:
                    return None
            else:
                if not segments[i]:
                    return None
                params[text] = unquote(segments[i])
        return params if len(segments) == len(self.segments) else None


def split_path(path: str) -> list[str]:
    return path.strip("/").split("/") if path.strip("/") else []


@dataclass
class Resolved(Generic[T]):
    resource: str  # the matched template
    params: dict[str, str]
    target: T | None  # what serves (resource, method); None: the resource has no such method
    methods: tuple[str, ...]  # the methods the resource has


class Router(Generic[T]):
    """Templates with a target per (path, method)."""

    def __init__(self, entries: Iterable[tuple[str, str, T]] = ()) -> None:
        self._templates: dict[str, Template] = {}
        self._targets: dict[tuple[str, str], T] = {}
        for method, path, target in entries:
            self.add(method, path, target)

    def add(self, method: str, path: str, target: T) -> None:
        key = (path, method.upper())
        if key in self._targets:
            raise ValueError(f"route {method} {path} is declared twice")
        self._templates.setdefault(path, Template.parse(path))
        self._targets[key] = target

    def entries(self) -> list[tuple[str, str, T]]:
        return [(method, path, target) for (path, method), target in self._targets.items()]

    def resolve(self, method: str, path: str) -> Resolved[T] | None:
        segments = split_path(path)
        best: tuple[Template, dict[str, str]] | None = None
        for template in self._templates.values():
            params = template.match(segments)
            if params is not None and (best is None or template.rank > best[0].rank):
                best = (template, params)
        if best is None:
            return None
        template, params = best
        methods = tuple(m for (p, m) in self._targets if p == template.path)
        return Resolved(template.path, params, self._targets.get((template.path, method.upper())), methods)
