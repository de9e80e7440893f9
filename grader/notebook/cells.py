"""Notebook cells as the grader reads them: their text, their headings, and the nearest heading above each.

Both modes use these: static mode (:mod:`grader.static.outputs`) and the executed path (the
cells of the evidence, the headings of the progress display). Nothing here runs code or imports
TensorFlow; odd notebooks (raw JSON, missing fields) give empty values, not exceptions.

Example::

    >>> markdown_headings("## Question 4: Train a CNN\\n\\nSome text")
    ['Question 4: Train a CNN']
"""

from __future__ import annotations

import html
import re
from typing import Any

from grader.model.evidence import Cell, CellRef

__all__ = ["cell_ref", "cells_from_notebook", "markdown_headings", "multiline_text", "raw_cells", "strip_tags"]

_TAGS = re.compile(r"<[^>]+>")


def multiline_text(value: Any) -> str:
    """nbformat keeps multi-line strings as str, raw JSON may hold a list of lines."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return str(value)


def strip_tags(markup: str) -> str:
    """``markup`` without its HTML tags (entities are left as they are)."""
    return _TAGS.sub("", markup)


# Patterns on untrusted markdown: possessive quantifiers, so no line makes them backtrack
# (``"# Q" + " " * 1600 + "x"`` took 31 s with ``\s+(.*?)\s*#*\s*$``), and lines are cut to
# _MAX_LINE before matching. The heading text is runs of non-space and of space not followed
# by the closing ``#``s.
_MAX_LINE = 2000
_ATX = re.compile(r"^[ \t]{0,3}+(#{1,6})[ \t]++((?:[^ \t]++|[ \t]++(?!#*+[ \t]*+$))++)")
_SETEXT = re.compile(r"^[ \t]{0,3}+(=++|-++)[ \t]*+$")
_HTML_HEADING = re.compile(r"<h[1-6][^>]*>(.*?)</h[1-6]>", re.IGNORECASE | re.DOTALL)
_BOLD_LINE = re.compile(r"^\s*+(\*\*|__)(.+?)\1\s*+[:.]?+\s*+$")
_BOLD_LABEL = re.compile(
    r"^\s*(\*\*|__)((?:question|task|exercise|part|problem|assignment|step)\s*\d+[^*_]{0,60}?)\1",
    re.IGNORECASE,
)


def _clean_heading(text: str) -> str:
    text = strip_tags(text)
    text = re.sub(r"(\*\*|__|`)", "", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [link](url) -> link
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def markdown_headings(source: str) -> list[str]:
    """The headings of one markdown cell, in order.

    ATX (``## Question 4``), setext (a line underlined with ``===`` or ``---``), HTML
    (``<h2>Question 4</h2>``), and a bold first line (``**Question 4**`` or
    ``**Question 4:** Train a CNN ...``) all count.
    """
    headings: list[str] = []
    lines = [line[:_MAX_LINE] for line in source.split("\n")]
    in_fence = False
    first_text = next((line for line in lines if line.strip()), "")
    bold = _BOLD_LINE.match(first_text) or _BOLD_LABEL.match(first_text)
    if bold and not _ATX.match(first_text):
        headings.append(_clean_heading(bold.group(2)))
    for number, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        atx = _ATX.match(line)
        if atx:
            text = _clean_heading(atx.group(2))
            if text:
                headings.append(text)
            continue
        if number > 0 and _SETEXT.match(line) and lines[number - 1].strip():
            previous = lines[number - 1]
            if not _ATX.match(previous) and not re.match(r"^\s*([-*+]|\d+\.)\s", previous):
                text = _clean_heading(previous)
                if text:
                    headings.append(text)
            continue
        for match in _HTML_HEADING.finditer(line):
            text = _clean_heading(match.group(1))
            if text:
                headings.append(text)
    return headings


def cells_from_notebook(nb: Any) -> list[Cell]:
    """The notebook's cells as :class:`~grader.model.evidence.Cell`, each with its nearest heading.

    A markdown cell's heading is its own first heading, or the one above it; any other cell
    carries the last heading of the markdown above it. ``tags`` come from
    ``cell.metadata.tags``, ``cell_id`` from nbformat 4.5 cell ids.
    """
    cells: list[Cell] = []
    current: str | None = None
    for index, raw in enumerate(raw_cells(nb)):
        cell_type = str(raw.get("cell_type") or "code")
        source = multiline_text(raw.get("source"))
        metadata = raw.get("metadata") or {}
        tags = metadata.get("tags") if isinstance(metadata, dict) else None
        tags = [str(tag) for tag in tags] if isinstance(tags, (list, tuple)) else []
        heading = current
        if cell_type == "markdown":
            found = markdown_headings(source)
            if found:
                heading = found[0]
                current = found[-1]
        outputs = raw.get("outputs") if cell_type == "code" else None
        cell_id = raw.get("id")
        cells.append(Cell(
            index=index,
            cell_type=cell_type,
            source=source,
            tags=tags,
            cell_id=str(cell_id) if cell_id else None,
            heading=heading,
            has_outputs=bool(outputs),
        ))
    return cells


def raw_cells(nb: Any) -> list[Any]:
    """The notebook's cells as stored (dict-like), leaving out anything that is not a cell."""
    cells = nb.get("cells") if hasattr(nb, "get") else getattr(nb, "cells", None)
    if not isinstance(cells, list):
        return []
    return [cell for cell in cells if hasattr(cell, "get")]


def cell_ref(cell: Cell) -> CellRef:
    """Where ``cell`` is, as findings and errors point to it."""
    return CellRef(index=cell.index, heading=cell.heading, tags=list(cell.tags),
                   cell_id=cell.cell_id)
