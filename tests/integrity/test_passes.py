"""Epochs of several passes over the training data (``repeat()`` with a larger
``steps_per_epoch``): what the recorder reads of a pass, what the epochs check and the
``epoch_passes`` finding count (always the same), and what retraining reproduces."""

from __future__ import annotations

import numpy as np
import pytest

from grader.checks import grade
from grader.clean.retrain import planned_epochs
from grader.findings.integrity import integrity_findings
from grader.kernel.recorder import batches_per_pass, training_facts
from grader.model.evidence import Evidence, FitArgs
from grader.model.results import Status
from tests.rubric_fixtures import cifar_cnn, history, one_task, run

PASS = 1563  # batches of 32 in 50,000 images


def _evidence(*fits: FitArgs, fast: bool = False) -> Evidence:
    runs = [run(i, 4 + i, cifar_cnn(), model_id="m1", fit=fit, hist=history(fit.epochs_run or fit.epochs or 1),
                fast_mode=fast) for i, fit in enumerate(fits)]
    return Evidence("x.ipynb", runs=runs, fast_mode=fast)


def _repeated(epochs: int, passes_each: float, *, steps_run: int | None = None) -> FitArgs:
    steps = round(passes_each * PASS)
    return FitArgs(epochs=epochs, epochs_run=epochs, batch_size=None, steps_per_epoch=steps, batches_per_pass=float(PASS),
                   passes_per_epoch=steps / PASS, steps_run=steps * epochs if steps_run is None else steps_run)


def _epochs_check(evidence: Evidence, limit: int = 25, *, fast: bool = False):
    return grade(one_task(f"- epochs: {{at_most: {limit}}}", model="{fit: -1}"), evidence, fast_mode=fast)[0].checks[0]


def _passes(evidence: Evidence):
    return [f for f in integrity_findings(evidence) if f.kind == "epoch_passes"]


# -- the recorder


def test_a_pass_over_arrays_is_their_batches_less_the_validation_split():
    x = np.zeros((1000, 4))
    assert batches_per_pass(x, batch_size=64, validation_split=0.2) == 13.0  # 800 rows
    assert batches_per_pass(x, batch_size=None) == 32.0  # Keras' default batch of 32


def test_a_pass_over_a_dataset_is_read_beneath_its_repeat():
    tf = pytest.importorskip("tensorflow")
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((1000, 4)), np.zeros(1000)))
    assert batches_per_pass(ds.batch(32), batch_size=None) == 32.0
    assert batches_per_pass(ds.map(lambda a, b: (a * 2, b)).batch(32).repeat().prefetch(1), batch_size=None) == 32.0
    assert batches_per_pass(ds.shuffle(100).repeat().batch(50), batch_size=None) == 20.0
    assert batches_per_pass(ds.repeat(10).batch(50), batch_size=None) == 20.0
    assert batches_per_pass(ds.repeat().take(5000).batch(50), batch_size=None) is None  # a take above the repeat


def test_the_recorder_records_the_passes_one_epoch_asks_for():
    tf = pytest.importorskip("tensorflow")
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((1000, 4)), np.zeros(1000)))
    facts = lambda data, steps=None: training_facts(data, {"x": None, "batch_size": None, "steps_per_epoch": steps})  # noqa: E731
    assert facts(ds.batch(32).repeat(), 320)["passes_per_epoch"] == 10.0
    assert facts(ds.repeat(10).batch(50))["passes_per_epoch"] == 10.0  # an epoch is the whole repeated dataset
    assert facts(ds.batch(32))["passes_per_epoch"] == 1.0
    assert facts(ds.batch(32), 320)["passes_per_epoch"] == 1.0  # Keras ends an epoch where finite data ends
    assert facts(np.zeros((1000, 4)), 320)["passes_per_epoch"] == 1.0
    assert facts(iter([]), 320) == {"batches_per_pass": None}  # a generator: the size of a pass is unknown


# -- the epochs check and the finding


def test_epochs_of_ten_passes_each_are_counted_as_passes():
    evidence = _evidence(_repeated(3, 10))
    result = _epochs_check(evidence)
    assert result.status is Status.FAILED and result.figure == 30
    assert "3 epochs of 10 passes each over the training data" in result.message
    (finding,) = _passes(evidence)
    assert finding.severity == "warning"
    assert finding.message.startswith("epoch limit evaded: fit #1 ran 3 epochs of 10 passes each over the training data "
                                      "(30 passes in all; steps_per_epoch=15,630 where one pass over the training data is "
                                      "1,563 steps)")


def test_fast_mode_counts_the_passes_asked_for():
    fit = _repeated(3, 10, steps_run=8)  # fast mode ran 8 steps
    assert _epochs_check(_evidence(fit, fast=True), fast=True).figure == 30
    assert "30 passes in all" in _passes(_evidence(fit, fast=True))[0].message


@pytest.mark.parametrize("fits", [
    [_repeated(3, 10)],
    [_repeated(2, 2.5), _repeated(4, 1)],
    [_repeated(25, 1562.5 / PASS)],  # repeat().batch(32): a pass of 1,562.5 steps, 1,563 per epoch
    [_repeated(10, 0.5)],  # fewer steps than a pass: the epochs are counted
    [FitArgs(epochs=5, epochs_run=5, steps_per_epoch=100)],  # a generator: nothing known of a pass
], ids=["ten-each", "two-fits", "one-pass", "half-passes", "generator"])
@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
def test_the_epochs_check_and_the_findings_never_disagree(fits, fast):
    evidence = _evidence(*fits, fast=fast)
    figure = _epochs_check(evidence, fast=fast).figure
    passes = {int(f.message.split("(")[1].split()[0]) for f in _passes(evidence)}
    per_fit = [(r.epochs_counted(fast), r.limit_count(fast)) for r in evidence.runs]
    assert figure == sum(count for _, count in per_fit)
    assert passes == {count for epochs, count in per_fit if count != epochs}
    if len(fits) > 1:
        (several,) = [f for f in integrity_findings(evidence) if f.kind == "several_fits"]
        assert f"{figure} epochs in total" in several.message


def test_an_honest_repeated_dataset_is_counted_by_its_epochs():
    evidence = _evidence(_repeated(25, 1562.5 / PASS))
    assert _epochs_check(evidence).figure == 25 and _passes(evidence) == []


def test_passes_that_did_not_run_are_not_counted():
    fit = _repeated(3, 10, steps_run=2 * PASS)  # stopped early after two passes
    assert _epochs_check(_evidence(fit)).figure == 3 and _passes(_evidence(fit)) == []


# -- retraining


def test_retraining_plans_the_passes_the_notebook_made():
    evidence = _evidence(_repeated(3, 10), _repeated(2, 1))
    assert planned_epochs(evidence.runs) == 32


@pytest.fixture(scope="module")
def data():
    from grader.data.load import load_dataset

    return load_dataset("cifar10", source="synthetic", train_size=300, test_size=100)


def _saved_cnn(tmp_path) -> str:
    import keras

    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.MaxPooling2D(2), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "m1.keras")
    return str(tmp_path / "m1.keras")


def _retrained(tmp_path, data, **fit):
    from grader.clean.retrain import retrain
    from grader.model.evidence import Architecture, CellRef, CompileInfo, TrainingRun

    run_ = TrainingRun(index=0, model_id="m1", cell=CellRef(3), architecture=Architecture(),
                       compile=CompileInfo("Adam", 0.001, "categorical_crossentropy", ["accuracy"]),
                       fit=FitArgs(batch_size=32, train_samples=300, **fit), weights_file=_saved_cnn(tmp_path))
    return retrain(run_, data, seed=0)


def test_retraining_makes_as_many_passes_as_the_notebook(tmp_path, data):
    result = _retrained(tmp_path, data, epochs=1, steps_per_epoch=30, batches_per_pass=10.0, passes_per_epoch=3.0)
    assert result.status == "ok" and result.epochs == 3 and len(result.history["loss"]) == 3
    assert any("each of the notebook's epochs was 3 passes over its training data" in note for note in result.notes)


def test_retraining_makes_part_of_a_pass_when_the_notebook_did(tmp_path, data):
    result = _retrained(tmp_path, data, epochs=2, steps_per_epoch=5, batches_per_pass=10.0, passes_per_epoch=0.5)
    assert result.status == "ok" and any("retrained with 5 steps per epoch" in note for note in result.notes)


def test_retraining_refuses_passes_it_cannot_know(tmp_path, data):
    result = _retrained(tmp_path, data, epochs=3, steps_per_epoch=100)  # a Python generator: no size of a pass
    assert result.status == "skipped" and "are unknown" in result.message
