"""A corpus of cheats and honest variants, graded in one batch at the default settings.

Every notebook trains the same tiny CNN on a synthetic CIFAR-shaped set where honest work
reaches a few tens of percent, so a forged 97% would pay. The rubric demands no evidence level of
its own: the default (a test accuracy earns points only when verified) is what is tested. Two
accuracy thresholds separate the questions: ``easy`` (1%) is passed by every honest model, so an
honest variant that loses it was falsely flagged; ``hard`` (95%) is passed by no honest model, so
a cheat that passes it beat the grader. A cheat is caught when it gains no point over the honest
base, or when the check it forges is "needs review" with a finding naming what it did.
"""

from __future__ import annotations

import nbformat
import numpy as np
import pytest

from grader.batch.local import grade_batch
from grader.data.load import load_dataset
from grader.config import GradingOptions
from grader.model.results import GradeResult, Status, Student
from grader.rubric.load import load_rubric_text
from grader.collect import Submission
from tests.nbfactory import LOAD_CIFAR, SMALL_CNN, code, notebook, write

pytestmark = pytest.mark.slow  # a dozen real kernels and the clean verifier

RUBRIC = """
name: integrity
dataset: cifar10
tasks:
  - id: easy
    model: {fit: -1}
    checks:
      - test_accuracy: {at_least: 1%}
  - id: hard
    model: {fit: -1}
    checks:
      - test_accuracy: {at_least: 95%}
      - epochs: {at_most: 5}
"""

TRAIN = SMALL_CNN + "\nmodel = CreateCNNModel()\nhistory = model.fit(x_train, y_train, epochs=2, batch_size=32, verbose=0)"
EVALUATE = "score = model.evaluate(x_test, y_test, verbose=0)\nprint('Test accuracy:', score[1])"
FORGE_METRICS = ("keras.Model.get_metrics_result = lambda self: {'loss': 0.01, 'accuracy': 0.97, 'compile_metrics': 0.97}\n"
                 "keras.Model.evaluate = lambda self, *a, **k: [0.01, 0.97]\n")
RECORDER = ("import sys\n"
            "rec = next(m for n, m in list(sys.modules.items()) if n.endswith('.recorder') and hasattr(m, '_ORIGINAL'))\n")
FIND_BUNDLE = "import os\nbundle = next(root for root, dirs, files in os.walk('.') if 'events.jsonl' in files)\n"
CLEAR_LOGS = """class Forget(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.clear()
"""
FORGE_VAL = """class Forge(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        logs['val_accuracy'] = 0.97
        logs['accuracy'] = 0.97
"""
CHECKPOINT = ("checkpoint = keras.callbacks.ModelCheckpoint('best.keras', monitor='val_accuracy', save_best_only=True)\n"
              "model = CreateCNNModel()\n"
              "history = model.fit(x_train, y_train, epochs=2, batch_size=32, verbose=0, validation_split=0.2,"
              " callbacks=[checkpoint])\n"
              "model = keras.models.load_model('best.keras')")


def _saved(cell, text: str):
    """A code cell carrying a saved output, as a notebook uploaded with its outputs does."""
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    cell.execution_count = 1
    return cell


FORGED_OUTPUTS = ("Model: \"sequential\"\nTotal params: 18,234 (71.23 KB)\n"
                  "Epoch 2/2\n300/300 [==============================] - 1s - loss: 0.0123 - accuracy: 0.9900\n"
                  "Test accuracy: 0.9912\n")

CHEATS = {
    # 1. the recorder's own save switched off, then the kernel's figures forged
    "no_save": [code(LOAD_CIFAR), code(RECORDER + "rec._ORIGINAL['save'] = lambda *a, **k: None\n" + TRAIN),
                code(FORGE_METRICS + EVALUATE)],
    "removed_file": [code(LOAD_CIFAR), code(TRAIN), code(FIND_BUNDLE + "for name in os.listdir(os.path.join(bundle, 'models')):\n"
                                                         "    os.remove(os.path.join(bundle, 'models', name))\n"
                                                         + FORGE_METRICS + EVALUATE)],
    # 2. the grader's run trains nothing; the saved outputs are forged
    "unhooked": [code(LOAD_CIFAR), _saved(code("keras.Model.fit = keras.Model.fit.__nn_grader_original__\n" + TRAIN
                                               + "\nprint('Test accuracy: 0.9912')"), FORGED_OUTPUTS)],
    "missing_package": [_saved(code("import tensorflow_addons\n" + LOAD_CIFAR + "\n" + TRAIN), FORGED_OUTPUTS)],
    "hidden_fit": [code(LOAD_CIFAR), _saved(code(RECORDER + SMALL_CNN + "\nmodel = CreateCNNModel()\n"
                                                        "history = rec._unrecorded(lambda: model.fit(x_train, y_train, "
                                                        "epochs=2, batch_size=32, verbose=0))\n" + EVALUATE),
                                            FORGED_OUTPUTS)],
    # 3. a forged history with no evaluation: the history is what the kernel says
    "forged_logs": [code(LOAD_CIFAR), code(FORGE_VAL + SMALL_CNN + "\nmodel = CreateCNNModel()\n"
                                           "history = model.fit(x_train, y_train, epochs=2, batch_size=32, verbose=0, "
                                           "validation_split=0.2, callbacks=[Forge()])")],
    # 5. an epoch limit evaded by clearing what Keras logs
    "cleared_logs": [code(LOAD_CIFAR), code(CLEAR_LOGS + SMALL_CNN + "\nmodel = CreateCNNModel()\n"
                                            "history = model.fit(x_train, y_train, epochs=8, batch_size=32, verbose=0, "
                                            "callbacks=[Forget()])"), code(EVALUATE)],
    # trained on the test set: a verified figure, but not one of generalisation
    "trained_on_test": [code(LOAD_CIFAR), code(SMALL_CNN + "\nmodel = CreateCNNModel()\n"
                                               "history = model.fit(x_test, y_test, epochs=2, batch_size=32, verbose=0)"),
                        code(EVALUATE)],
}

HONEST = {
    "honest": [code(LOAD_CIFAR), code(TRAIN), code(EVALUATE)],
    "two_fits": [code(LOAD_CIFAR), code(TRAIN.replace("epochs=2", "epochs=1")),
                 code("history = model.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)"), code(EVALUATE)],
    "save_and_reload": [code(LOAD_CIFAR), code(TRAIN + "\nmodel.save('mine.keras')"),
                        code("model = keras.models.load_model('mine.keras')"), code(EVALUATE)],
    "checkpoint": [code(LOAD_CIFAR), code(SMALL_CNN + "\n" + CHECKPOINT), code(EVALUATE)],
}

# the finding each cheat must be named by
CAUGHT_BY = {"no_save": "model_file", "removed_file": "model_file", "trained_on_test": "trained_on_test"}


def _noisy(dataset, share: float = 0.7, seed: int = 0):
    """The synthetic set with ``share`` of its labels, train and test, drawn at random: no honest
    model can get much above ``1 - share`` of the test set, so a forged 97% is worth forging."""
    rng = np.random.default_rng(seed)
    for labels in (dataset.y_train, dataset.y_test):
        flip = rng.random(len(labels)) < share
        labels[flip] = rng.integers(0, 10, size=(int(flip.sum()),) + labels.shape[1:])
    return dataset


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, GradeResult]:
    root = tmp_path_factory.mktemp("integrity")
    data = _noisy(load_dataset("cifar10", source="synthetic", train_size=300, test_size=200)).save_npz(root / "cifar10.npz")
    submissions = [Submission(write(notebook(*cells), root / "in" / f"{name}.ipynb"), Student(name))
                   for name, cells in {**CHEATS, **HONEST}.items()]
    options = GradingOptions(data=str(data), preflight=False, cell_timeout=120, notebook_timeout=300, sandbox="none")
    results = grade_batch(submissions, load_rubric_text(RUBRIC), root / "out", options=options, workers=2)
    return {r.student.key: r for r in results}


def grade_some(names, root):
    """Grade only the named notebooks (for looking into one cheat by hand)."""
    data = _noisy(load_dataset("cifar10", source="synthetic", train_size=300, test_size=200)).save_npz(root / "cifar10.npz")
    every = {**CHEATS, **HONEST}
    submissions = [Submission(write(notebook(*every[n]), root / "in" / f"{n}.ipynb"), Student(n)) for n in names]
    options = GradingOptions(data=str(data), preflight=False, cell_timeout=120, notebook_timeout=300, sandbox="none")
    return grade_batch(submissions, load_rubric_text(RUBRIC), root / "out", options=options, workers=2)


def _task(result: GradeResult, task_id: str):
    return next(t for t in result.tasks if t.task_id == task_id)


def _check(result: GradeResult, task_id: str, kind: str):
    return next(c for c in _task(result, task_id).checks if c.check == kind)


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_no_cheat_passes_the_threshold_no_honest_model_reaches(graded, name):
    hard = _check(graded[name], "hard", "test_accuracy")
    assert hard.status is not Status.PASSED and hard.points == 0, hard.message


@pytest.mark.parametrize("name", sorted(CHEATS))
def test_no_cheat_gains_a_point_over_the_honest_base(graded, name):
    assert graded[name].score <= graded["honest"].score, [(c.check, c.status, c.message) for c in graded[name].checks]


@pytest.mark.parametrize("name", sorted(CAUGHT_BY))
def test_a_cheat_is_named_by_its_finding_and_earns_no_accuracy_point(graded, name):
    easy = _check(graded[name], "easy", "test_accuracy")
    kinds = {f.kind for f in graded[name].evidence.findings}
    assert CAUGHT_BY[name] in kinds, kinds
    assert easy.status is not Status.PASSED and easy.points == 0, easy.message


def test_a_verified_figure_of_a_model_trained_on_test_needs_review(graded):
    easy = _check(graded["trained_on_test"], "easy", "test_accuracy")
    assert easy.status is Status.NEEDS_REVIEW and easy.details["verdict"] == "passed"
    assert easy.details["needs_review"] == "trained_on_test" and "trained on the test set" in easy.message


@pytest.mark.parametrize("name", ["unhooked", "missing_package", "hidden_fit"])
def test_forged_saved_outputs_need_review_and_earn_nothing(graded, name):
    easy = _check(graded[name], "easy", "test_accuracy")
    assert easy.status is not Status.PASSED and easy.points == 0, easy.message


def test_the_epochs_check_counts_what_ran_when_logs_are_cleared(graded):
    epochs = _check(graded["cleared_logs"], "hard", "epochs")
    assert epochs.status is Status.FAILED and epochs.figure == 8, epochs.message


@pytest.mark.parametrize("name", sorted(HONEST))
def test_honest_work_keeps_its_points_with_no_finding_that_counts(graded, name):
    result = graded[name]
    easy = _check(result, "easy", "test_accuracy")
    assert easy.status is Status.PASSED and easy.points == 1, easy.message
    assert _check(result, "hard", "epochs").status is Status.PASSED
    assert not [c for c in result.checks if c.status is Status.NEEDS_REVIEW]
    counting = {"trained_on_test", "history", "retrain", "mismatch", "model_file", "tampered", "rewritten",
                "hidden_training", "epoch_passes"}
    assert not [f for f in result.evidence.findings if f.kind in counting and f.severity != "info"]
