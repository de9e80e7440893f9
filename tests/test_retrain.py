"""Retraining: the grader trains the recorded architecture itself, with the notebook's settings.

The Keras tests train a tiny CNN on 300 synthetic CIFAR-shaped images for a few epochs (seconds
each, once Keras is imported); one slow test goes through the verifier's worker process.
"""

from __future__ import annotations

import pytest

from grader.checks import grade
from grader.model.evidence import (
    Architecture,
    CellRef,
    CompileInfo,
    DataFingerprint,
    Evidence,
    Figure,
    FitArgs,
    Level,
    TrainingRun,
    to_json,
)
from grader.model.results import Status
from grader.checks.retraining import models_to_retrain
from grader.clean.protocol import RetrainRequest, Retraining
from grader.clean.retrain import apply_retraining, planned_epochs, retrain, retrain_request
from tests.rubric_fixtures import lab_evidence, one_task, rubric, verified

ADAM = CompileInfo(optimizer="Adam", learning_rate=0.001, loss="categorical_crossentropy", metrics=["accuracy"])


@pytest.fixture(scope="module")
def data():
    from grader.data.load import load_dataset

    return load_dataset("cifar10", source="synthetic", train_size=300, test_size=100)


def _cnn(*, last_activation: str | None = "softmax", frozen: bool = False):
    import keras

    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(4, 3, activation="relu", trainable=not frozen),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation=last_activation),
    ])
    return model


def _saved(tmp_path, model, name: str = "m1.keras") -> str:
    path = tmp_path / name
    model.save(path)
    return str(path)


def _run(path: str, *, compile_info: CompileInfo = ADAM, epochs: int = 2, **fit) -> TrainingRun:
    return TrainingRun(
        index=0, model_id="m1", cell=CellRef(3), architecture=Architecture(), compile=compile_info,
        fit=FitArgs(epochs=epochs, batch_size=32, train_samples=300, x=DataFingerprint(minimum=0.0, maximum=1.0), **fit),
        weights_file=path,
    )


# -- training afresh


def test_retraining_gives_a_verified_figure_that_names_seed_and_epochs(tmp_path, data):
    result = retrain(_run(_saved(tmp_path, _cnn())), data, seed=0)
    assert result.status == "ok", result.message
    assert result.accuracy.level is Level.VERIFIED and 0.0 <= result.accuracy.value <= 1.0
    assert result.accuracy.source.startswith("retrained by the grader: seed 0, 2 epochs, batch 32, 300 training images, Adam lr 0.001;")
    assert "100 test images (pixels divided by 255)" in result.accuracy.source
    assert (result.epochs, result.test_samples) == (2, 100) and len(result.history["loss"]) == 2


def test_retraining_twice_with_the_same_seed_gives_the_same_figure(tmp_path, data):
    run = _run(_saved(tmp_path, _cnn()), epochs=1)
    first, second = retrain(run, data, seed=0), retrain(run, data, seed=0)
    assert first.accuracy.value == second.accuracy.value and first.history == second.history


def test_saved_weights_do_not_change_the_retrained_figure(tmp_path, data):
    import numpy as np

    spoiled = _cnn()
    spoiled.set_weights([np.full(w.shape, 3.0, dtype="float32") for w in spoiled.get_weights()])
    fresh, changed = _run(_saved(tmp_path, _cnn(), "a.keras"), epochs=1), _run(_saved(tmp_path, spoiled, "b.keras"), epochs=1)
    assert retrain(fresh, data, seed=0).history == retrain(changed, data, seed=0).history


def test_fast_caps_bound_epochs_and_samples(tmp_path, data):
    result = retrain(_run(_saved(tmp_path, _cnn()), epochs=25), data, seed=0,
                     caps={"epochs": 1, "train_samples": 64, "test_samples": 50})
    assert (result.status, result.epochs, result.train_samples, result.test_samples) == ("ok", 1, 64, 50)


def test_epochs_default_to_the_fit_and_can_be_given_for_every_fit_of_the_model(tmp_path, data):
    run = _run(_saved(tmp_path, _cnn()), epochs=3, initial_epoch=2)
    assert retrain(run, data).epochs == 1
    assert retrain(run, data, epochs=2).epochs == 2


def test_fewer_training_images_in_the_notebook_are_reproduced(tmp_path, data):
    run = _run(_saved(tmp_path, _cnn()), epochs=1)
    run.fit.train_samples = 120
    result = retrain(run, data)
    assert result.train_samples == 120 and "the first 120 training images" in result.notes[0]


def test_sparse_loss_trains_on_class_indices(tmp_path, data):
    sparse = CompileInfo(optimizer="SGD", learning_rate=0.01, loss="sparse_categorical_crossentropy")
    result = retrain(_run(_saved(tmp_path, _cnn()), compile_info=sparse, epochs=1), data)
    assert result.status == "ok", result.message
    assert "SGD lr 0.01" in result.accuracy.source


def test_linear_last_layer_is_trained_from_logits(tmp_path, data):
    result = retrain(_run(_saved(tmp_path, _cnn(last_activation=None)), epochs=1), data)
    assert result.status == "ok", result.message
    assert any("logits" in note for note in result.notes)


def test_unknown_loss_is_not_retrained_and_says_why(tmp_path, data):
    custom = CompileInfo(optimizer="Adam", learning_rate=0.001, loss="my_focal_loss")
    result = retrain(_run(_saved(tmp_path, _cnn()), compile_info=custom), data)
    assert result.status == "skipped" and "my_focal_loss" in result.message and result.accuracy is None


def test_frozen_layers_are_not_retrained_from_scratch(tmp_path, data):
    result = retrain(_run(_saved(tmp_path, _cnn(frozen=True))), data)
    assert result.status == "skipped" and "frozen" in result.message


def test_rewritten_model_file_is_refused(tmp_path, data):
    result = retrain(_run(_saved(tmp_path, _cnn())), data, expected_sha256="0" * 64)
    assert result.status == "tampered" and result.accuracy is None


def test_lambda_layer_is_not_loaded(tmp_path, data):
    import keras

    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Lambda(lambda x: x * 2.0),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    result = retrain(_run(_saved(tmp_path, model)), data)
    assert result.status == "unsafe"


@pytest.mark.slow
def test_verifier_worker_retrains_on_request(tmp_path, data):
    from grader.clean.client import Verifier

    data_path = data.save_npz(tmp_path / "data.npz")
    request = RetrainRequest(model_path=_saved(tmp_path, _cnn()), train_data=str(data_path), test_data=str(data_path),
                             run=to_json(_run("")), model_id="m1",
                             epochs=1, seed=3)
    with Verifier() as verifier:
        result = verifier.retrain(request, timeout_s=300)
    assert result.status == "ok", result.message
    assert result.accuracy.level is Level.VERIFIED and result.seed == 3 and "seed 3, 1 epoch," in result.accuracy.source


# -- the grader's side: what to retrain, and which figure a check uses


def test_planned_epochs_add_up_every_fit_of_the_model():
    runs = [_run("", epochs=5), _run("", epochs=10, initial_epoch=5), _run("", epochs=3)]
    assert planned_epochs(runs) == 13


def test_request_retrains_all_fits_of_the_model_up_to_the_run():
    evidence = lab_evidence()
    evidence.runs[2].model_id = evidence.runs[1].model_id  # fit 3 continues fit 2's model
    request = retrain_request(evidence, evidence.runs[2], train_data="train.npz", test_data="test.npz", seed=1)
    assert (request.epochs, request.seed, request.model_id, request.kind) == (6, 1, "m1", "retrain")


def test_retrain_option_retrains_every_trained_model():
    evidence = lab_evidence()
    for run in evidence.runs:
        run.weights_file = f"models/{run.model_id}.keras"
    assert models_to_retrain(one_task("- test_accuracy: 60%"), evidence, everything=True) == {"m0", "m1", "m2"}
    assert models_to_retrain(one_task("- test_accuracy: 60%"), evidence) == set()


def test_retrain_true_on_a_check_retrains_the_model_its_task_selects():
    evidence = lab_evidence()
    for run in evidence.runs:
        run.weights_file = f"models/{run.model_id}.keras"
    chosen = rubric("""
        name: r
        tasks:
          - id: cnn
            model: {fit: 2}
            checks: [{test_accuracy: {at_least: 60%, retrain: true}}]
          - id: fc
            model: {fit: 1}
            checks: [{test_accuracy: 40%}]
    """)
    assert models_to_retrain(chosen, evidence) == {"m1"}


def test_retrain_is_offered_on_test_accuracy_only():
    from grader.errors import RubricError

    with pytest.raises(RubricError, match="retrain"):
        one_task("- val_accuracy: {at_least: 60%, retrain: true}")


def _retrained(accuracy: float) -> Retraining:
    return Retraining("m1", "ok", accuracy=Figure(accuracy, Level.VERIFIED, "retrained by the grader: seed 0, 3 epochs"))


def test_accuracy_check_prefers_the_retrained_figure_and_notes_the_saved_one():
    evidence = lab_evidence(verifications=[verified("m1", 0.70)])
    apply_retraining(evidence.verifications[0], _retrained(0.55))
    result = grade(one_task("- test_accuracy: 62%"), evidence)[0].checks[0]
    assert result.status is Status.FAILED and result.figure == 0.55 and result.level is Level.VERIFIED
    assert "retrained by the grader: seed 0, 3 epochs" in result.message
    assert result.details["notes"] == ["the notebook's saved model measured 70.0%"]


def test_a_model_that_could_not_be_retrained_keeps_its_verified_figure_with_the_reason():
    evidence = lab_evidence(verifications=[verified("m1", 0.70)])
    apply_retraining(evidence.verifications[0], Retraining("m1", "skipped", "2 layer(s) are frozen"))
    result = grade(one_task("- test_accuracy: 62%"), evidence)[0].checks[0]
    assert result.status is Status.PASSED and result.figure == 0.70
    assert result.details["notes"] == ["not retrained (skipped): 2 layer(s) are frozen"]


def test_retrain_flag_reaches_the_grading_options():
    from grader.cli.grading import _grading_options

    common = dict(static=False, data=None, no_verify=False, no_compat=False, cell_timeout=None, notebook_timeout=None,
                  hidden_test=None, retrain=True)
    assert _grading_options(common, fast=False, force=False).retrain is True


def test_retraining_changes_the_result_key_only_when_asked_for(tmp_path):
    from grader.config import GradingOptions
    from grader.pipeline.session import GradingSession

    plain = GradingSession(one_task("- test_accuracy: 60%"), tmp_path / "a")
    asked = GradingSession(one_task("- test_accuracy: 60%"), tmp_path / "b", GradingOptions(retrain=True))
    per_check = GradingSession(one_task("- test_accuracy: {at_least: 60%, retrain: true}"), tmp_path / "c")
    try:
        assert (plain._retrain_key(), asked._retrain_key(), per_check._retrain_key()) == (
            {}, {"retrain": "all"}, {"retrain": "checks"})
    finally:
        for session in (plain, asked, per_check):
            session.close()


def test_evidence_with_a_retrained_figure_round_trips_through_json():
    from grader.model.evidence import from_json

    evidence = lab_evidence(verifications=[verified("m1", 0.70)])
    apply_retraining(evidence.verifications[0], _retrained(0.55))
    again = from_json(Evidence, to_json(evidence))
    assert again.verifications[0].retrained_accuracy == evidence.verifications[0].retrained_accuracy
    assert again.verifications[0].retrain_seed == 0
