"""The seals of a grading run (grader.store.seal) without kernels: stored files changed behind the
grader's back are found, put back or refused; the sweep kills only its own run's processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from grader.model.evidence import Evidence
from grader.model.results import GradeResult, Student
from grader.store.seal import RUN_MARKER, RunSeal, sweep, verify_store
from grader.store.result_store import ResultStore


def _result(key: str, score: float) -> GradeResult:
    return GradeResult(student=Student(key), path=f"{key}.ipynb", score=score, max_score=2.0)


@pytest.mark.parametrize("when", ["before", "after"])
def test_stored_evidence_changed_during_a_run_is_not_reused(tmp_path, when):
    store = ResultStore(tmp_path)
    key = "ab" * 32
    store.save_evidence(key, Evidence(submission="alice.ipynb"))
    seal = RunSeal()
    if when == "after":  # written by this run, then changed
        store.seal = seal
        store.save_evidence(key, Evidence(submission="alice.ipynb"))
    else:  # in the start manifest, then changed
        seal.take_manifest(tmp_path)
        store.seal = seal
    assert store.load_evidence(key) is not None  # unchanged: reused
    path = store.evidence_path(key)
    path.write_text(path.read_text().replace("alice", "mallo"))
    assert store.load_evidence(key) is None
    assert not store.entry_dir(key).exists()  # gone: the notebook runs again
    assert [t.what for t in seal.tampered] == ["evidence"]


def test_a_results_file_removed_or_replaced_by_a_link_is_written_back(tmp_path):
    store = ResultStore(tmp_path)
    store.save_result(_result("carol", 1.0))  # from an earlier run
    seal = RunSeal()
    seal.take_manifest(tmp_path)
    store.seal = seal
    store.save_result(_result("alice", 2.0))
    (tmp_path / "alice" / "result.json").unlink()
    (tmp_path / "carol" / "result.json").unlink()
    (tmp_path / "carol" / "result.json").symlink_to(tmp_path / "alice")
    found = verify_store(seal, tmp_path)
    assert sorted(t.student for t in found) == ["alice", "carol"]
    scores = {r.student.key: r.score for r in ResultStore(tmp_path).load_results()}
    assert scores == {"alice": 2.0, "carol": 1.0}
    assert verify_store(seal, tmp_path) == []  # put right: nothing more to find


def test_human_scores_added_by_a_kernel_are_set_aside(tmp_path):
    seal = RunSeal()
    seal.take_manifest(tmp_path)
    (tmp_path / "manual_scores.jsonl").write_text('{"student": "mallory", "points": 26}\n')
    found = verify_store(seal, tmp_path)
    assert [t.what for t in found] == ["scores"]
    assert not (tmp_path / "manual_scores.jsonl").exists()
    assert len(list(tmp_path.glob("manual_scores.jsonl.unverified-*"))) == 1


def test_the_sweep_kills_only_processes_with_this_runs_marker(tmp_path):
    mine, other = RunSeal(), RunSeal()
    spawn = [sys.executable, "-c", "import time; time.sleep(60)"]
    marked = subprocess.Popen(spawn, env={**os.environ, RUN_MARKER: f"{mine.run_id}.3"})  # one of its kernels
    unmarked = subprocess.Popen(spawn, env={**os.environ, RUN_MARKER: other.run_id})
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until its environment can be read
            try:
                if psutil.Process(marked.pid).environ().get(RUN_MARKER):
                    break
            except psutil.Error:
                pass
            time.sleep(0.02)
        assert sweep(mine.run_id) == [marked.pid]
        assert marked.wait(timeout=10) == -9  # killed
        assert unmarked.poll() is None
    finally:
        for process in (marked, unmarked):
            process.kill()
            process.wait()
