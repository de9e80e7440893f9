"""Identical submissions are flagged in both students' results and in the class overview."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from grader.batch.local import grade_batch
from grader.config import GradingOptions
from grader.findings.identical import code_hash
from grader.report.overview import render_class_overview
from grader.report.student import render_student_report
from grader.model.results import Student
from grader.rubric.load import load_rubric
from grader.collect import Submission
from tests.nbfactory import code, md, notebook, write
from tests.test_unfinished import COURSE, RUBRIC, needs_course

TINY = """name: tiny
title: Tiny answers
tasks:
  - id: q1
    title: the answer
    checks:
      - code: {pattern: 'answer\\s*='}
"""


def _batch(tmp_path: Path, paths: dict[str, Path], rubric: Path | None = None):
    if rubric is None:
        rubric = tmp_path / "rubric.yaml"
        rubric.write_text(TINY)
    subs = [Submission(path=p, student=Student(key=k)) for k, p in paths.items()]
    return grade_batch(subs, load_rubric(rubric), tmp_path / "out", options=GradingOptions(static=True, preflight=False))


def _nb(source: str, *, output: str | None = None, meta: dict | None = None) -> nbformat.NotebookNode:
    cell = code(source)
    if output is not None:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
        cell.execution_count = 3
    nb = notebook(md("# Question 1"), cell)
    nb.metadata.update(meta or {})
    return nb


def test_byte_identical_notebooks_are_flagged_both_ways(tmp_path):
    alice = write(_nb("answer = 42"), tmp_path / "subs" / "alice.ipynb")
    bob = tmp_path / "subs" / "bob.ipynb"
    shutil.copyfile(alice, bob)
    carol = write(_nb("answer = 7"), tmp_path / "subs" / "carol.ipynb")
    results = {r.student.key: r for r in _batch(tmp_path, {"alice": alice, "bob": bob, "carol": carol})}
    assert results["alice"].identical_to == ["bob (same notebook file)"]
    assert results["bob"].identical_to == ["alice (same notebook file)"]
    assert results["carol"].identical_to == []
    assert any(f.kind == "identical" and "bob's submission" in f.message for f in results["alice"].evidence.findings)
    assert "bob (same notebook file)" in render_class_overview(list(results.values()), report_links={})
    assert "alice&#39;s submission" in render_student_report(results["bob"]) or "alice's submission" in render_student_report(results["bob"])
    stored = (tmp_path / "out" / "bob" / "result.json").read_text()
    assert "same notebook file" in stored


def test_same_code_with_other_outputs_and_metadata_is_flagged(tmp_path):
    a = write(_nb("answer = 42\n", output="42\n"), tmp_path / "subs" / "a.ipynb")
    b = write(_nb("answer  =  42   \n\n", meta={"colab": {"name": "x"}}), tmp_path / "subs" / "b.ipynb")
    results = {r.student.key: r for r in _batch(tmp_path, {"a": a, "b": b})}
    assert results["a"].notebook_sha256 != results["b"].notebook_sha256
    assert results["a"].identical_to == ["b (same code cells)"]
    assert results["b"].identical_to == ["a (same code cells)"]
    # A re-check reads the stored evidence and flags them again, once.
    again = {r.student.key: r for r in _batch(tmp_path, {"a": a, "b": b})}
    assert again["a"].identical_to == ["b (same code cells)"]
    assert sum(f.kind == "identical" for f in again["a"].evidence.findings) == 1


def test_different_code_is_not_flagged(tmp_path):
    a = write(_nb("answer = 42"), tmp_path / "subs" / "a.ipynb")
    b = write(_nb("answer = 41"), tmp_path / "subs" / "b.ipynb")
    results = _batch(tmp_path, {"a": a, "b": b})
    assert len(results) == 2 and all(not r.identical_to for r in results)
    assert code_hash(_nb("answer = 42")) != code_hash(_nb("answer = 41"))


@needs_course
def test_two_untouched_templates_are_not_copying(tmp_path):
    template = COURSE / "CIFAR10-Lab-template-2024.ipynb"
    a, b = tmp_path / "subs" / "a.ipynb", tmp_path / "subs" / "b.ipynb"
    a.parent.mkdir(parents=True)
    shutil.copyfile(template, a)
    shutil.copyfile(template, b)
    results = _batch(tmp_path, {"a": a, "b": b}, rubric=RUBRIC)
    assert len(results) == 2
    assert all("incomplete" in [p.kind for p in r.problems] for r in results)
    assert all(not r.identical_to for r in results)
