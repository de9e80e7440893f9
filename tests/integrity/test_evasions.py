"""Cheap evasions of the trained-on-test fingerprint and of the epoch limit, and the honest
variants they must not be confused with, graded in one batch at the default settings.

The set-up is :mod:`tests.integrity.test_cheats`' (a tiny CNN on a synthetic CIFAR-shaped set
with most labels drawn at random). Evasions: test images with a little noise added, test images
fed through ``tf.data``, and ``repeat()`` with a ``steps_per_epoch`` ten times a pass (with and
without ``--retrain``). Honest variants: standardization, per-pixel mean subtraction, a validation
split, flips and shifts, ``tf.data`` with and without ``repeat()``, a Python generator.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader.batch.local import grade_batch
from grader.collect import Submission
from grader.config import GradingOptions
from grader.data.load import load_dataset
from grader.model.results import GradeResult, Status, Student
from grader.rubric.load import load_rubric_text
from tests.integrity.test_cheats import RUBRIC
from tests.nbfactory import LOAD_CIFAR, SMALL_CNN, code, notebook, write

pytestmark = pytest.mark.slow  # real kernels and the clean verifier

BUILD = SMALL_CNN + "\nmodel = CreateCNNModel()\n"
EVALUATE = "score = model.evaluate(x_test, y_test, verbose=0)\nprint('Test accuracy:', score[1])"
TF = "import math\nimport tensorflow as tf\n"
PASS = "batches = math.ceil(len(x_train) / 32)\n"
GENERATOR = """def batches_of(x, y):
    while True:
        for start in range(0, len(x), 32):
            yield x[start:start + 32], y[start:start + 32]
"""

CHEATS = {
    "noisy_test": BUILD + "history = model.fit(x_test + np.random.normal(0, 1e-3, x_test.shape), y_test, epochs=2, verbose=0)",
    "tf_data_test": TF + BUILD + "history = model.fit(tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(32), epochs=2, verbose=0)",
    "repeat_steps": TF + PASS + BUILD + ("ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(32).repeat()\n"
                                         "history = model.fit(ds, epochs=3, steps_per_epoch=10 * batches, verbose=0)"),
}

HONEST = {
    "standardized_split": ("x_train = (x_train - x_train.mean(axis=0)) / x_train.std()\n"
                           "x_test = (x_test - x_test.mean(axis=0)) / x_test.std()\n"
                           + BUILD + "history = model.fit(x_train, y_train, epochs=2, validation_split=0.2, verbose=0)"),
    "augmented": ("x_aug = np.concatenate([x_train, x_train[:, :, ::-1], np.roll(x_train, 2, axis=1)])\n"
                  "y_aug = np.concatenate([y_train] * 3)\n"
                  + BUILD + "history = model.fit(x_aug + np.random.normal(0, 1e-3, x_aug.shape), y_aug, epochs=2, verbose=0)"),
    "tf_data": TF + BUILD + ("ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(300).batch(32)\n"
                             "history = model.fit(ds, epochs=2, verbose=0)"),
    "tf_data_repeat": TF + PASS + BUILD + ("ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(32).repeat()\n"
                                           "history = model.fit(ds, epochs=2, steps_per_epoch=batches, verbose=0)"),
    "generator": TF + PASS + GENERATOR + BUILD + ("history = model.fit(batches_of(x_train, y_train), epochs=2, "
                                                  "steps_per_epoch=batches, verbose=0)"),
}

# the finding each evasion must be named by
CAUGHT_BY = {"noisy_test": "trained_on_test", "tf_data_test": "trained_on_test", "repeat_steps": "epoch_passes"}


def _noisy(dataset, share: float = 0.7, seed: int = 0):
    rng = np.random.default_rng(seed)
    for labels in (dataset.y_train, dataset.y_test):
        flip = rng.random(len(labels)) < share
        labels[flip] = rng.integers(0, 10, size=(int(flip.sum()),) + labels.shape[1:])
    return dataset


def _grade(root, names, *, retrain: bool = False) -> dict[str, GradeResult]:
    data = _noisy(load_dataset("cifar10", source="synthetic", train_size=300, test_size=200)).save_npz(root / "cifar10.npz")
    every = {**CHEATS, **HONEST}
    submissions = [Submission(write(notebook(code(LOAD_CIFAR), code(every[n]), code(EVALUATE)), root / "in" / f"{n}.ipynb"),
                              Student(n)) for n in names]
    options = GradingOptions(data=str(data), preflight=False, cell_timeout=120, notebook_timeout=300, sandbox="none",
                             retrain=retrain)
    results = grade_batch(submissions, load_rubric_text(RUBRIC), root / "out", options=options, workers=2)
    return {r.student.key: r for r in results}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, GradeResult]:
    return _grade(tmp_path_factory.mktemp("evasions"), [*CHEATS, *HONEST])


@pytest.fixture(scope="module")
def retrained(tmp_path_factory) -> dict[str, GradeResult]:
    return _grade(tmp_path_factory.mktemp("evasions-retrained"), ["repeat_steps", "tf_data_repeat"], retrain=True)


def _check(result: GradeResult, task_id: str, kind: str):
    task = next(t for t in result.tasks if t.task_id == task_id)
    return next(c for c in task.checks if c.check == kind)


def _findings(result: GradeResult, kind: str):
    return [f for f in result.evidence.findings if f.kind == kind]


@pytest.mark.parametrize("name", sorted(CAUGHT_BY))
def test_an_evasion_is_named_by_its_finding(graded, name):
    assert [f for f in _findings(graded[name], CAUGHT_BY[name]) if f.severity == "warning"], \
        [(f.kind, f.message) for f in graded[name].evidence.findings]


@pytest.mark.parametrize("name", ["noisy_test", "tf_data_test"])
def test_training_on_noisy_or_streamed_test_images_puts_test_accuracy_under_review(graded, name):
    easy = _check(graded[name], "easy", "test_accuracy")
    assert easy.status is Status.NEEDS_REVIEW and easy.details["needs_review"] == "trained_on_test", easy.message
    (finding,) = _findings(graded[name], "trained_on_test")
    assert "of 200 sampled rows matched" in finding.message


def test_the_noise_is_named_in_the_finding(graded):
    (finding,) = _findings(graded["noisy_test"], "trained_on_test")
    assert "200 of 200 sampled rows matched, 200 of them only nearly" in finding.message


def test_epochs_of_ten_passes_each_fail_the_epoch_limit_with_the_finding_beside_them(graded):
    epochs = _check(graded["repeat_steps"], "hard", "epochs")
    assert epochs.status is Status.FAILED and epochs.figure == 30, epochs.message
    assert "3 epochs of 10 passes each over the training data" in epochs.message
    (finding,) = _findings(graded["repeat_steps"], "epoch_passes")
    assert finding.message.startswith("epoch limit evaded: fit #1 ran 3 epochs of 10 passes each") and "(30 passes" in finding.message


@pytest.mark.parametrize("name", sorted(HONEST))
def test_honest_variants_keep_their_points_with_no_finding_that_counts(graded, name):
    result = graded[name]
    easy = _check(result, "easy", "test_accuracy")
    assert easy.status is Status.PASSED and easy.points == 1, easy.message
    epochs = _check(result, "hard", "epochs")
    assert epochs.status is Status.PASSED and epochs.figure == 2, epochs.message
    assert not [c for c in result.checks if c.status is Status.NEEDS_REVIEW]
    assert not _findings(result, "trained_on_test") and not _findings(result, "epoch_passes")


def test_retraining_reproduces_the_passes_not_the_epochs(retrained):
    result = retrained["repeat_steps"]
    verification = result.evidence.verification_of(result.evidence.runs[-1].model_id)
    assert verification.retrained_accuracy is not None, verification.retrain_message
    assert "30 epochs" in verification.retrained_accuracy.source
    assert "3 passes over its training data" not in (verification.retrain_message or "")
    assert "10 passes over its training data" in verification.retrain_message
    assert _check(result, "hard", "epochs").figure == 30


def test_retraining_an_honest_repeated_dataset_trains_its_epochs(retrained):
    result = retrained["tf_data_repeat"]
    verification = result.evidence.verification_of(result.evidence.runs[-1].model_id)
    assert verification.retrained_accuracy is not None and "2 epochs" in verification.retrained_accuracy.source
