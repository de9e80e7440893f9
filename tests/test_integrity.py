"""Integrity findings: test images in the training data, repeated fits, impossible or contradicted
histories, retraining far below the saved model, and records the notebook wrote into the log."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grader.execute.bundle import read_bundle
from grader.model.evidence import DataFingerprint, Evidence, Figure, FitArgs, Level
from grader.findings.integrity import integrity_findings, load_test_images
from grader.kernel.recorder import rank_signatures
from tests.rubric_fixtures import cifar_cnn, history, run, verified


def _kinds(findings, kind):
    return [f for f in findings if f.kind == kind]


def _trained_on(x, *, validation_split=None) -> Evidence:
    fit = FitArgs(epochs=3, epochs_run=3, train_samples=len(x), validation_split=validation_split,
                  x=DataFingerprint(samples=len(x), minimum=float(x.min()), maximum=float(x.max()),
                                    row_hashes=rank_signatures(x, train_fraction=1.0 - (validation_split or 0.0))))
    return Evidence("x.ipynb", runs=[run(0, 4, cifar_cnn(), fit=fit)])


# -- test images among the training data


@pytest.mark.parametrize("rescale", [
    lambda x: x / 255.0,
    lambda x: x.astype("float32") / 255,
    lambda x: (x.astype("float32") - x.mean()) / x.std(),
    lambda x: (x - x.mean(axis=(0, 1, 2))) / x.std(axis=(0, 1, 2)),  # per channel
    lambda x: x.astype("float16") / 255,
    lambda x: x.reshape(len(x), -1) / 255.0,  # flattened for a dense network
], ids=["scaled", "float32", "standardized", "per-channel", "float16", "flattened"])
def test_test_images_are_recognised_after_the_students_rescaling(cifar, test_images, rescale):
    x = rescale(cifar.x_test[:50])
    assert test_images.count(rank_signatures(x, rows=None)) == 50


def test_training_images_are_not_taken_for_test_images(cifar, test_images):
    assert test_images.count(rank_signatures(cifar.x_train / 255.0, rows=None)) == 0


def test_signatures_sample_rows_evenly(cifar):
    assert len(rank_signatures(cifar.x_train)) == 256
    assert len(rank_signatures(cifar.x_train, rows=None)) == 600


def test_training_on_the_test_set_is_a_finding_with_its_cell(cifar, test_images):
    findings = integrity_findings(_trained_on(cifar.x_test / 255.0), test_images=test_images)
    (finding,) = _kinds(findings, "trained_on_test")
    assert finding.message.startswith("fit #1 trained on the test set: all 200 training images")
    assert finding.cell.index == 4 and finding.severity == "warning"


def test_test_images_added_to_the_training_data_are_estimated(cifar, test_images):
    x = np.concatenate([cifar.x_train, cifar.x_test]) / 255.0  # 200 of 800 are test images
    (finding,) = _kinds(integrity_findings(_trained_on(x), test_images=test_images), "trained_on_test")
    estimate = int(finding.message.split()[1].replace(",", ""))
    assert 150 <= estimate <= 250 and "of the 800 images fit #1 trained on are test images" in finding.message


def test_test_images_held_out_by_validation_split_are_not_trained_on(cifar, test_images):
    x = np.concatenate([cifar.x_train, cifar.x_test]) / 255.0  # the test images are the last quarter
    findings = integrity_findings(_trained_on(x, validation_split=0.25), test_images=test_images)
    assert _kinds(findings, "trained_on_test") == []


def test_a_single_shared_image_is_not_reported(cifar, test_images):
    x = np.concatenate([cifar.x_train[:255], cifar.x_test[:1]]) / 255.0
    assert _kinds(integrity_findings(_trained_on(x), test_images=test_images), "trained_on_test") == []


def test_test_images_come_from_the_prepared_dataset_file(cifar, tmp_path):
    path = cifar.save_npz(tmp_path / "cifar10.npz")
    images = load_test_images(path)
    assert images is load_test_images(path)  # hashed once per process
    assert images.count(rank_signatures(cifar.x_test[:10] / 255.0)) == 10
    assert load_test_images(tmp_path / "missing.npz") is None


# -- several fits of one model


def test_several_fits_of_one_model_are_added_up_in_a_finding():
    evidence = Evidence("x.ipynb", runs=[run(0, 4, cifar_cnn(), model_id="m1", epochs=20),
                                         run(1, 5, cifar_cnn(), model_id="m1", epochs=10)])
    (finding,) = _kinds(integrity_findings(evidence), "several_fits")
    assert finding.message == ("model m1 was trained by 2 fit calls (fit #1: 20, fit #2: 10): 30 epochs in total, "
                               "which is what epoch limits count")
    assert finding.severity == "warning" and finding.cell.index == 5


def test_a_fine_tuning_phase_is_only_noted():
    unfrozen = cifar_cnn()
    unfrozen.trainable_params += 1000
    evidence = Evidence("x.ipynb", runs=[run(0, 4, cifar_cnn(), model_id="m1"), run(1, 5, unfrozen, model_id="m1")])
    (finding,) = _kinds(integrity_findings(evidence), "several_fits")
    assert finding.severity == "info"


def test_fast_mode_counts_the_epochs_asked_for():
    runs = [run(i, 4, cifar_cnn(), model_id="m1", fast_mode=True, fit=FitArgs(epochs=25, epochs_run=1), hist=history(1))
            for i in range(2)]
    (finding,) = _kinds(integrity_findings(Evidence("x.ipynb", runs=runs, fast_mode=True)), "several_fits")
    assert "50 epochs in total" in finding.message


# -- histories


def test_accuracy_outside_zero_and_one_is_impossible():
    evidence = Evidence("x.ipynb", runs=[run(0, 4, cifar_cnn(), hist=history(3, val_acc=1.4))])
    (finding,) = _kinds(integrity_findings(evidence), "history")
    assert finding.severity == "error" and "'val_accuracy' has 1 value(s) no accuracy can take (such as 1.4)" in finding.message


def test_non_finite_accuracy_is_impossible_but_a_diverging_loss_is_not():
    broken = history(2)
    broken["accuracy"][1] = float("nan")
    diverged = history(2)
    diverged["loss"][1] = float("inf")
    findings = integrity_findings(Evidence("x.ipynb", runs=[run(0, 4, cifar_cnn(), epochs=2, hist=broken),
                                                            run(1, 5, cifar_cnn(), epochs=2, hist=diverged)]))
    assert [f.cell.index for f in _kinds(findings, "history")] == [4]


def test_history_longer_than_the_epochs_counted_or_asked_for_is_impossible():
    evidence = Evidence("x.ipynb", runs=[run(0, 4, cifar_cnn(), fit=FitArgs(epochs=2, epochs_run=1), hist=history(25))])
    (finding,) = _kinds(integrity_findings(evidence), "history")
    assert "it lists 25 epochs but the recorder counted 1" in finding.message
    assert "it lists 25 epochs but fit asked for 2" in finding.message


def _verified_run(val_acc: float, measured: float, *, fast: bool = False) -> Evidence:
    trained = run(0, 4, cifar_cnn(), model_id="m1", hist=history(3, val_acc=val_acc), fast_mode=fast)
    trained.weights_file = "models/m1.keras"
    return Evidence("x.ipynb", runs=[trained], verifications=[verified("m1", measured)], fast_mode=fast)


def test_history_contradicted_by_the_verified_accuracy_is_a_finding():
    (finding,) = _kinds(integrity_findings(_verified_run(0.99, 0.41)), "history")
    assert finding.severity == "warning"
    assert finding.message.startswith("the history of fit #1 ends at 99.0% validation accuracy, but the saved model "
                                      "measures 41.0% on the grader's test data")


def test_history_close_to_the_verified_accuracy_is_not_a_finding():
    assert _kinds(integrity_findings(_verified_run(0.64, 0.61)), "history") == []


def test_histories_of_capped_fast_mode_runs_are_not_compared():
    assert _kinds(integrity_findings(_verified_run(0.99, 0.41, fast=True)), "history") == []


def test_saved_model_far_above_its_retraining_is_a_finding():
    evidence = _verified_run(0.8, 0.8)
    evidence.verifications[0].retrained_accuracy = Figure(0.45, Level.VERIFIED, "retrained")
    evidence.verifications[0].retrain_seed = 0
    (finding,) = _kinds(integrity_findings(evidence), "retrain")
    assert "the saved model measures 80.0%, but the grader's retraining" in finding.message and "45.0%" in finding.message


def test_saved_model_close_to_its_retraining_is_not_a_finding():
    evidence = _verified_run(0.8, 0.8)
    evidence.verifications[0].retrained_accuracy = Figure(0.77, Level.VERIFIED, "retrained")
    assert _kinds(integrity_findings(evidence), "retrain") == []


# -- records written into the grader's log


def _bundle(tmp_path, events: list[dict]) -> Evidence:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m1.keras").write_bytes(b"saved")
    lines = [{"event": "start"}, *events, {"event": "end"}]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    return read_bundle(tmp_path, submission="x.ipynb", cells=[])


def _fit(index: int, sha: str) -> dict:
    return {"event": "fit", "index": index, "model_id": "m1", "fit": {"epochs": 1}, "history": {"loss": [1.0]},
            "weights_file": "models/m1.keras", "weights_sha256": sha}


def test_the_recorders_hash_of_the_model_file_reaches_the_run(tmp_path):
    evidence = _bundle(tmp_path, [{"event": "fit_start", "index": 0, "model_id": "m1"}, _fit(0, "a" * 64)])
    (trained,) = evidence.runs
    assert trained.weights_sha256 == "a" * 64 and trained.weights_file == "models/m1.keras"
    assert _kinds(evidence.findings, "tampered") == []


def test_a_fit_recorded_twice_is_not_verified_and_is_a_finding(tmp_path):
    evidence = _bundle(tmp_path, [{"event": "fit_start", "index": 0, "model_id": "m1"}, _fit(0, "a" * 64), _fit(0, "b" * 64)])
    assert [r.weights_file for r in evidence.runs] == [None, None]  # which one is forged cannot be told
    (finding,) = _kinds(evidence.findings, "tampered")
    assert finding.severity == "error" and "fit #1" in finding.message


def test_a_fit_that_never_started_is_not_verified(tmp_path):
    evidence = _bundle(tmp_path, [_fit(4, "c" * 64)])
    assert evidence.runs[0].weights_file is None
    assert "fit #5" in _kinds(evidence.findings, "tampered")[0].message
