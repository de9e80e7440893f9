"""Reading a rubric file's YAML, within bounds, with the line of every key and value.

A rubric may come from anywhere (a course repository, an upload), so reading it is bounded: at
most :data:`MAX_RUBRIC_BYTES` are read, and the YAML is refused past :data:`MAX_YAML_NODES`
nodes, :data:`MAX_YAML_DEPTH` levels, or aliases that expand past :data:`MAX_EXPANDED_NODES`
("billion laughs"). Line numbers come from PyYAML's composed node tree, which keeps the position
of every key and value (:class:`_Marks`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from grader.errors import RubricError

__all__ = [
    "MAX_CHECKS",
    "MAX_EXPANDED_NODES",
    "MAX_RUBRIC_BYTES",
    "MAX_TASKS",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "TooLarge",
    "parse_yaml",
    "read_rubric_file",
]


class _Marks:
    """Line numbers of every value and key in the YAML document, by path."""

    def __init__(self) -> None:
        self.value: dict[tuple, int] = {}
        self.key: dict[tuple, int] = {}
        self.duplicates: list[tuple[tuple, int, int]] = []

    def walk(self, node: yaml.Node, path: tuple = ()) -> None:
        self.value[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = key_node.value
                line = key_node.start_mark.line + 1
                if key in seen:
                    self.duplicates.append((path + (key,), line, seen[key]))
                seen[key] = line
                self.key[path + (key,)] = line
                self.walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, path + (index,))

    def line(self, path: tuple, *, key: bool = False) -> int | None:
        if key and path in self.key:
            return self.key[path]
        while path not in self.value and path:
            path = path[:-1]
        return self.value.get(path)



# Bounds on a rubric file. The bundled rubrics have under 12 tasks, 30 checks and 400 YAML nodes
# in under 10 KB; the bounds are far above any course's, and far below what stalls the loader (a
# 120,000-task rubric, or a "billion laughs" document whose aliases expand to 10^9 nodes).
MAX_RUBRIC_BYTES = 256 * 1024
MAX_YAML_NODES = 10_000  # nodes as written, aliases included: bounds the parser's time
MAX_EXPANDED_NODES = 50_000  # nodes once every alias is replaced by what it names
MAX_YAML_DEPTH = 20
MAX_TASKS = 500
MAX_CHECKS = 2_000


class TooLarge(yaml.YAMLError):
    """The document is over one of the bounds: refused before the rest of it is read."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting the nodes it composes and how deep they nest, so that a huge
    or deeply nested rubric is refused after at most :data:`MAX_YAML_NODES` nodes."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            mark = self.peek_event().start_mark
            raise TooLarge(f"the rubric is too large: more than {MAX_YAML_NODES:,} YAML values, keys and aliases "
                           f"(a course rubric has a few hundred)", mark.line + 1)
        return super().compose_node(parent, index)

    def compose_sequence_node(self, anchor: Any) -> Any:
        return self._nested(super().compose_sequence_node, anchor)

    def compose_mapping_node(self, anchor: Any) -> Any:
        return self._nested(super().compose_mapping_node, anchor)

    def _nested(self, compose: Any, anchor: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise TooLarge(f"the rubric nests lists and mappings more than {MAX_YAML_DEPTH} levels deep", mark.line + 1)
            return compose(anchor)
        finally:
            self._depth -= 1


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes ``root`` stands for once its aliases are expanded, counted without expanding
    them (each distinct node once); :class:`TooLarge` over :data:`MAX_EXPANDED_NODES`, or when an
    alias names a node that contains it (which would expand forever)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]

    def children(node: yaml.Node) -> list[yaml.Node]:
        if isinstance(node, yaml.MappingNode):
            return [part for pair in node.value for part in pair]
        return list(node.value) if isinstance(node, yaml.SequenceNode) else []

    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children(node))
            if sizes[key] > MAX_EXPANDED_NODES:
                raise TooLarge(f"the rubric's aliases (*name) expand to more than {MAX_EXPANDED_NODES:,} YAML values; "
                               f"write the repeated parts out, or repeat less", node.start_mark.line + 1)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise TooLarge("an alias (*name) refers to a value that contains it, which never ends", node.start_mark.line + 1)
        open_nodes.add(key)
        stack.append((node, True))
        for child in children(node):
            if id(child) in open_nodes:
                raise TooLarge("an alias (*name) refers to a value that contains it, which never ends", child.start_mark.line + 1)
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def parse_yaml(text: str) -> tuple[Any, _Marks]:
    if len(text) > MAX_RUBRIC_BYTES:
        raise TooLarge(f"the rubric is too large: {len(text):,} characters, more than the {MAX_RUBRIC_BYTES // 1024} KiB "
                       f"a rubric may have (a course rubric has under 10 KiB)")
    loader = _BoundedLoader(text)
    marks = _Marks()
    try:
        node = loader.get_single_node()
        if node is None:
            return None, marks
        _expanded_size(node)  # before anything walks the tree with its aliases expanded
        marks.walk(node)  # before construction: merge keys (<<) are flattened into the node then
        return loader.construct_document(node), marks
    finally:
        loader.dispose()



def read_rubric_file(path: Path) -> str:
    """The text of a rubric file, read within :data:`MAX_RUBRIC_BYTES`; :class:`RubricError` when
    it cannot be read, is too large, or is not UTF-8 text."""
    try:
        # At most one byte over the bound is read: the file may be anything (a device, a FIFO, a
        # log that grows), of any size.
        with path.open("rb") as handle:
            data = handle.read(MAX_RUBRIC_BYTES + 1)
        if len(data) > MAX_RUBRIC_BYTES:
            raise RubricError(f"{path}: the rubric is too large: over {MAX_RUBRIC_BYTES // 1024} KiB, the most a rubric "
                              f"may have (a course rubric has under 10 KiB)")
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RubricError(f"{path}: not a text file (UTF-8 expected)") from None
    except OSError as exc:
        raise RubricError(f"{path}: cannot read it ({exc.strerror or exc})") from None

