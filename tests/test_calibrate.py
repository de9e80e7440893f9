"""`grade calibrate RUBRIC`: retrain the rubric's reference solutions, measure the margin to each threshold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli.calibrate import calibrate_command
from grader.course.calibrate import Margin, calibrate, format_calibration, thresholds
from grader.errors import DatasetError
from grader.rubric.load import load_rubric, load_rubric_text

ROOT = Path(__file__).resolve().parent.parent

# One reference, one threshold: the smallest calibration there is.
TINY_RUBRIC = """
name: tiny
dataset: cifar10
tasks:
  - id: cnn
    title: "a CNN of at least 20% in 2 epochs"
    model: {fit: 1}
    reference: cifar10_cnn
    checks:
      - epochs: {at_most: 2}
      - test_accuracy: {at_least: 20%}
  - id: free
    model: {fit: 2}
    checks:
      - test_accuracy: 50%
"""
QUICK = dict(data_source="synthetic", train_size=200, test_size=60)


def _margin(accuracies, threshold=0.75):
    mean = sum(accuracies) / len(accuracies)
    return Margin("t", "title", "ref", threshold, 25, 25, mean, 0.0, min(accuracies), max(accuracies),
                  sum(a >= threshold for a in accuracies), len(accuracies))


def test_thresholds_of_the_cifar10_rubric_with_their_epoch_limits():
    found = [(t.task_id, t.at_least, t.epochs, t.reference) for t in thresholds(load_rubric(ROOT / "rubrics/cifar10.yaml"))]
    assert found == [("fc", 0.45, None, "cifar10_fc"), ("cnn", 0.62, None, "cifar10_cnn"),
                     ("target", 0.75, 25, "cifar10_cnn75")]


def test_verdict_is_reachable_only_when_every_seed_reaches_the_threshold():
    assert _margin([0.78, 0.77, 0.76]).verdict == "reachable"
    assert _margin([0.80, 0.79, 0.74]).verdict == "borderline"
    assert _margin([0.74, 0.73, 0.76]).verdict == "not reached"


def test_margin_is_mean_minus_threshold():
    assert _margin([0.78, 0.80]).margin == pytest.approx(0.04)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One quick calibration (two seeds, one epoch) shared by the tests that read its report or cache."""
    cache = tmp_path_factory.mktemp("cache")
    return cache, calibrate(load_rubric_text(TINY_RUBRIC), seeds=[0, 1], epochs=1, cache_dir=cache, **QUICK)


def test_calibrate_trains_the_reference_for_the_tasks_epoch_limit(tmp_path):
    report = calibrate(load_rubric_text(TINY_RUBRIC), seeds=[0], cache_dir=tmp_path, **QUICK)
    (training,) = report.trainings
    assert (training.model, training.epochs, [run.seed for run in training.runs]) == ("cifar10_cnn", 2, [0])
    assert training.runs[0].epochs == 2
    (margin,) = report.margins
    assert (margin.task_id, margin.threshold, margin.epochs_trained, margin.seeds) == ("cnn", 0.20, 2, 1)
    assert margin.mean == pytest.approx(training.mean)
    assert margin.seeds_reaching == sum(a >= 0.20 for a in training.accuracies)


def test_threshold_without_a_reference_is_named_in_the_notes(quick):
    _, report = quick
    assert any("task 'free'" in note and "names no reference" in note for note in report.notes)


def test_epoch_override_is_flagged_as_a_quick_run(quick):
    _, report = quick
    assert report.trainings[0].epochs == 1 and report.margins[0].epochs_limit == 2
    assert any("instead of the rubric's limits" in note for note in report.notes)


def test_calibration_table_shows_threshold_mean_std_margin_and_verdict(quick):
    _, report = quick
    text = format_calibration(report)
    margin = report.margins[0]
    assert "cifar10_cnn" in text and "20.0%" in text
    assert f"{100 * margin.margin:+.1f} pts" in text and margin.verdict in text
    assert f"± {100 * margin.std:.1f}" in text and "synthetic stand-in data" in text


def test_missing_real_data_says_which_file_to_put_where(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(DatasetError, match="cifar-10-batches-py"):
        calibrate(load_rubric_text(TINY_RUBRIC), seeds=[0], data_source="auto", cache_dir=tmp_path)


def test_cli_prints_the_table_and_writes_json(quick, tmp_path):
    cache, _ = quick  # same settings as the shared calibration: read from its cache
    rubric = tmp_path / "tiny.yaml"
    rubric.write_text(TINY_RUBRIC)
    out = tmp_path / "calibration.json"
    result = CliRunner().invoke(calibrate_command, [
        str(rubric), "--seeds", "2", "--epochs", "1", "--data", "synthetic", "--train-size", "200",
        "--test-size", "60", "--cache-dir", str(cache), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "Calibration of rubric 'tiny'" in result.output and "(cached)" in result.output
    data = json.loads(out.read_text())
    assert data["margins"][0]["task_id"] == "cnn" and data["margins"][0]["verdict"] in (
        "reachable", "borderline", "not reached")


def test_cli_unavailable_data_is_a_message_with_exit_code_2(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    rubric = tmp_path / "tiny.yaml"
    rubric.write_text(TINY_RUBRIC)
    result = CliRunner().invoke(calibrate_command, [str(rubric), "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 2
    assert "not available offline" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_calibrate_the_cifar10_rubric_end_to_end_on_cpu(tmp_path):
    report = calibrate("cifar10", seeds=[0, 1], epochs=1, cache_dir=tmp_path, **QUICK)
    assert [m.task_id for m in report.margins] == ["fc", "cnn", "target"]
    assert [t.model for t in report.trainings] == ["cifar10_fc", "cifar10_cnn", "cifar10_cnn75"]
    assert all(len(t.runs) == 2 and t.device in ("CPU", "GPU") for t in report.trainings)
    assert "target" in format_calibration(report)
