"""Grading on a dask cluster: the per-submission job, and results stored by the driver."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from grader.batch.local import grade_batch
from grader.batch.dask import grade_submission_job, options_from_json, options_to_json
from grader.config import GradingOptions
from grader.model.results import GradeResult, Student
from grader.rubric.load import load_rubric
from grader.collect import Submission
from tests.nbfactory import code, md, notebook, write

distributed = pytest.importorskip("distributed")


def _setup(rubric: Path, answers: dict[str, int]) -> tuple[Path, list[Submission]]:
    tmp_path = rubric.parent
    submissions = [Submission(path=write(notebook(md("# Question 1"), code(f"answer = {value}")),
                                         tmp_path / "subs" / f"{name}.ipynb"), student=Student(key=name, name=name.title()))
                   for name, value in answers.items()]
    return rubric, submissions


def test_options_travel_as_json():
    options = GradingOptions(fast=True, hidden_test=Path("/data/hidden.npz"), kernel_env={"A": "1"}, limits={"memory": "4GiB"})
    data = json.loads(json.dumps(options_to_json(options)))
    assert options_from_json(data) == options


def test_job_takes_and_returns_json(tmp_path, tiny_rubric):
    rubric, submissions = _setup(tiny_rubric(), {"alice": 42})
    answer = grade_submission_job(str(submissions[0].path), {"key": "alice", "name": "Alice"}, str(rubric),
                                  options_to_json(GradingOptions()))
    answer = json.loads(json.dumps(answer))  # nothing in it but JSON
    result = GradeResult.from_json(answer["result"])
    assert (result.student.name, result.score, result.max_score) == ("Alice", 2, 2)
    assert "execute" in answer["timings"]


def test_local_cluster_grades_and_the_driver_stores_every_result(tmp_path, tiny_rubric):
    from distributed import Client, LocalCluster

    rubric_path, submissions = _setup(tiny_rubric(), {"alice": 42, "bob": 41, "carol": 42})
    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        results = grade_batch(submissions, load_rubric(rubric_path), out, dask_scheduler=client)
        workers = set(client.run(lambda: __import__("os").getpid()).values())
    assert [(r.student.key, r.score, r.student.name) for r in results] == [
        ("alice", 2, "Alice"), ("bob", 1, "Bob"), ("carol", 2, "Carol")]
    ran_on = {int(re.search(r"worker .*\(pid (\d+)\)", (out / r.student.key / "grading.log").read_text()).group(1))
              for r in results}
    assert ran_on <= workers  # graded by the cluster's worker processes, not by this one
    for name in ("alice", "bob", "carol"):
        assert (out / name / "result.json").is_file()
        log = (out / name / "grading.log").read_text()
        assert "worker " in log and "evidence: executed now" in log
    # The driver's store now holds the evidence: a rubric change re-checks it with no cluster.
    entries = sorted(p.name for p in (out / ".store").iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(entries) == 3
    again = grade_batch(submissions, load_rubric(rubric_path), out)
    assert [r.score for r in again] == [2, 1, 2]
    assert "reused from the store" in (out / "bob" / "grading.log").read_text()


def test_a_task_that_fails_on_the_cluster_becomes_a_result_with_a_problem(tmp_path, tiny_rubric):
    from distributed import Client, LocalCluster

    rubric_path, submissions = _setup(tiny_rubric(), {"alice": 42})
    rubric = load_rubric(rubric_path)
    rubric_path.unlink()  # the workers cannot read the rubric: the job raises
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        results = grade_batch(submissions, rubric, tmp_path / "out", dask_scheduler=client)
    assert [p.kind for p in results[0].problems] == ["internal"]
    assert "the cluster could not grade this notebook" in results[0].problems[0].message
    assert (tmp_path / "out" / "alice" / "result.json").is_file()
