"""The report's figures: SVG data URIs drawn with matplotlib, fast enough for forty reports."""

from __future__ import annotations

import base64
import time
import xml.etree.ElementTree as ET

import pytest

from grader.report.plots import Threshold, learning_curve, score_histogram

HISTORY = {
    "accuracy": [0.35, 0.48, 0.56, 0.62, 0.67, 0.71, 0.74, 0.77],
    "val_accuracy": [0.33, 0.45, 0.52, 0.56, 0.58, 0.59, 0.59, 0.58],
    "loss": [1.8, 1.45, 1.25, 1.08, 0.95, 0.84, 0.75, 0.67],
    "val_loss": [1.85, 1.52, 1.36, 1.28, 1.24, 1.25, 1.29, 1.34],
}


def svg_of(uri: str) -> str:
    prefix = "data:image/svg+xml;base64,"
    assert uri.startswith(prefix)
    text = base64.b64decode(uri[len(prefix):]).decode("utf-8")
    ET.fromstring(text)  # well-formed
    return text


def test_learning_curve_is_an_svg_with_both_series():
    svg = svg_of(learning_curve(HISTORY, "accuracy"))
    assert "training" in svg and "validation" in svg and "epoch" in svg


def test_overfitting_gap_is_written_on_the_accuracy_plot():
    assert "gap +0.19" in svg_of(learning_curve(HISTORY, "accuracy"))


def test_threshold_is_drawn_and_named_in_the_legend():
    svg = svg_of(learning_curve(HISTORY, "accuracy", thresholds=[Threshold(0.62, "accuracy", "test accuracy ≥ 62%")]))
    assert "target: test accuracy ≥ 62%" in svg


def test_threshold_of_another_metric_is_not_drawn():
    svg = svg_of(learning_curve(HISTORY, "loss", thresholds=[Threshold(0.62, "accuracy", "test accuracy ≥ 62%")]))
    assert "target" not in svg


def test_old_keras_history_keys_are_understood():
    old = {"acc": HISTORY["accuracy"], "val_acc": HISTORY["val_accuracy"]}
    assert "validation" in svg_of(learning_curve(old, "accuracy"))


def test_no_curve_without_that_metric():
    assert learning_curve({"loss": [1.0, 0.5]}, "accuracy") is None
    assert learning_curve({}, "loss") is None


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="accuracy' or 'loss"):
        learning_curve(HISTORY, "f1")


def test_nan_values_do_not_break_a_plot():
    assert learning_curve({"loss": [float("nan"), 1.0, float("inf")]}, "loss") is not None


def test_figures_are_reproducible():
    assert learning_curve(HISTORY, "loss") == learning_curve(HISTORY, "loss")


def test_histogram_marks_the_pass_mark():
    svg = svg_of(score_histogram([3, 9, 12.5, 14, 18], max_score=18, pass_mark=12))
    assert "pass mark 12" in svg and "students" in svg


def test_no_histogram_without_scores():
    assert score_histogram([], max_score=18) is None


def test_a_plot_takes_well_under_a_third_of_a_second():
    learning_curve(HISTORY, "accuracy")  # first call pays for importing matplotlib
    # CPU time, not wall time: the budget is the plot's own work, whatever else the machine runs.
    start = time.process_time()
    for _ in range(5):
        learning_curve(HISTORY, "accuracy", thresholds=[Threshold(0.6, "accuracy", "target")])
    assert (time.process_time() - start) / 5 < 0.3
