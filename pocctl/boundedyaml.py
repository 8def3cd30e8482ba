"""YAML for config.yaml with bounds checked while it is composed, before anything is built.

PyYAML's safe loader refuses code, but not size: ten lines of aliases (a "billion laughs") stand
for 10^9 values that anything walking them (a validator's repr()) expands; deep nesting recurses
past Python's limit in the composer and constructor. The composer here counts, event by event,
the depth, the values with every alias counted as what it expands to, and each scalar's length,
and raises Refused at the first one over its bound. libyaml parses when PyYAML has it (5 times
faster on a 1 MiB file); the composing is always this Python.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

CParser: Any = None
with contextlib.suppress(ImportError):  # PyYAML built without libyaml
    from yaml._yaml import CParser


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in … when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Refused(Exception):
    """A bound was crossed: ``key`` is the path to the value (``region[4][0]``)."""

    def __init__(self, key: str, mark: Any, problem: str) -> None:
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        super().__init__(problem + where)
        self.key = key


@dataclass(frozen=True)
class Limits:
    """The bounds a loader enforces (config.py holds pocctl's numbers)."""

    values: int = 10_000  # nodes, every alias counted as the size of what it names
    depth: int = 16
    scalar: int = 4096  # characters of one scalar
    shown: int = 80  # characters of a key path in a message
    typical: str = ""  # appended to the too-many-values message


class BoundedComposer(Composer):
    limits = Limits()

    def __init__(self) -> None:
        Composer.__init__(self)  # not super(): the pure-Python loader's next class is SafeLoader
        self._values = 0  # nodes so far, an alias counted as the size of what it names
        self._sizes: dict[int, int] = {}  # id(node) -> its expanded size, once it is complete
        self._path: list[str] = []

    def _key(self, parent: Node | None, index: Any) -> str:
        if isinstance(parent, SequenceNode):
            return f"[{index}]"
        if isinstance(parent, MappingNode) and isinstance(index, ScalarNode):
            return "." + clip(index.value, 40)
        return ""  # the root, or a mapping's key itself

    def _refuse(self, part: str, mark: Any, problem: str) -> None:
        key = "".join([*self._path, part]).lstrip(".")
        raise Refused(clip(key, self.limits.shown), mark, problem)

    def _count(self, n: int, part: str, mark: Any, alias: str | None) -> None:
        self._values += n
        if self._values > self.limits.values:
            what = f"*{clip(alias, 40)} makes the file" if alias else "the file has"
            self._refuse(
                part,
                mark,
                f"{what} more than {self.limits.values} YAML values with its aliases expanded"
                + self.limits.typical,
            )

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        part = self._key(parent, index)
        if isinstance(event, AliasEvent):
            node = self.anchors.get(event.anchor)
            if node is not None:
                size = self._sizes.get(id(node))
                if size is None:
                    name = clip(event.anchor, 40)
                    self._refuse(part, event.start_mark, f"*{name} is inside what it names")
                self._count(size or 0, part, event.start_mark, event.anchor)
            return super().compose_node(parent, index)  # an undefined alias: yaml says so
        limits = self.limits
        if isinstance(event, ScalarEvent) and len(event.value) > limits.scalar:
            self._refuse(
                part,
                event.start_mark,
                f"a value of {len(event.value)} characters; none can be longer than "
                f"{limits.scalar}",
            )
        if len(self._path) >= limits.depth:
            self._refuse(part, event.start_mark, f"nested deeper than {limits.depth} levels")
        self._count(1, part, event.start_mark, None)
        before = self._values
        self._path.append(part)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._path.pop()
        self._sizes[id(node)] = self._values - before + 1
        return node


class PyLoader(BoundedComposer, yaml.SafeLoader):
    """Pure-Python parsing."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        BoundedComposer.__init__(self)


if CParser is not None:

    class CLoader(BoundedComposer, CParser, SafeConstructor, Resolver):
        """libyaml's parser with this composer: BoundedComposer comes first, so its get_node and
        compose_node replace CParser's own (C) composing."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            BoundedComposer.__init__(self)

    Loader: type = CLoader
else:
    Loader = PyLoader


def load(text: str, limits: Limits = Limits(), loader: type | None = None) -> Any:
    """The data of the single YAML document in ``text``; Refused or yaml.YAMLError otherwise
    (and ValueError from a constructor's own check, such as the date 2001-13-45)."""
    instance = (loader or Loader)(text)
    instance.limits = limits
    try:
        return instance.get_single_data()
    finally:
        instance.dispose()
