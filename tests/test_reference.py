"""`grade reference list | show | train`: describing and retraining the reference models.

Training runs on tiny synthetic stand-ins of the course data (a few hundred images, one epoch).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from grader.data.load import load_dataset
from grader.errors import DatasetError, ReferenceModelError
from grader.cli.reference import reference_group
from grader.course.reference import (
    format_reference_list,
    format_train_report,
    list_references,
    prepare_arrays,
    show_reference,
    train_reference,
)
import reference_models

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(data_source="synthetic", train_size=200, test_size=60, epochs=1)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def test_list_names_every_reference_with_documented_figures():
    rows = {row.name: row for row in list_references()}
    assert set(rows) == set(reference_models.REGISTRY)
    assert (rows["dogs_cats_vgg16_finetune"].trainable, rows["dogs_cats_vgg16_finetune"].non_trainable) == (
        9_177_089, 7_635_264)
    assert "12,523,266" in format_reference_list(rows.values())


def test_list_does_not_import_keras():
    code = "import sys; from grader.course.reference import list_references; list_references(); print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_cache_variable_the_help_names_is_the_one_training_reads():
    import grader.cli.reference as cli_reference
    import grader.course.reference as course_reference

    assert cli_reference.CACHE_ENV == course_reference.CACHE_ENV


def test_the_grade_command_line_imports_no_numpy_until_a_command_needs_it():
    code = "import sys, grader.cli, grader.batch.local; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_list_marks_references_whose_data_the_grader_cannot_load():
    rows = {row.name: row for row in list_references()}
    assert rows["cifar10_cnn"].trainable_here and not rows["eight_faces_cnn"].trainable_here


def test_show_prints_the_keras_summary_and_the_documented_figures():
    text = show_reference("cifar10_cnn")
    assert "max_pooling2d_2 (MaxPooling2D)" in text and "(None, 3, 3, 64)" in text
    assert "Total params: 81,834" in text
    assert "this build matches it" in text
    assert "SGD(learning_rate=0.01, momentum=0.9, nesterov=True" in text


def test_show_unknown_reference_suggests_a_name():
    with pytest.raises(ReferenceModelError, match="mnist_cnn1"):
        show_reference("mnist_cnn")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One two-seed training shared by the tests that only read its report or its cache."""
    cache = tmp_path_factory.mktemp("cache")
    return cache, train_reference("cifar10_cnn", seeds=[0, 1], cache_dir=cache, **TINY)


def test_train_reports_each_seed_and_mean_with_std(trained):
    _, report = trained
    assert [run.seed for run in report.runs] == [0, 1]
    accuracies = [run.test_accuracy for run in report.runs]
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    assert report.mean == pytest.approx(np.mean(accuracies))
    assert report.std == pytest.approx(np.std(accuracies, ddof=1))
    assert (report.train_samples, report.test_samples, report.epochs) == (200, 60, 1)
    assert report.device in ("CPU", "GPU") and report.backend == "tensorflow"
    assert "over 2 seeds" in format_train_report(report)


def test_train_learns_the_synthetic_classes():
    # A real check that training happens: the stand-in's classes are learnable, chance is 10%.
    report = train_reference("hello_world_cnn", seeds=[0], data_source="synthetic", train_size=600, test_size=200,
                             epochs=2, use_cache=False)
    assert report.mean > 0.5


def test_same_seed_gives_the_same_accuracy(trained):
    _, report = trained
    again = train_reference("cifar10_cnn", seeds=[0], use_cache=False, **TINY)
    assert again.runs[0].test_accuracy == report.runs[0].test_accuracy
    assert again.runs[0].history == report.runs[0].history


def test_second_train_reads_the_cache_without_training(trained):
    cache, first = trained
    events = []
    second = train_reference("cifar10_cnn", seeds=[0, 1], cache_dir=cache, progress=events.append, **TINY)
    assert [event.phase for event in events] == ["cached", "cached"]
    assert all(run.cached for run in second.runs) and not any(run.cached for run in first.runs)
    assert second.accuracies == first.accuracies


def test_cache_is_keyed_by_settings(trained, tmp_path):
    cache, _ = trained
    shutil.copytree(cache, tmp_path / "cache")
    other = train_reference("cifar10_cnn", seeds=[0], cache_dir=tmp_path / "cache", batch_size=16, **TINY)
    assert not other.runs[0].cached
    assert len(list((tmp_path / "cache" / "reference").glob("cifar10_cnn-*.json"))) == 3


def test_damaged_cache_entry_is_trained_again(trained, tmp_path):
    cache, _ = trained
    shutil.copytree(cache, tmp_path / "cache")
    entries = sorted((tmp_path / "cache" / "reference").glob("*.json"), key=lambda p: json.loads(p.read_text())["seed"])
    entries[0].write_text("{ not json")
    again = train_reference("cifar10_cnn", seeds=[0, 1], cache_dir=tmp_path / "cache", **TINY)
    assert [run.cached for run in again.runs] == [False, True]
    assert json.loads(entries[0].read_text())["run"]["seed"] == 0


def test_progress_reports_every_epoch(cache):
    events = []
    train_reference("cifar10_cnn", seeds=[0], cache_dir=cache, progress=events.append,
                    **{**TINY, "epochs": 2})
    assert [(e.phase, e.epoch) for e in events] == [("start", 0), ("epoch", 1), ("epoch", 2), ("done", 2)]
    assert "accuracy" in events[1].logs


def test_data_not_available_offline_says_which_file_to_put_where(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(DatasetError, match=r"keras/datasets/cifar-10-batches-py"):
        train_reference("cifar10_cnn", seeds=[0], data_source="auto", cache_dir=tmp_path)


def test_reference_on_a_dataset_the_grader_cannot_load_says_so(tmp_path):
    with pytest.raises(DatasetError, match="dogs_vs_cats"):
        train_reference("dogs_cats_convnet", seeds=[0], data_source="synthetic", cache_dir=tmp_path)


def test_mnist_fc_gets_flat_standardized_inputs_and_one_hot_labels():
    data = load_dataset("mnist", source="synthetic", train_size=100, test_size=20)
    x_train, y_train, x_test, _ = prepare_arrays(reference_models.get("mnist_fc"), data)
    assert x_train.shape == (100, 784) and x_test.shape == (20, 784)
    assert abs(float(x_train.mean())) < 1e-3 and float(x_train.std()) == pytest.approx(1.0, abs=1e-3)
    assert y_train.shape == (100, 10) and set(y_train.sum(axis=1)) == {1.0}


def test_images_that_do_not_fit_the_model_are_refused():
    data = load_dataset("mnist", source="synthetic", train_size=20, test_size=10)
    with pytest.raises(ReferenceModelError, match=r"takes inputs of shape \(32, 32, 3\)"):
        prepare_arrays(reference_models.get("cifar10_cnn"), data)


def test_cli_list_show_and_train(trained, tmp_path):
    cache, report = trained  # same settings as the shared training: read from its cache
    runner = CliRunner()
    listed = runner.invoke(reference_group, ["list"])
    assert listed.exit_code == 0 and "hello_world_cnn" in listed.output
    shown = runner.invoke(reference_group, ["show", "mnist_cnn1"])
    assert shown.exit_code == 0 and "Total params: 251,210" in shown.output
    out = tmp_path / "report.json"
    result = runner.invoke(reference_group, [
        "train", "cifar10_cnn", "--seeds", "2", "--data", "synthetic", "--train-size", "200", "--test-size", "60",
        "--epochs", "1", "--cache-dir", str(cache), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "over 2 seeds" in result.output and "(cached)" in result.output
    data = json.loads(out.read_text())
    assert [run["seed"] for run in data["runs"]] == [0, 1]
    assert data["mean_test_accuracy"] == pytest.approx(report.mean)


def test_cli_errors_are_messages_not_tracebacks():
    result = CliRunner().invoke(reference_group, ["show", "no_such_model"])
    assert result.exit_code == 2
    assert "no reference model called 'no_such_model'" in result.output
    assert "Traceback" not in result.output
