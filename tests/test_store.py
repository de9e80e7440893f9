"""The result store: keys, atomic writes, surviving SIGKILL, one batch at a time."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.errors import BatchLockedError, UsageError
from grader.model.evidence import (
    Architecture, CellError, CellRef, CompileInfo, Evidence, Figure, Finding, FitArgs, LayerInfo,
    Level, TrainingRun, Verification,
)
from grader.model.results import CheckResult, GradeResult, Status, Student, SubmissionProblem, TaskResult
from grader.store.atomic import write_atomic
from grader.store.result_store import ResultStore, result_key

REPO = Path(__file__).resolve().parent.parent


def _key(**changes) -> str:
    args = dict(notebook_bytes=b'{"cells": []}', support_files=[], settings={"fast": True},
                grader_version="0.1.0")
    args.update(changes)
    return result_key(**args)


def _evidence(history_length: int = 3) -> Evidence:
    layer = LayerInfo(name="conv2d", class_name="Conv2D", output_shape=[None, 30, 30, 32],
                      params=896, trainable_params=896, activation="relu",
                      config={"filters": 32, "kernel_size": [3, 3]})
    run = TrainingRun(
        index=0, model_id="m1", cell=CellRef(index=4, heading="Question 2", cell_id="abc"),
        architecture=Architecture(class_name="Sequential", layers=[layer], total_params=896,
                                  trainable_params=896, input_shape=[None, 32, 32, 3]),
        compile=CompileInfo(optimizer="Adam", learning_rate=0.001, loss="categorical_crossentropy",
                            metrics=["accuracy"]),
        fit=FitArgs(epochs=25, epochs_run=1, batch_size=64, capped={"epochs": [25, 1]}),
        history={"loss": [1.0 / (i + 1) for i in range(history_length)], "val_loss": [math.nan]},
        weights_file="models/m1.keras", fast_mode=True,
    )
    return Evidence(
        submission="alice.ipynb", runs=[run],
        cell_errors=[CellError(cell=CellRef(index=6), ename="ValueError", evalue="bad shape")],
        findings=[Finding(kind="compat", message="nb_epoch mapped to epochs", severity="warning")],
        verifications=[Verification(model_id="m1", status="ok",
                                    test_accuracy=Figure(0.61, Level.VERIFIED, "clean run"))],
        fast_mode=True,
    )


def _result(key: str = "alice", evidence: Evidence | None = None) -> GradeResult:
    check = CheckResult(check="total_params", title="total parameters = 896", status=Status.PASSED,
                        points=2, max_points=2, level=Level.EXECUTED, figure=896)
    return GradeResult(
        student=Student(key=key, name="Alice A", student_id="123", late=True,
                        note="2 files uploaded; graded hw1-1.ipynb, the newest"),
        path="alice.ipynb", score=2, max_score=3,
        tasks=[TaskResult(task_id="q1", title="CNN", points=2, max_points=3, checks=[check])],
        problems=[SubmissionProblem(kind="timeout", message="cell 7 ran over 600 s")],
        evidence=evidence,
    )


# --- result_key ------------------------------------------------------------------------------


def test_result_key_is_a_sha256_hex_and_stable():
    assert _key() == _key()
    assert len(_key()) == 64 and int(_key(), 16) >= 0


def test_result_key_keeps_its_form_so_stored_executions_are_still_found():
    """The key is the sha256 of length-prefixed parts; a change of how it is computed would make
    every stored execution of earlier batches unreachable (hours of training run again)."""
    import hashlib
    import json

    def part(label: str, data: bytes) -> bytes:
        return label.encode() + b"\0" + len(data).to_bytes(8, "big") + data

    notebook = b'{"cells": []}' * 1000
    expected = hashlib.sha256(part("grader_version", b"0.1.0") + part("notebook", notebook) + part(
        "settings", json.dumps({"fast": True}, sort_keys=True, separators=(",", ":")).encode())).hexdigest()
    assert _key(notebook_bytes=notebook) == expected


def test_result_key_changes_with_notebook_settings_or_grader_version():
    base = _key()
    assert _key(notebook_bytes=b'{"cells": [1]}') != base
    assert _key(settings={"fast": False}) != base
    assert _key(grader_version="0.1.1") != base


def test_result_key_ignores_settings_key_order():
    assert _key(settings={"a": 1, "b": {"x": 1, "y": 2}}) == _key(settings={"b": {"y": 2, "x": 1}, "a": 1})


def test_result_key_counts_support_files_by_name_and_content_not_location(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    for folder in ("one", "two"):
        (tmp_path / folder / "Custom.py").write_text("def plot(): pass\n")
    (tmp_path / "data.csv").write_text("1,2\n")
    first = _key(support_files=[tmp_path / "one" / "Custom.py", tmp_path / "data.csv"])
    assert first == _key(support_files=[tmp_path / "data.csv", tmp_path / "two" / "Custom.py"])
    (tmp_path / "two" / "Custom.py").write_text("def plot(): return 1\n")
    assert first != _key(support_files=[tmp_path / "data.csv", tmp_path / "two" / "Custom.py"])
    (tmp_path / "one" / "Helpers.py").write_text("def plot(): pass\n")
    assert first != _key(support_files=[tmp_path / "one" / "Helpers.py", tmp_path / "data.csv"])


def test_result_key_reads_support_folders_recursively(tmp_path):
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "sub" / "x.npz").write_bytes(b"1")
    first = _key(support_files=[tmp_path / "data"])
    (tmp_path / "data" / "sub" / "x.npz").write_bytes(b"2")
    assert _key(support_files=[tmp_path / "data"]) != first


def test_result_key_with_missing_support_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        _key(support_files=[tmp_path / "Custom.py"])


def test_result_key_writes_paths_in_settings_as_text(tmp_path):
    assert _key(settings={"data": tmp_path}) == _key(settings={"data": tmp_path.as_posix()})


# --- evidence ----------------------------------------------------------------------------------


def test_evidence_round_trips_through_the_store(tmp_path):
    store, key, evidence = ResultStore(tmp_path), _key(), _evidence()
    assert not store.has_evidence(key) and store.load_evidence(key) is None
    store.save_evidence(key, evidence, None)
    assert store.has_evidence(key)
    loaded = store.load_evidence(key)
    assert loaded.runs[0].architecture.layers[0].config == {"filters": 32, "kernel_size": [3, 3]}
    assert loaded.verifications[0].test_accuracy == Figure(0.61, Level.VERIFIED, "clean run")
    assert math.isnan(loaded.runs[0].history["val_loss"][0])
    loaded.runs[0].history["val_loss"] = evidence.runs[0].history["val_loss"] = []
    assert loaded == evidence


def test_bundle_files_are_stored_beside_the_evidence_and_links_are_not(tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "models").mkdir(parents=True)
    (bundle / "models" / "m1.keras").write_bytes(b"PK weights")
    (tmp_path / "secret").write_text("grader token")
    (bundle / "models" / "leak.keras").symlink_to(tmp_path / "secret")
    store, key = ResultStore(tmp_path / "out"), _key()
    store.save_evidence(key, _evidence(), bundle)
    entry = store.entry_dir(key)
    assert (entry / "models" / "m1.keras").read_bytes() == b"PK weights"
    assert not (entry / "models" / "leak.keras").exists()
    assert store.evidence_path(key) == entry / "evidence.json"


def test_only_the_recorders_files_are_stored_and_no_more_than_the_cap(tmp_path):
    from grader.store.result_store import _copy_regular_files

    bundle = tmp_path / "bundle"
    (bundle / "models").mkdir(parents=True)
    (bundle / "events.jsonl").write_bytes(b"{}\n" * 10)
    (bundle / "models" / "m1.keras").write_bytes(b"a" * 400)
    (bundle / "models" / "m2.keras").write_bytes(b"b" * 400)
    (bundle / "junk.bin").write_bytes(b"j" * 4000)  # what a notebook writes into the bundle
    (bundle / "models" / "extra.keras").write_bytes(b"x" * 10)
    target = tmp_path / "entry"
    target.mkdir()
    _copy_regular_files(bundle, target, cap=600)
    kept = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert kept == ["events.jsonl", "models/m1.keras"]  # the log first, then models while they fit


def test_saving_again_under_a_key_replaces_the_entry(tmp_path):
    store, key = ResultStore(tmp_path), _key()
    store.save_evidence(key, _evidence(history_length=3), None)
    store.save_evidence(key, _evidence(history_length=5), None)
    assert len(store.load_evidence(key).runs[0].history["loss"]) == 5
    assert [p.name for p in store.store_dir.iterdir()] == [key]


def test_the_run_time_of_an_execution_is_kept_beside_its_evidence_until_it_runs_again(tmp_path):
    store, key = ResultStore(tmp_path), _key()
    assert not store.save_execution(key, duration_s=61.5, timings={"execute": 60.0})  # no evidence yet
    store.save_evidence(key, _evidence(), None)
    assert store.save_execution(key, duration_s=61.5, timings={"execute": 60.0}, executed_at="2026-12-02T10:00:00+00:00")
    # A later attempt that stored no evidence of its own (a kernel that did not start) keeps the first record.
    assert not store.save_execution(key, duration_s=0.4, timings={})
    assert store.load_execution(key) == {"duration_s": 61.5, "timings": {"execute": 60.0},
                                         "executed_at": "2026-12-02T10:00:00+00:00"}
    store.save_evidence(key, _evidence(), None)  # executed again (--force): a new entry, no record yet
    assert store.load_execution(key) is None
    assert store.save_execution(key, duration_s=58.0, timings={}) and store.load_execution(key)["duration_s"] == 58.0


def test_an_unreadable_run_time_record_is_left_out(tmp_path):
    store, key = ResultStore(tmp_path), _key()
    store.save_evidence(key, _evidence(), None)
    (store.entry_dir(key) / "execution.json").write_text('{"duration_s": "soon"}')
    assert store.load_execution(key) is None and store.has_evidence(key)
    (store.entry_dir(key) / ".execution.json.tmp-0123abcd").write_text('{"half')  # a writer killed half-way
    with store.lock():
        pass
    assert not list(store.entry_dir(key).glob(".execution.json.tmp-*"))


def test_unreadable_evidence_is_none_and_the_entry_is_removed(tmp_path):
    store, key = ResultStore(tmp_path), _key()
    store.save_evidence(key, _evidence(), None)
    store.evidence_path(key).write_text('{"submission": "alice.ipynb", "runs": [{"index": "x"')
    assert store.load_evidence(key) is None
    assert not store.entry_dir(key).exists() and not store.has_evidence(key)


def test_evidence_of_another_schema_version_is_not_used(tmp_path):
    store, key = ResultStore(tmp_path), _key()
    store.save_evidence(key, _evidence(), None)
    data = json.loads(store.evidence_path(key).read_text())
    data["schema_version"] = 999
    store.evidence_path(key).write_text(json.dumps(data))
    assert store.load_evidence(key) is None


def test_a_key_that_is_not_hex_is_refused(tmp_path):
    with pytest.raises(ValueError):
        ResultStore(tmp_path).evidence_path("../../etc")


# --- results -----------------------------------------------------------------------------------


def test_grade_result_round_trips_through_the_store(tmp_path):
    store = ResultStore(tmp_path)
    result = _result(evidence=_evidence())
    path = store.save_result(result)
    assert path == tmp_path / "alice" / "result.json"
    (loaded,) = store.load_results()
    loaded.evidence.runs[0].history["val_loss"] = result.evidence.runs[0].history["val_loss"] = []
    assert loaded == result
    assert loaded.checks[0].status is Status.PASSED and loaded.checks[0].level is Level.EXECUTED


def test_saving_a_result_again_replaces_it(tmp_path):
    store = ResultStore(tmp_path)
    store.save_result(_result())
    changed = _result()
    changed.score = 3
    store.save_result(changed)
    assert [r.score for r in store.load_results()] == [3]
    assert sorted(p.name for p in (tmp_path / "alice").iterdir()) == ["result.json"]


def test_unreadable_results_are_skipped_and_reported(tmp_path):
    store = ResultStore(tmp_path)
    store.save_result(_result("alice"))
    store.save_result(_result("bob"))
    (tmp_path / "bob" / "result.json").write_text("{ half")
    (tmp_path / "carol").mkdir()
    (tmp_path / "carol" / "result.json").write_text('{"student": {"key": 5}, "path": "x"}')
    assert [r.student.key for r in store.load_results()] == ["alice"]
    assert sorted(p.parent.name for p, _ in store.unreadable) == ["bob", "carol"]


def test_a_student_key_that_is_not_a_plain_folder_name_is_refused(tmp_path):
    for key in ("../x", ".store", "a/b", ""):
        with pytest.raises(ValueError):
            ResultStore(tmp_path).save_result(_result(key))


def test_write_atomic_leaves_no_temporary_file(tmp_path):
    write_atomic(tmp_path / "report.html", b"<html>1</html>")
    write_atomic(tmp_path / "report.html", b"<html>2</html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert (tmp_path / "report.html").read_bytes() == b"<html>2</html>"


# --- crashes -------------------------------------------------------------------------------------

_CRASH_BEFORE_RENAME = r"""
import os, sys
from pathlib import Path
from grader.store import result_store as module
from grader.model.evidence import Evidence
store = module.ResultStore(Path(sys.argv[1]))
module.os.rename = lambda *args: os._exit(9)   # the process dies between temp write and rename
store.save_evidence(sys.argv[2], Evidence(submission="alice.ipynb"), None)
"""


def _python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_crash_between_temp_write_and_rename_is_never_seen_and_is_cleaned(tmp_path):
    key = _key()
    process = _python(_CRASH_BEFORE_RENAME, str(tmp_path), key)
    assert process.wait(timeout=60) == 9, process.stderr.read()
    store = ResultStore(tmp_path)
    leftovers = [p for p in store.store_dir.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1 and (leftovers[0] / "evidence.json").is_file()  # written, not renamed
    assert not store.has_evidence(key) and store.load_evidence(key) is None
    with store.lock():
        assert not any(p.name.startswith(".tmp-") for p in store.store_dir.iterdir())


def test_leftover_temporary_result_file_is_ignored_and_cleaned(tmp_path):
    store = ResultStore(tmp_path)
    store.save_result(_result("alice"))
    (tmp_path / "alice" / ".result.json.tmp-0123abcd").write_text('{"half')
    assert [r.student.key for r in store.load_results()] == ["alice"] and store.unreadable == []
    with store.lock():
        pass
    assert [p.name for p in (tmp_path / "alice").iterdir()] == ["result.json"]


_BATCH = r"""
import sys
from pathlib import Path
from grader.model.evidence import Architecture, CellRef, Evidence, TrainingRun
from grader.model.results import GradeResult, Student
from grader.store.result_store import ResultStore, result_key

out, count = Path(sys.argv[1]), int(sys.argv[2])
store = ResultStore(out)
with store.lock():
    for i in range(count):
        key = result_key(notebook_bytes=b"nb%d" % i, support_files=[], settings={}, grader_version="t")
        evidence = store.load_evidence(key)
        if evidence is None:   # not executed yet (or the entry was broken): "execute"
            evidence = Evidence(submission=f"s{i}.ipynb", runs=[TrainingRun(
                index=0, model_id="m", cell=CellRef(index=1), architecture=Architecture(total_params=i),
                history={"loss": [0.5] * 2000})])
            store.save_evidence(key, evidence, None)
            print("executed", i, flush=True)
        result = GradeResult(student=Student(key=f"s{i:03d}"), path=f"s{i}.ipynb", score=float(i),
                             evidence=evidence)
        store.save_result(result)
        print("stored", i, flush=True)
"""


def _assert_everything_visible_is_whole(out: Path) -> int:
    store = ResultStore(out)
    results = store.load_results()
    assert store.unreadable == []
    for result in results:
        assert result.score == int(result.student.key[1:])
        assert result.evidence.runs[0].architecture.total_params == result.score
    for entry in store.store_dir.iterdir():
        if entry.is_dir() and not entry.name.startswith("."):
            evidence = json.loads((entry / "evidence.json").read_text())  # complete JSON
            assert len(evidence["runs"][0]["history"]["loss"]) == 2000
    return len(results)


def test_batch_killed_with_sigkill_restarts_with_every_result_exactly_once(tmp_path):
    count = 60
    executed: list[int] = []
    for stop_after in (7, 23, 41):
        process = _python(_BATCH, str(tmp_path), str(count))
        for line in process.stdout:
            if line.startswith("executed"):
                executed.append(int(line.split()[1]))
            if line.strip() == f"stored {stop_after}":
                break
        process.send_signal(signal.SIGKILL)  # mid-write of the next submission, most likely
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
        assert _assert_everything_visible_is_whole(tmp_path) >= stop_after + 1
    process = _python(_BATCH, str(tmp_path), str(count))
    output, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors
    executed += [int(line.split()[1]) for line in output.splitlines() if line.startswith("executed")]
    assert _assert_everything_visible_is_whole(tmp_path) == count
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        f"s{i:03d}" for i in range(count)]
    # Finished executions were never repeated: a kill can cost at most the one in flight.
    assert len(executed) <= count + 3 and sorted(set(executed)) == list(range(count))


# --- one batch at a time ----------------------------------------------------------------------

_HOLD_LOCK = r"""
import sys, time
from pathlib import Path
from grader.store.result_store import ResultStore
with ResultStore(Path(sys.argv[1])).lock():
    print("locked", flush=True)
    time.sleep(60)
"""


def test_second_batch_on_the_same_folder_gets_a_clear_error(tmp_path):
    store = ResultStore(tmp_path)
    with store.lock():
        with pytest.raises(BatchLockedError, match="Another grading batch is already writing") as info:
            with ResultStore(tmp_path).lock():
                pass
        assert f"pid {os.getpid()}" in str(info.value)
    with store.lock():  # released on exit
        pass


def test_lock_of_a_killed_batch_is_released_by_the_system(tmp_path):
    process = _python(_HOLD_LOCK, str(tmp_path))
    try:
        assert process.stdout.readline().strip() == "locked"
        with pytest.raises(BatchLockedError, match=f"pid {process.pid}"):
            with ResultStore(tmp_path).lock():
                pass
    finally:
        process.kill()
        process.wait(timeout=30)
    deadline = time.time() + 10
    while True:
        try:
            with ResultStore(tmp_path).lock():
                break
        except BatchLockedError:
            assert time.time() < deadline
            time.sleep(0.05)
