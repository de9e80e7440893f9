"""The layout registry: what a submission layout is, and :func:`layout` to add one.

A layout is a function that names the student of one notebook found (:class:`~grader.collect.scan.File`)
from its path, returning one :class:`Identity` per student (a group submission has several), or
``None`` when the file does not follow the layout. It is registered with :func:`layout`, in its
own module under :mod:`grader.collect.layouts`; that package imports every module in it, so
adding a layout is one new file::

    @layout("mylms", order=55, summary="``<id>-<name>/hw1.ipynb``", lms="mylms")
    def parse(file: File, context: Context) -> list[Identity] | None:
        ...

``order`` places it in :data:`~grader.collect.layouts.LAYOUTS` and in auto-detection (tried in
that order: the first that places at least half of the notebooks wins); ``detect=False`` keeps it
out of auto-detection. ``looks_like`` is a condition detection checks first, ``notice`` claims
metadata files while scanning (:data:`~grader.collect.scan.Notice`), ``consumes`` says which side
files the layout read, so they are not listed as skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from grader.collect.scan import File, Notice, Scan

__all__ = ["Context", "Identity", "Layout", "Parser", "REGISTRY", "layout"]


@dataclass
class Identity:
    """Who a file belongs to, as its layout reads it."""

    group: str  # who, unique within the layout: files with the same group are one student's
    key: str  # readable, becomes Student.key after cleaning
    student_id: str | None = None
    name: str | None = None
    login: str | None = None
    email: str | None = None
    late: bool = False
    submitted_at: datetime | None = None
    upload_order: int = -1  # Canvas file ids grow with every upload
    filename: str = ""  # the student's own file name, without the LMS's prefix
    note: str | None = None
    lms: str | None = None  # set from the layout that placed the file (Student.lms)


@dataclass
class Context:
    """What a layout may read besides the file: the whole scan, the ``--pattern``, a memo."""

    scan: Scan
    pattern: re.Pattern[str] | None
    # Per-layout memo, by layout name (github-classroom keeps each root's prefix here).
    cache: dict[str, Any] = field(default_factory=dict)


Parser = Callable[[File, Context], "list[Identity] | None"]


@dataclass(frozen=True)
class Layout:
    """One registered layout; see the module docstring for the fields."""

    name: str
    parse: Parser
    order: int
    summary: str
    detect: bool = True
    lms: str | None = None
    looks_like: Callable[[list[File], Context], bool] | None = None
    notice: Notice | None = None
    consumes: Callable[[Path], bool] | None = None


REGISTRY: dict[str, Layout] = {}


def layout(name: str, *, order: int, summary: str, detect: bool = True, lms: str | None = None,
           looks_like: Callable[[list[File], Context], bool] | None = None,
           notice: Notice | None = None,
           consumes: Callable[[Path], bool] | None = None) -> Callable[[Parser], Parser]:
    """Register the decorated parser as the layout ``name`` (see the module docstring)."""

    def register(parse: Parser) -> Parser:
        if name in REGISTRY or name == "auto":
            raise ValueError(f"a layout named {name!r} is registered twice")
        if any(other.order == order for other in REGISTRY.values()):
            raise ValueError(f"layout {name!r}: order {order} is taken; the order decides detection")
        REGISTRY[name] = Layout(name=name, parse=parse, order=order, summary=summary, detect=detect,
                                lms=lms, looks_like=looks_like, notice=notice, consumes=consumes)
        return parse

    return register
