"""A batch graded from saved outputs (``grade run --static``): every core, no matplotlib, no fsync,
and the same results and reports as one process gives."""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import grader.batch.static as static_batch
import grader.report.write as report_write
from grader.cli.root import main
from grader.report.plots import Threshold
from grader.report.quick_plots import quick_learning_curve, quick_score_histogram
from grader.report.student import render_student_report
from tests.nbfactory import code, md, notebook, write
from tests.report_samples import static_student

ROOT = Path(__file__).resolve().parent.parent
RUBRIC = """
name: static-batch
title: Static batch
tasks:
  - id: q1
    title: "Question 1: the answer"
    question: "Question 1"
    checks:
      - answer: {pattern: '\\b42\\b', points: 2}
"""
HISTORY = {"accuracy": [0.4, 0.55, 0.68, 0.75], "val_accuracy": [0.38, 0.5, 0.54, 0.56],
           "loss": [1.7, 1.3, 1.0, 0.8], "val_loss": [1.8, 1.5, 1.4, 1.4]}


def svg_of(uri: str) -> str:
    return base64.b64decode(uri.split(",", 1)[1]).decode("utf-8")


def _class(tmp_path: Path, count: int) -> tuple[Path, Path]:
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text(RUBRIC)
    folder = tmp_path / "subs"
    for n in range(count):
        answer = "It is 42." if n % 3 else "It is 41."
        write(notebook(md("## Question 1\nWhat is the answer?"), md(answer), code(f"x = {n}")),
              folder / f"student{n:02d}.ipynb")
    return folder, rubric


def _grade(tmp_path: Path, folder: Path, rubric: Path, out: str) -> Path:
    result = CliRunner().invoke(main, ["run", str(folder), "--rubric", str(rubric), "--static", "--quiet",
                                       "--out", str(tmp_path / out)])
    assert result.exit_code == 0, result.output
    return tmp_path / out


def _scores(out: Path) -> dict[str, float]:
    return {p.parent.name: json.loads(p.read_text())["score"] for p in sorted(out.glob("*/result.json"))}


# ---------------------------------------------------------------------------------------------
# The batch


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the worker processes are forked")
def test_worker_results_come_back_in_the_order_given_each_told_with_its_submission(tmp_path, monkeypatch):
    from grader.batch.local import grade_batch
    from grader.collect import collect
    from grader.config import GradingOptions
    from grader.rubric.load import load_rubric

    folder, rubric = _class(tmp_path, 12)
    monkeypatch.setattr(static_batch, "static_processes", lambda: 2)
    monkeypatch.setattr(static_batch, "POOL_FROM", 2)
    submissions = collect([folder], work_dir=tmp_path / "collected").submissions
    told = []
    results = grade_batch(submissions, load_rubric(rubric), tmp_path / "out", options=GradingOptions(static=True),
                          on_result=lambda submission, result: told.append((submission.student.key, result.student.key)))
    assert [r.student.key for r in results] == [s.student.key for s in submissions]
    assert all(given == graded for given, graded in told) and len(told) == 12


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the worker processes are forked")
def test_worker_processes_give_the_results_of_one_process(tmp_path, monkeypatch):
    folder, rubric = _class(tmp_path, 10)
    monkeypatch.setattr(static_batch, "static_processes", lambda: 1)
    alone = _scores(_grade(tmp_path, folder, rubric, "alone"))
    monkeypatch.setattr(static_batch, "static_processes", lambda: 2)
    monkeypatch.setattr(static_batch, "POOL_FROM", 2)
    pooled = _grade(tmp_path, folder, rubric, "pooled")
    assert _scores(pooled) == alone and len(alone) == 10
    assert all((pooled / name / "grading.log").is_file() for name in alone)


def test_a_static_batch_grades_in_one_event_loop_per_process(tmp_path, monkeypatch):
    """asyncio.run per submission formats the repr of the whole run on Python 3.11 (its SIGINT
    handler's lookup): the sequential path reuses one loop, and closes it at the end."""
    import asyncio

    folder, rubric = _class(tmp_path, 3)
    monkeypatch.setattr(static_batch, "static_processes", lambda: 1)
    loops = []
    real = asyncio.new_event_loop
    monkeypatch.setattr(asyncio, "new_event_loop", lambda: loops.append(real()) or loops[-1])
    monkeypatch.setattr(asyncio, "run", lambda *a, **k: pytest.fail("asyncio.run per submission"))
    out = _grade(tmp_path, folder, rubric, "out")
    assert len(_scores(out)) == 3
    assert len(loops) == 1 and loops[0].is_closed()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the worker processes are forked")
def test_the_report_templates_are_compiled_while_the_workers_grade(tmp_path, monkeypatch):
    """Not in the main thread and not before the workers are forked; done (joined) by the time
    the batch returns, so the report renderers forked next inherit them."""
    import threading

    import grader.report.render as render

    folder, rubric = _class(tmp_path, 10)
    monkeypatch.setattr(static_batch, "static_processes", lambda: 2)
    monkeypatch.setattr(static_batch, "POOL_FROM", 2)
    calls = []
    real = render.compile_templates

    def compiled():
        calls.append(threading.current_thread() is threading.main_thread())
        real()

    monkeypatch.setattr(render, "compile_templates", compiled)
    real_keep = static_batch._keep
    stored = []
    monkeypatch.setattr(static_batch, "_keep", lambda *a: stored.append(len(calls)) or real_keep(*a))
    out = _grade(tmp_path, folder, rubric, "out")
    assert calls == [False]  # once, in its own thread
    assert stored[0] == 1  # started before the first result came back: the workers were forked
    assert len(_scores(out)) == 10 and (out / "student03" / "report.html").is_file()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the worker processes are forked")
def test_templates_that_cannot_be_compiled_ahead_cost_no_result(tmp_path, monkeypatch):
    import grader.report.render as render

    folder, rubric = _class(tmp_path, 10)
    monkeypatch.setattr(static_batch, "static_processes", lambda: 2)
    monkeypatch.setattr(static_batch, "POOL_FROM", 2)
    monkeypatch.setattr(render, "compile_templates", lambda: 1 / 0)
    out = _grade(tmp_path, folder, rubric, "out")
    assert len(_scores(out)) == 10 and (out / "student09" / "report.html").is_file()


def _die(submission):
    os._exit(3)  # a worker killed (out of memory, say)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the worker processes are forked")
def test_a_worker_that_dies_costs_no_submission(tmp_path, monkeypatch):
    folder, rubric = _class(tmp_path, 10)
    monkeypatch.setattr(static_batch, "static_processes", lambda: 2)
    monkeypatch.setattr(static_batch, "POOL_FROM", 2)
    monkeypatch.setattr(static_batch, "_in_worker", _die)
    out = _grade(tmp_path, folder, rubric, "out")
    scores = _scores(out)
    assert len(scores) == 10 and scores["student01"] == 2 and scores["student00"] == 0


def test_results_and_reports_of_a_static_batch_are_not_flushed_one_by_one(tmp_path, monkeypatch):
    folder, rubric = _class(tmp_path, 3)
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real(fd))
    out = _grade(tmp_path, folder, rubric, "out")
    assert len(_scores(out)) == 3 and (out / "student00" / "report.html").is_file()
    # The class overview and the batch's own records; none per student (six each, fsynced).
    assert len(calls) <= 4


def test_a_static_batch_imports_neither_matplotlib_nor_tensorflow_nor_numpy_nor_the_kernel_client(tmp_path):
    folder, rubric = _class(tmp_path, 2)
    probe = ("import sys\nfrom grader.cli.root import main\n"
             f"try:\n    main(['run', {str(folder)!r}, '--rubric', {str(rubric)!r}, '--static', '--quiet', "
             f"'--out', {str(tmp_path / 'out')!r}])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('matplotlib', 'tensorflow', 'keras', 'numpy', 'jupyter_client', 'nbclient', "
             "'zmq', 'grader.execute.client', 'grader.execute.sandbox') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
    assert (tmp_path / "out" / "index.html").is_file()


# ---------------------------------------------------------------------------------------------
# The reports


def test_report_of_a_static_result_draws_its_curves_without_matplotlib(monkeypatch):
    import grader.report.plots as plots

    def refuse(*args, **kwargs):
        raise AssertionError("matplotlib drew a figure")

    monkeypatch.setattr(plots, "learning_curve", refuse)
    page = render_student_report(static_student())
    assert "Learning curves" in page and "data:image/svg+xml;base64," in page


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the renderers are forked")
def test_reports_rendered_on_every_core_are_those_of_one_process(tmp_path, monkeypatch):
    results = [static_student() for _ in range(5)]
    for n, result in enumerate(results):
        result.student.key = f"s{n}"
        result.student.name = f"Student {n}"
    monkeypatch.setattr(report_write, "POOL_FROM", 10**6)
    report_write.write_reports(results, tmp_path / "alone")
    monkeypatch.setattr(report_write, "POOL_FROM", 2)
    monkeypatch.setattr(report_write, "_cores", lambda: 2)
    report_write.write_reports(results, tmp_path / "pooled")
    for n in range(5):
        assert ((tmp_path / "pooled" / f"s{n}" / "report.html").read_text()
                == (tmp_path / "alone" / f"s{n}" / "report.html").read_text())


def test_quick_curve_shows_both_series_the_gap_and_the_target():
    svg = svg_of(quick_learning_curve(HISTORY, "accuracy", thresholds=[Threshold(0.62, "accuracy", "test ≥ 62%")]))
    assert "training" in svg and "validation" in svg and "epoch" in svg
    assert "gap +0.19" in svg and "target: test ≥ 62%" in svg and "<polygon" in svg


def test_quick_curve_draws_targets_of_its_metric_only_and_survives_nan():
    svg = svg_of(quick_learning_curve({"loss": [1.0, math.nan, 0.5], "val_loss": [math.inf]}, "loss",
                                      thresholds=[Threshold(0.62, "accuracy", "test ≥ 62%")], run_starts=[1]))
    assert "target" not in svg and svg.count("<polyline") == 2  # the NaN breaks the training line
    assert quick_learning_curve({"accuracy": []}, "loss") is None


@pytest.mark.parametrize("values", [[1e308, -1e308], [1e300, 1e300 + math.ulp(1e300)], [5e-324, 0.0], [math.nan] * 3,
                                    [0.5] * 3, [None, "x", True], [-math.inf, math.inf], list(range(5000))])
def test_odd_histories_never_break_a_quick_curve(values):
    for metric in ("accuracy", "loss"):
        for thresholds in ([], [Threshold(0.5, metric, "t")]):
            uri = quick_learning_curve({metric: values, f"val_{metric}": values[::-1]}, metric,
                                       thresholds=thresholds, run_starts=[1])
            assert uri is None or svg_of(uri).startswith("<svg")


def test_quick_curve_escapes_a_target_label():
    svg = svg_of(quick_learning_curve(HISTORY, "accuracy", thresholds=[Threshold(0.6, "accuracy", "<script>")]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_quick_histogram_counts_the_class_and_marks_the_pass_mark():
    svg = svg_of(quick_score_histogram([3, 9, 12.5, 14, 18, 18], max_score=18, pass_mark=12))
    assert "pass mark 12" in svg and "students" in svg and ">2</text>" in svg
    assert quick_score_histogram([], max_score=18) is None
