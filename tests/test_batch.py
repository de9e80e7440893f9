"""Batch grading: GPUs shared by kernels, logs per submission, reuse of stored evidence."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from grader.batch.gpus import Gpu, choose_gpus, default_workers, detect_gpus, kernel_environments
from grader.batch.local import grade_batch, grade_submissions, pending_executions
from grader.errors import UsageError
from grader.config import GradingOptions
from grader.pipeline.session import GradingSession
from grader.model.results import Student
from grader.rubric.load import load_rubric
from grader.collect import Submission
from tests.nbfactory import code, md, notebook, write

SMI_OUTPUT = """0, GPU-aaaa1111-0000, NVIDIA H100 80GB HBM3, 81559
1, GPU-bbbb2222-0000, NVIDIA H100 80GB HBM3, 81559
"""


def _fake_nvidia_smi(folder: Path, output: str = SMI_OUTPUT, status: int = 0) -> Path:
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\nexit {status}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def _submissions(folder: Path, sources: dict[str, str]) -> list[Submission]:
    return [Submission(path=write(notebook(md("# Question 1"), code(source)), folder / f"{name}.ipynb"),
                       student=Student(key=name)) for name, source in sources.items()]


# --- GPUs ------------------------------------------------------------------------------------


def test_gpus_are_read_from_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpus = detect_gpus(str(_fake_nvidia_smi(tmp_path)))
    assert [(g.index, g.name) for g in gpus] == [("0", "NVIDIA H100 80GB HBM3"), ("1", "NVIDIA H100 80GB HBM3")]
    assert gpus[0].memory_bytes == 81559 * 2**20


def test_gpus_are_narrowed_to_cuda_visible_devices(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbbb2222-0000")
    assert [g.index for g in detect_gpus(str(_fake_nvidia_smi(tmp_path)))] == ["1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_gpus(str(_fake_nvidia_smi(tmp_path))) == []


def test_no_nvidia_smi_or_a_failing_one_means_no_gpu(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert detect_gpus(str(tmp_path / "missing-nvidia-smi")) == []
    assert detect_gpus(str(_fake_nvidia_smi(tmp_path, "NVIDIA-SMI has failed\n", status=9))) == []


def test_gpus_option_picks_listed_gpus_and_refuses_unknown_ones():
    found = [Gpu("0", "A", 2**34), Gpu("1", "B", 2**34)]
    assert choose_gpus("1", found) == [found[1]]
    assert choose_gpus("all", found) == found
    assert choose_gpus("none", found) == []
    with pytest.raises(UsageError, match="no GPU '3'.*GPUs found: 0, 1"):
        choose_gpus("0,3", found)


def test_default_workers_follow_gpu_memory_within_cores_and_host_memory(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr("grader.batch.gpus._host_memory", lambda: 128 * 2**30)
    assert default_workers() == 16
    assert default_workers([Gpu("0", "small", 12 * 2**30)]) == 2
    assert default_workers([Gpu("0", "big", 80 * 2**30), Gpu("1", "big", 80 * 2**30)]) == 16
    monkeypatch.setattr("grader.batch.gpus._host_memory", lambda: 8 * 2**30)
    assert default_workers([Gpu("0", "big", 80 * 2**30)]) == 2


def test_kernel_slots_take_the_gpus_in_turn_with_memory_growth():
    envs = kernel_environments(3, [Gpu("0"), Gpu("1")])
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1", "0"]
    assert all(e["TF_FORCE_GPU_ALLOW_GROWTH"] == "true" and e["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" for e in envs)
    assert kernel_environments(2, []) == [{}, {}]


def test_each_kernel_runs_with_the_environment_of_its_gpu(tmp_path, tiny_rubric):
    rubric = load_rubric(tiny_rubric(extra=(
        "  - id: gpu\n"
        "    title: the kernel's GPU\n"
        "    checks:\n"
        "      - answer: {variable: device, equals: '1'}\n"
        "      - answer: {variable: growth, equals: 'true'}\n")))
    source = "import os\nanswer = 42\ndevice = os.environ['CUDA_VISIBLE_DEVICES']\ngrowth = os.environ['TF_FORCE_GPU_ALLOW_GROWTH']"
    submissions = _submissions(tmp_path / "subs", {"alice": source})
    results = grade_batch(submissions, rubric, tmp_path / "out", workers=1, gpus=[Gpu("1", "fake")],
                          options=GradingOptions(preflight=False))
    values = {v.name: v.value for v in results[0].evidence.variables}
    assert values == {"answer": 42, "device": "1", "growth": "true"}
    assert "GPU 1" in (tmp_path / "out" / "alice" / "grading.log").read_text()


# --- logs and clean-up ----------------------------------------------------------------------


def test_each_submission_gets_a_log_with_stages_and_cell_errors(tmp_path, tiny_rubric):
    rubric = load_rubric(tiny_rubric())
    submissions = _submissions(tmp_path / "subs", {"bob": "import sys\nprint('to the kernel', file=sys.__stderr__)\nanswer = 41\n1 / 0"})
    grade_batch(submissions, rubric, tmp_path / "out", options=GradingOptions(preflight=False))
    log = (tmp_path / "out" / "bob" / "grading.log").read_text()
    assert "evidence: executed now" in log
    for stage in ("load", "kernel start", "execute", "check", "total"):
        assert f"\n  {stage} " in log
    assert "cell 2: ZeroDivisionError: division by zero" in log
    assert "score: 1/2" in log  # the code check passes, the answer check does not
    assert "to the kernel" in (tmp_path / "out" / "bob" / "kernel.log").read_text()


def test_working_folders_are_removed_during_the_batch_once_their_kernel_is_gone(tmp_path, tiny_rubric):
    rubric = load_rubric(tiny_rubric())
    submissions = _submissions(tmp_path / "subs", {"a": "answer = 42", "b": "answer = 42", "c": "answer = 1"})
    session = GradingSession(rubric, tmp_path / "out", GradingOptions(preflight=False))
    runs = session.work_root / "runs"
    left_when_c_finished: list[str] = []

    def on_result(submission, result) -> None:
        if submission.student.key == "c":
            left_when_c_finished.extend(p.name for p in runs.iterdir() if p.name != ".sealed")
            left_when_c_finished.extend(p.name for p in (runs / ".sealed").iterdir())

    try:
        results = asyncio.run(grade_submissions(session, submissions, workers=1, on_result=on_result))
        assert [r.student.key for r in results] == ["a", "b", "c"]
        assert all(r.evidence is not None and r.evidence.cells for r in results)
        assert "a" not in left_when_c_finished  # a's kernel stopped long before: its folders are gone
    finally:
        session.close()
    assert not session.work_root.exists()


# --- stored evidence ------------------------------------------------------------------------


def _entries(out: Path) -> dict[str, int]:
    """Stored evidence entries by key, with the inode of their evidence file: a new execution
    stores a new file, so an unchanged inode means the entry was not written again."""
    store = out / ".store"
    return {p.name: (p / "evidence.json").stat().st_ino for p in store.iterdir()
            if p.is_dir() and not p.name.startswith(".")}


def test_rubric_change_rechecks_stored_evidence_without_executing(tmp_path, tiny_rubric):
    submissions = _submissions(tmp_path / "subs", {"a": "answer = 42", "b": "answer = 7"})
    out = tmp_path / "out"
    first = grade_batch(submissions, load_rubric(tiny_rubric()), out, options=GradingOptions(preflight=False))
    assert [r.score for r in first] == [2, 1]
    before = _entries(out)
    changed = load_rubric(tiny_rubric(expected=7))  # only a check's expected value changes
    second = grade_batch(submissions, changed, out, options=GradingOptions(preflight=False))
    assert [r.score for r in second] == [1, 2]
    assert _entries(out) == before
    assert "reused from the store" in (out / "a" / "grading.log").read_text()


def test_changed_execution_settings_execute_again(tmp_path, tiny_rubric):
    submissions = _submissions(tmp_path / "subs", {"a": "answer = 42"})
    out, rubric = tmp_path / "out", load_rubric(tiny_rubric())
    grade_batch(submissions, rubric, out, options=GradingOptions(preflight=False))
    grade_batch(submissions, rubric, out, options=GradingOptions(preflight=False, cell_timeout=77))
    assert len(_entries(out)) == 2


def test_result_key_is_the_same_in_every_batch_with_prepared_data(tmp_path, tiny_rubric):
    path = tiny_rubric(extra="dataset: cifar10\ndata_source: synthetic\n")
    submission = _submissions(tmp_path / "subs", {"a": "answer = 42"})[0]
    keys = []
    for _ in range(2):
        session = GradingSession(load_rubric(path), tmp_path / "out", GradingOptions(fast=True))
        try:
            session.prepare_data(start_verifier=False)
            keys.append(session.key_for(submission, session.settings()))
            assert session.verifier is None
        finally:
            session.close()
    assert keys[0] == keys[1]


def test_nothing_is_pending_when_every_submission_has_stored_evidence(tmp_path, tiny_rubric):
    submissions = _submissions(tmp_path / "subs", {"a": "answer = 42", "b": "answer = 1"})
    rubric = load_rubric(tiny_rubric())
    grade_batch(submissions[:1], rubric, tmp_path / "out", options=GradingOptions(preflight=False))
    session = GradingSession(rubric, tmp_path / "out", GradingOptions())
    try:
        assert [s.student.key for s in pending_executions(session, submissions)] == ["b"]
    finally:
        session.close()
    forced = GradingSession(rubric, tmp_path / "out", GradingOptions(force=True))  # the config is resolved once
    try:
        assert len(pending_executions(forced, submissions)) == 2
    finally:
        forced.close()


_PREPARE_FROM_KERAS_CACHE = r"""
import sys
from pathlib import Path
from grader.errors import DatasetError
from grader.pipeline.dataset import prepared_dataset as _prepared_dataset
try:
    _prepared_dataset("cifar10", "auto", None, None, cache=Path(sys.argv[1]) / "cache", target=Path(sys.argv[1]) / "data")
except DatasetError as exc:
    print("DatasetError:", exc)
print("keras imported:", "keras" in sys.modules or "tensorflow" in sys.modules)
"""


def test_data_from_the_keras_cache_is_read_outside_the_graders_process(tmp_path):
    import subprocess
    import sys

    (tmp_path / "keras" / "datasets" / "cifar-10-batches-py").mkdir(parents=True)  # present, but not readable data
    env = dict(os.environ, KERAS_HOME=str(tmp_path / "keras"), PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    done = subprocess.run([sys.executable, "-c", _PREPARE_FROM_KERAS_CACHE, str(tmp_path)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert "DatasetError: cifar10 could not be read from the Keras cache" in done.stdout
    assert "keras imported: False" in done.stdout


def test_prepared_data_is_kept_for_the_next_batch(tmp_path, tiny_rubric):
    path = tiny_rubric(extra="dataset: cifar10\ndata_source: synthetic\n")
    cache = tmp_path / "out" / ".store" / ".data"
    seen = []
    for _ in range(2):
        session = GradingSession(load_rubric(path), tmp_path / "out", GradingOptions(fast=True))
        try:
            session.prepare_data(start_verifier=False)
            assert session.datasets["cifar10"].is_file()
            seen.append([(p.name, p.stat().st_ino) for p in cache.glob("*.npz")])
        finally:
            session.close()
    assert len(seen[0]) == 1 and seen[1] == seen[0]  # made once, not written again


def test_a_kernel_that_cannot_start_costs_its_submission_not_the_batch(tmp_path, tiny_rubric):
    rubric = load_rubric(tiny_rubric(extra="kernel: no-such-kernel-here\n"))
    submissions = _submissions(tmp_path / "subs", {"a": "answer = 42", "b": "answer = 42"})
    results = grade_batch(submissions, rubric, tmp_path / "out", options=GradingOptions(preflight=False))
    assert [r.student.key for r in results] == ["a", "b"]
    for result in results:
        assert [p.kind for p in result.problems] == ["internal"]
        assert "could not be started" in result.problems[0].message
        assert (tmp_path / "out" / result.student.key / "grading.log").is_file()
