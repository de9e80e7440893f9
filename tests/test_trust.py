"""Hostile notebooks against the trust model: nothing a notebook does changes a verified figure.

Each notebook trains the same tiny CNN for one epoch on 300 synthetic images, exactly as the
honest one does, and then lies in one way: fake printed logs, a patched ``count_params``,
``evaluate``, ``History`` or ``fit``, files written into the grader's bundle, weights loaded
from a file (whose model the rubric asks the grader to retrain), training on the test set. They
are graded in one batch (real kernels, the clean verifier) with a rubric that demands verified
evidence, and each test compares one notebook's result with the honest one's.
"""

from __future__ import annotations

import pytest

from grader.batch.local import grade_batch
from grader.data.load import load_dataset
from grader.model.evidence import Level
from grader.config import GradingOptions
from grader.model.results import GradeResult, Status, Student
from grader.rubric.load import load_rubric_text
from grader.collect import Submission
from tests.nbfactory import LOAD_CIFAR, SMALL_CNN, SMALL_CNN_PARAMS, code, md, notebook, write

pytestmark = pytest.mark.slow  # a dozen real kernels and the clean verifier: a minute or two

RUBRIC = """
name: trust
dataset: cifar10
tasks:
  - id: cnn
    model: {fit: -1}
    checks:
      - total_params: {equals: %d, min_level: verified}
      - test_accuracy: {at_least: 99%%, min_level: verified}
  - id: retrained
    model: {section: 'The model'}
    checks:
      - test_accuracy: {at_least: 99%%, retrain: true}
""" % SMALL_CNN_PARAMS

TRAIN = SMALL_CNN + "\nmodel = CreateCNNModel()\nhistory = model.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)"
EVALUATE = "score = model.evaluate(x_test, y_test, verbose=0)\nprint('Test accuracy:', score[1])"
# A hostile notebook finds the grader's bundle the way it would find anything: by walking its folder.
FIND_BUNDLE = "import json, os\nbundle = next(root for root, dirs, files in os.walk('.') if 'events.jsonl' in files)\n"
FAKE_HISTORY = """class FakeHistory:
    history = {'accuracy': [0.99] * 25, 'val_accuracy': [0.99] * 25, 'loss': [0.01] * 25}
    epoch = list(range(25))"""

NOTEBOOKS = {
    "honest": [code(LOAD_CIFAR), code(TRAIN), code(EVALUATE)],
    "fake_print": [code(LOAD_CIFAR), code(TRAIN + "\nprint('Epoch 25/25')\nprint('300/300 [==============================] - 1s"
                                          " - loss: 0.0123 - accuracy: 0.9900 - val_loss: 0.0200 - val_accuracy: 0.9900')"),
                   code("print('Test accuracy: 0.99')")],
    "count_params": [code(LOAD_CIFAR), code("keras.Model.count_params = lambda self: 42\n"
                                            "keras.Model.summary = lambda self, *a, **k: print('Total params: 42')\n" + TRAIN
                                            + "\nmodel.summary()"), code(EVALUATE)],
    "patched_evaluate": [code(LOAD_CIFAR), code("keras.Model.evaluate = lambda self, *a, **k: [0.0, 0.99]\n" + TRAIN),
                         code(EVALUATE)],
    "patched_history": [code(LOAD_CIFAR), code(
        "import keras.src.callbacks.history as keras_history\n"
        "_on_epoch_end = keras_history.History.on_epoch_end\n"
        "def on_epoch_end(self, epoch, logs=None):\n"
        "    _on_epoch_end(self, epoch, dict(logs or {}, accuracy=0.99, loss=0.01))\n"
        "keras_history.History.on_epoch_end = on_epoch_end\n" + FAKE_HISTORY + "\nkeras.callbacks.History = FakeHistory\n"
        + TRAIN), code(EVALUATE)],
    "replaced_fit": [code(LOAD_CIFAR), code(FAKE_HISTORY + "\nkeras.Model.fit = lambda self, *a, **k: FakeHistory()\n" + TRAIN),
                     code(EVALUATE)],
    "wrapped_fit": [code(LOAD_CIFAR), code(
        FAKE_HISTORY + "\n_fit = keras.Model.fit\n"
        "def fit(self, *args, **kwargs):\n"
        "    _fit(self, *args, **dict(kwargs, epochs=1))\n"
        "    return FakeHistory()\n"
        "keras.Model.fit = fit\n" + TRAIN.replace("epochs=1", "epochs=25")), code(EVALUATE)],
    "rewritten_model": [code(LOAD_CIFAR), code(TRAIN), code(
        FIND_BUNDLE + "better = CreateCNNModel()\n"
        "for step in range(40):\n"
        "    better.train_on_batch(x_train[step % 5 * 60:][:60], y_train[step % 5 * 60:][:60])\n"
        "better.save(os.path.join(bundle, 'models', 'm1.keras'))"), code(EVALUATE)],
    "forged_log": [code(LOAD_CIFAR), code(TRAIN), code(
        FIND_BUNDLE + "with open(os.path.join(bundle, 'events.jsonl'), 'a') as log:\n"
        "    log.write(json.dumps({'event': 'evaluate', 'index': 9, 'model_id': 'm1', 'cell_id': '2', 'samples': 100,\n"
        "                          'results': {'loss': 0.01, 'accuracy': 0.99}}) + '\\n')\n"
        "    log.write(json.dumps({'event': 'fit', 'index': 0, 'model_id': 'm1', 'cell_id': '1', 'fit': {'epochs': 1},\n"
        "                          'history': {'accuracy': [0.99], 'val_accuracy': [0.99]},\n"
        "                          'weights_file': 'models/m1.keras'}) + '\\n')"), code(EVALUATE)],
    "pretrained": [code(LOAD_CIFAR), code(
        SMALL_CNN + "\nelsewhere = CreateCNNModel()\n"
        "for step in range(40):\n"
        "    elsewhere.train_on_batch(x_train[step % 5 * 60:][:60], y_train[step % 5 * 60:][:60])\n"
        "elsewhere.save_weights('good.weights.h5')\nelsewhere.save('elsewhere.keras')"),
        md("## The model"),
        code("reference = keras.models.load_model('elsewhere.keras')\n"
             "model = CreateCNNModel()\nmodel.load_weights('good.weights.h5')\n"
             "history = model.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)"), code(EVALUATE)],
    "trained_on_test": [code(LOAD_CIFAR), code(SMALL_CNN + "\nmodel = CreateCNNModel()\n"
                                               "history = model.fit(x_test, y_test, epochs=1, batch_size=32, verbose=0)"),
                        code(EVALUATE)],
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, GradeResult]:
    root = tmp_path_factory.mktemp("trust")
    data = load_dataset("cifar10", source="synthetic", train_size=300, test_size=100).save_npz(root / "cifar10.npz")
    submissions = [Submission(write(notebook(*cells), root / "in" / f"{name}.ipynb"), Student(name))
                   for name, cells in NOTEBOOKS.items()]
    options = GradingOptions(data=str(data), preflight=False, cell_timeout=120, notebook_timeout=300, sandbox="none")
    results = grade_batch(submissions, load_rubric_text(RUBRIC), root / "out", options=options, workers=2)
    return {r.student.key: r for r in results}


def _check(result: GradeResult, kind: str):
    return next(c for c in result.checks if c.check == kind)


def _verified_accuracy(result: GradeResult):
    check = _check(result, "test_accuracy")
    return (check.figure, check.level) if check.level is Level.VERIFIED else (None, check.level)


def _findings(result: GradeResult, kind: str) -> list:
    return [f for f in result.evidence.findings if f.kind == kind]


def test_honest_notebook_has_a_verified_accuracy_below_the_fake_claims(graded):
    figure, level = _verified_accuracy(graded["honest"])
    assert level is Level.VERIFIED and figure is not None and figure < 0.95
    assert _check(graded["honest"], "test_accuracy").status is Status.FAILED


@pytest.mark.parametrize("name", ["fake_print", "count_params", "patched_evaluate", "patched_history", "wrapped_fit"])
def test_a_lying_notebook_gets_the_honest_verified_accuracy(graded, name):
    assert _verified_accuracy(graded[name]) == _verified_accuracy(graded["honest"])
    assert _check(graded[name], "test_accuracy").status is Status.FAILED


def test_patched_count_params_does_not_change_the_verified_count(graded):
    check = _check(graded["count_params"], "total_params")
    assert (check.status, check.figure, check.level) == (Status.PASSED, SMALL_CNN_PARAMS, Level.VERIFIED)


def test_patched_evaluate_leaves_no_recorded_figure(graded):
    assert all(ev.results.get("accuracy") != 0.99 for ev in graded["patched_evaluate"].evidence.evaluations)


def test_patched_history_class_does_not_reach_the_recorded_history(graded):
    evidence = graded["patched_history"].evidence
    honest = graded["honest"].evidence
    assert evidence.runs[0].history == honest.runs[0].history
    assert _findings(graded["patched_history"], "history")


def test_wrapped_fit_records_the_epochs_that_really_ran(graded):
    (run,) = graded["wrapped_fit"].evidence.runs
    assert run.epochs_trained == 1 and run.fit.epochs_run == 1


def test_fit_replaced_by_a_fake_trains_nothing_and_earns_nothing(graded):
    result = graded["replaced_fit"]
    assert result.evidence.runs == [] and result.evidence.verifications == []
    check = _check(result, "test_accuracy")
    assert check.status is Status.NOT_ASSESSED and check.level is not Level.VERIFIED


def test_model_file_rewritten_in_the_bundle_is_not_measured(graded):
    result = graded["rewritten_model"]
    assert [v.status for v in result.evidence.verifications] == ["tampered"]
    check = _check(result, "test_accuracy")
    # the kernel's own figure decides nothing: it fails as it is, or would need review to pass
    assert check.status in (Status.FAILED, Status.NEEDS_REVIEW) and check.points == 0 and check.level is not Level.VERIFIED


def test_records_forged_into_the_log_are_not_verified(graded):
    result = graded["forged_log"]
    # The lines the notebook appended never came down the recorder's pipe (grader.execute.witness):
    # they are not read, the recorded fit is the one verified, and the rewrite is named.
    assert [run.history.get("accuracy") for run in result.evidence.runs if run.index == 0] != [[0.99]]
    assert not [e for e in result.evidence.evaluations if e.results.get("accuracy") == 0.99]
    (rewritten,) = _findings(result, "rewritten")
    assert "never sent to the grader" in rewritten.message
    check = _check(result, "test_accuracy")
    assert check.status in (Status.FAILED, Status.NEEDS_REVIEW) and check.points == 0
    assert check.figure != 0.99


def test_done_when_a_notebook_that_fakes_its_printed_accuracy_gets_the_honest_figure_verified(graded):
    check = _check(graded["fake_print"], "test_accuracy")
    honest = _check(graded["honest"], "test_accuracy")
    assert check.level is Level.VERIFIED and check.figure == honest.figure and check.figure != 0.99


def test_weights_loaded_from_a_file_are_a_finding_with_their_cell(graded):
    (finding,) = _findings(graded["pretrained"], "load_weights")
    assert finding.cell is not None and finding.cell.index == 3 and "good.weights.h5" in finding.message


def test_a_model_loaded_from_a_file_is_a_finding_with_its_cell(graded):
    (finding,) = _findings(graded["pretrained"], "load_model")
    assert finding.cell is not None and finding.cell.index == 3 and "elsewhere.keras" in finding.message


def test_training_on_the_test_set_is_a_finding(graded):
    # One from the recorder (the evaluated images were trained on), one from the grader's own test images.
    (finding,) = [f for f in _findings(graded["trained_on_test"], "trained_on_test") if "trained on the test set" in f.message]
    assert finding.cell.index == 1 and "all 100 training images" in finding.message
    assert not _findings(graded["honest"], "trained_on_test")


def test_retraining_asked_for_by_a_check_trains_the_architecture_without_the_loaded_weights(graded):
    result = graded["pretrained"]
    check = _check(result, "test_accuracy")
    assert check.level is Level.VERIFIED and "retrained by the grader: seed 0, 1 epoch, batch 32, 300 training images" in check.message
    (verification,) = result.evidence.verifications
    assert verification.retrained_accuracy.value == check.figure
    assert verification.test_accuracy.value > check.figure + 0.10  # the loaded weights helped the saved model
    (finding,) = _findings(result, "retrain")
    assert "the saved weights may not come from this notebook's training" in finding.message


def test_retraining_is_only_for_the_models_a_check_asks_about(graded):
    assert all(v.retrained_accuracy is None and v.retrain_seed is None for v in graded["honest"].evidence.verifications)
