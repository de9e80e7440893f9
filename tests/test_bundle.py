"""The recorder's bundle is untrusted: malformed, oversized or tampered bundles become findings or a
BundleError for that submission, never a crash and never a half-used record."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from grader.execute.bundle import read_bundle
from grader.errors import BundleError
from grader.model.evidence import Cell


def _write(bundle: Path, *events: dict | str) -> Path:
    (bundle / "models").mkdir(parents=True, exist_ok=True)
    with (bundle / "events.jsonl").open("w") as handle:
        for event in events:
            handle.write((event if isinstance(event, str) else json.dumps(event)) + "\n")
    return bundle


FIT = {"event": "fit", "cell_id": "2", "index": 0, "model_id": "m1",
       "architecture": {"name": "s", "class_name": "Sequential", "total_params": 330, "trainable_params": 330,
                        "non_trainable_params": 0, "layers": [{"name": "d", "class_name": "Dense", "params": 330}]},
       "compile": {"optimizer": "SGD", "learning_rate": 0.01, "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
       "fit": {"epochs": 2, "batch_size": 32}, "history": {"accuracy": [0.4, 0.5], "loss": [1.2, 1.0]},
       "weights_file": "models/m1.keras", "duration_s": 1.5, "error": None}
START = {"event": "fit_start", "cell_id": "2", "index": 0, "model_id": "m1", "fit": {"epochs": 2}}
CELLS = [Cell(0, "markdown", "# Q1", heading="Q1"), Cell(1, "code", "x=1", heading="Q1"), Cell(2, "code", "fit", heading="Q1")]


def test_a_valid_fit_record_becomes_a_training_run_with_cell_heading(tmp_path):
    bundle = _write(tmp_path, START, FIT, {"event": "end"})
    (bundle / "models" / "m1.keras").write_bytes(b"zip")
    evidence = read_bundle(bundle, submission="s", cells=CELLS)
    (run,) = evidence.runs
    assert (run.cell.index, run.cell.heading, run.architecture.total_params) == (2, "Q1", 330)
    assert run.weights_file == "models/m1.keras"


def test_missing_event_log_is_a_bundle_error(tmp_path):
    with pytest.raises(BundleError, match="no event log"):
        read_bundle(tmp_path, submission="s", cells=[])


def test_oversized_event_log_is_a_bundle_error(tmp_path, monkeypatch):
    monkeypatch.setattr("grader.execute.bundle.MAX_LOG_BYTES", 100)
    _write(tmp_path, FIT)
    with pytest.raises(BundleError, match="over the"):
        read_bundle(tmp_path, submission="s", cells=[])


def test_garbage_lines_are_dropped_and_reported(tmp_path):
    bundle = _write(tmp_path, "not json", {"event": "fit", "index": "zero"}, {"event": "exploit"}, START, FIT, {"event": "end"})
    evidence = read_bundle(bundle, submission="s", cells=CELLS)
    assert len(evidence.runs) == 1
    (finding,) = [f for f in evidence.findings if f.kind == "bundle"]
    assert finding.severity == "error" and "3 record(s)" in finding.message


def test_record_with_wrong_types_is_not_half_used(tmp_path):
    bad = dict(FIT, history={"accuracy": ["high", "higher"]})
    evidence = read_bundle(_write(tmp_path, bad, {"event": "end"}), submission="s", cells=CELLS)
    assert evidence.runs == []


def test_weights_path_outside_the_bundle_is_refused(tmp_path):
    secret = tmp_path / "secret.keras"
    secret.write_bytes(b"x")
    bundle = _write(tmp_path / "b", dict(FIT, weights_file="../secret.keras"), {"event": "end"})
    assert read_bundle(bundle, submission="s", cells=CELLS).runs[0].weights_file is None


def test_weights_file_that_is_a_symlink_is_refused(tmp_path):
    target = tmp_path / "elsewhere.keras"
    target.write_bytes(b"x")
    bundle = _write(tmp_path / "b", FIT, {"event": "end"})
    os.symlink(target, bundle / "models" / "m1.keras")
    assert read_bundle(bundle, submission="s", cells=CELLS).runs[0].weights_file is None


def test_training_cut_short_keeps_its_epochs(tmp_path):
    start = {"event": "fit_start", "cell_id": "2", "index": 0, "model_id": "m1", "fit": {"epochs": 10}, "architecture": FIT["architecture"]}
    epochs = [{"event": "epoch", "index": 0, "model_id": "m1", "epoch": i, "logs": {"accuracy": 0.1 * i}} for i in range(3)]
    evidence = read_bundle(_write(tmp_path, start, *epochs), submission="s", cells=CELLS)
    (run,) = evidence.runs
    assert run.history["accuracy"] == pytest.approx([0.0, 0.1, 0.2]) and "did not finish" in run.error
    assert any("closing cell" in f.message for f in evidence.findings)


def test_evaluation_overlapping_training_rows_is_flagged(tmp_path):
    evaluate = {"event": "evaluate", "cell_id": "2", "index": 0, "model_id": "m1", "samples": 100,
                "results": {"accuracy": 0.99}, "overlap": [{"fit": 0, "rows": 100, "of": 100}]}
    bundle = _write(tmp_path, START, FIT, evaluate, {"event": "end"})
    (bundle / "models" / "m1.keras").write_bytes(b"zip")
    evidence = read_bundle(bundle, submission="s", cells=CELLS)
    assert [f.kind for f in evidence.findings] == ["trained_on_test"]


def test_a_model_file_the_recorder_named_but_that_is_gone_is_a_finding(tmp_path):
    evidence = read_bundle(_write(tmp_path, START, FIT, {"event": "end"}), submission="s", cells=CELLS)
    (finding,) = [f for f in evidence.findings if f.kind == "model_file"]
    assert finding.model_id == "m1" and finding.severity == "error" and "removed or replaced" in finding.message
    assert evidence.runs[0].weights_file is None


def test_a_model_never_saved_is_a_finding_unless_the_recorder_said_why(tmp_path):
    unsaved = dict(FIT, weights_file=None)
    silent = read_bundle(_write(tmp_path / "a", START, unsaved, {"event": "end"}), submission="s", cells=CELLS)
    assert [f.kind for f in silent.findings] == ["model_file"] and "switched off" in silent.findings[0].message
    said = {"event": "finding", "kind": "save_failed", "severity": "warning",
            "message": "the trained model could not be saved for verification: TypeError: Lambda"}
    told = read_bundle(_write(tmp_path / "b", START, said, unsaved, {"event": "end"}), submission="s", cells=CELLS)
    assert [f.kind for f in told.findings] == ["save_failed"]


def test_a_fit_recorded_twice_loses_its_model_file_and_is_flagged(tmp_path):
    bundle = _write(tmp_path, START, FIT, dict(FIT, history={"accuracy": [0.99, 0.99]}), {"event": "end"})
    (bundle / "models" / "m1.keras").write_bytes(b"zip")
    evidence = read_bundle(bundle, submission="s", cells=CELLS)
    assert evidence.runs and all(run.weights_file is None for run in evidence.runs)
    assert any(f.kind == "tampered" and "#1" in f.message for f in evidence.findings)
