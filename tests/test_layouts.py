"""The layout registry: one module per layout, and a new layout is one registration."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

import grader.collect.layouts as layouts
from grader.collect import LAYOUTS, collect
from grader.collect.layouts.base import REGISTRY, Context, Identity, layout
from grader.collect.scan import File
from grader.errors import UsageError

NOTEBOOK = nbformat.writes(v4.new_notebook(cells=[v4.new_code_cell("x = 1")]))


def test_layouts_keep_their_names_and_detection_order():
    # The order is the auto-detection order: it decides which layout wins an ambiguous export.
    assert LAYOUTS == ("gradescope", "moodle", "blackboard", "brightspace", "canvas",
                       "github-classroom", "folders", "files", "pattern")
    assert [spec.name for spec in layouts.detectable()] == [name for name in LAYOUTS if name != "pattern"]


def test_every_layout_module_registers_one_layout():
    owners: dict[str, list[str]] = {}
    for module in pkgutil.iter_modules(layouts.__path__):
        if module.name == "base":
            continue
        loaded = importlib.import_module(f"{layouts.__name__}.{module.name}")
        owners[module.name] = [spec.name for spec in REGISTRY.values()
                               if spec.parse.__module__ == loaded.__name__]
    assert all(len(names) == 1 for names in owners.values()), owners
    assert sorted(name for names in owners.values() for name in names) == sorted(LAYOUTS)


def test_every_layout_has_a_summary_for_the_help_text():
    assert all(spec.summary for spec in layouts.registered())


@pytest.fixture
def shouty():
    """A layout registered the way a new file under grader/collect/layouts/ registers it."""

    @layout("shouty", order=55, summary="``ID-<number>.ipynb``", lms="shouty")
    def parse(file: File, context: Context) -> list[Identity] | None:
        stem = Path(file.rel[-1]).stem
        if not stem.startswith("ID-"):
            return None
        return [Identity(group=f"shouty:{stem[3:]}", key=stem[3:], student_id=stem[3:],
                         filename=file.rel[-1])]

    yield "shouty"
    del REGISTRY["shouty"]


def test_a_new_layout_is_one_registration(tmp_path, shouty):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("ID-17.ipynb", "ID-42.ipynb"):
        (src / name).write_text(NOTEBOOK, encoding="utf-8")
    forced = collect([src], layout=shouty, work_dir=tmp_path / "work")
    detected = collect([src], work_dir=tmp_path / "work")
    for result in (forced, detected):
        assert result.layout == "shouty"
        assert {(s.student.key, s.student.student_id, s.student.lms) for s in result.submissions} == {
            ("17", "17", "shouty"), ("42", "42", "shouty")}


def test_a_layout_name_or_order_is_registered_once(shouty):
    with pytest.raises(ValueError, match="twice"):
        layout("shouty", order=56, summary="-")(lambda file, context: None)
    with pytest.raises(ValueError, match="order 55 is taken"):
        layout("other", order=55, summary="-")(lambda file, context: None)


def test_an_unknown_layout_names_the_registered_ones(tmp_path):
    with pytest.raises(UsageError, match="use auto or one of gradescope, moodle"):
        collect([tmp_path], layout="webct", work_dir=tmp_path / "work")
