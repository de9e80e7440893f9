"""A stage that raises costs its submission only; Ctrl-C is not a stage failure."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from grader.batch.local import grade_batch
from grader.collect import Submission
from grader.config import GradingOptions
from grader.model.results import Student
from grader.pipeline import stages
from grader.pipeline.run import Stage, SubmissionRun, run_stage
from grader.rubric.load import load_rubric
from tests.nbfactory import code, md, notebook, write

TINY = """name: tiny
title: Tiny answers
tasks:
  - id: q1
    title: the answer
    checks:
      - code: {pattern: 'answer\\s*='}
"""


def _with_failing_static_stage(monkeypatch, victim: str) -> None:
    """Replace the static-evidence stage by one that raises for the submission named ``victim``."""
    original = next(s for s in stages.STATIC if s.name == "static evidence")

    def do(session, run):
        if run.submission.student.key == victim:
            raise RuntimeError("boom in a stage")
        return original.do(session, run)

    replaced = dataclasses.replace(original, do=do)
    monkeypatch.setattr(stages, "STATIC", tuple(replaced if s is original else s for s in stages.STATIC))


def test_a_raising_stage_is_that_submissions_internal_problem_and_the_batch_goes_on(tmp_path, monkeypatch):
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text(TINY)
    subs = []
    for key in ("ann", "ben"):
        path = write(notebook(md("# Question 1"), code("answer = 42")), tmp_path / f"{key}.ipynb")
        subs.append(Submission(path=path, student=Student(key=key)))
    _with_failing_static_stage(monkeypatch, "ann")
    results = {r.student.key: r for r in grade_batch(subs, load_rubric(rubric), tmp_path / "out",
                                                     options=GradingOptions(static=True, preflight=False))}
    assert [p.kind for p in results["ann"].problems] == ["internal"]
    assert "boom in a stage" in results["ann"].problems[0].message
    assert results["ben"].problems == [] and results["ben"].score == results["ben"].max_score > 0


def test_ctrl_c_inside_a_stage_is_not_turned_into_a_problem(tmp_path):
    def interrupted(session, run):
        raise KeyboardInterrupt

    run = SubmissionRun(Submission(path=tmp_path / "x.ipynb", student=Student(key="x")))
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(run_stage(Stage("interrupted", interrupted), None, run))
    assert run.error is None


def test_a_stage_that_does_not_apply_is_neither_run_nor_timed(tmp_path):
    calls = []
    run = SubmissionRun(Submission(path=tmp_path / "x.ipynb", student=Student(key="x")))
    asyncio.run(run_stage(Stage("skipped", lambda s, r: calls.append(1), when=lambda s, r: False), None, run))
    asyncio.run(run_stage(Stage("ran", lambda s, r: calls.append(2)), None, run))
    assert calls == [2] and list(run.timings) == ["ran"]


def test_run_stage_keeps_a_stage_exception_on_the_record_and_skips_the_sound_stages(tmp_path):
    def broken(session, run):
        raise RuntimeError("boom")

    calls = []
    run = SubmissionRun(Submission(path=tmp_path / "x.ipynb", student=Student(key="x")))
    asyncio.run(run_stage(Stage("broken", broken), None, run))
    asyncio.run(run_stage(Stage("needs a sound run", lambda s, r: calls.append("sound")), None, run))
    asyncio.run(run_stage(Stage("finish", lambda s, r: calls.append("always"), when=lambda s, r: True), None, run))
    assert run.error is not None and run.error.kind == "internal" and "RuntimeError: boom" in run.error.message
    assert calls == ["always"]


def test_the_file_is_read_once_what_is_hashed_and_keyed_is_what_was_graded(tmp_path):
    """A file replaced between reading and hashing (a sync client, a second upload) must not
    give a result whose hashes and key belong to other bytes than the ones graded."""
    import hashlib

    from grader.pipeline.session import GradingSession

    path = write(notebook(md("## Q1"), code("answer = 42")), tmp_path / "subs" / "s.ipynb")
    graded = path.read_bytes()
    rubric = tmp_path / "r.yaml"
    rubric.write_text(TINY)
    session = GradingSession(load_rubric(str(rubric)), tmp_path / "out", GradingOptions(static=True))
    run = SubmissionRun(Submission(path=path, student=Student(key="s")))
    stages.load(session, run)
    write(notebook(md("## Q1"), code("answer = 41  # replaced")), path)
    stages.result_key(session, run)
    assert run.hashes[0] == hashlib.sha256(graded).hexdigest()
    assert run.key == session.key_for(run.submission, run.settings, notebook_bytes=graded)
    assert run.key != session.key_for(run.submission, run.settings)  # the bytes on disk now
    assert run.data is None  # not kept for the rest of the batch
