"""Honest work the grader must not take for a cheat: it keeps its points and gets no finding that counts.

The same tiny CNN and noisy CIFAR-shaped stand-in as the cheat corpus (:mod:`tests.integrity.test_cheats`),
each variant graded in a batch with the setting it is about:

* ``--hidden-test``: the instructor's hidden set is harder than the public test set the kernel
  loaded, so the verified figure is lower than the notebook's own; neither the trained-on-test
  fingerprint nor the comparison with the notebook's figure may flag it, and the report shows both
  figures, each named for its test set.
* ``--retrain`` of a notebook that subtracts the per-pixel mean image, and of a notebook whose own
  run ended lower than the grader's retraining (early stopping, which the retraining does not
  reproduce): both figures are reported, the rubric says which counts.
* an ``ImageDataGenerator`` with rotations where scipy is missing: the environment's mistake, with the
  command that installs it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from grader.batch.local import grade_batch
from grader.checks import grade as grade_rubric
from grader.clean.protocol import Retraining
from grader.clean.retrain import apply_retraining
from grader.findings.blame import import_problem
from grader.pipeline.compare import compare_with_measurement
from grader.collect import Submission
from grader.config import GradingOptions
from grader.data.load import load_dataset
from grader.model.evidence import CellRef, Figure, Level, accuracy_of
from grader.model.format import fmt_pct
from grader.model.results import GradeResult, Status, Student
from grader.rubric.load import load_rubric_text
from tests.integrity.test_cheats import EVALUATE, TRAIN, _noisy
from tests.nbfactory import LOAD_CIFAR, SMALL_CNN, code, md, notebook, write
from tests.rubric_fixtures import lab_evidence, one_task, verified

# The tests that grade notebooks are slow (real kernels, the clean verifier, the grader's
# retraining); those that check one rule on recorded evidence are not.
slow = pytest.mark.slow

# The first fit is the graded one: the augmentation variant's second fit fails for want of scipy.
RUBRIC = """
name: honest-variants
dataset: cifar10
tasks:
  - id: easy
    model: {fit: 1}
    checks:
      - test_accuracy: {at_least: 1%}
  - id: hard
    model: {fit: 1}
    checks:
      - test_accuracy: {at_least: 95%}
      - epochs: {at_most: 5}
"""
# The findings that count against a submission (as in the cheat corpus).
COUNTING = {"trained_on_test", "history", "retrain", "mismatch", "model_file", "tampered", "rewritten",
            "hidden_training", "epoch_passes"}

TRAIN_VALIDATED = TRAIN.replace("verbose=0)", "verbose=0, validation_split=0.2)")
MEAN_SUBTRACTED = LOAD_CIFAR.replace(
    "x_train, x_test = x_train / 255.0, x_test / 255.0",
    "x_train, x_test = x_train / 255.0, x_test / 255.0\n"
    "x_train, x_test = x_train - x_train.mean(axis=0), x_test - x_test.mean(axis=0)")
# An honest choice that costs the student's own run: early stopping that ends it after two of its
# five epochs. The grader's retraining does not reproduce callbacks: it trains all five.
TRAIN_STOPPED = (SMALL_CNN + "\nkeras.utils.set_random_seed(1)\nmodel = CreateCNNModel()\n"
                 "stop = keras.callbacks.EarlyStopping(monitor='loss', min_delta=1.0, patience=0)\n"
                 "history = model.fit(x_train, y_train, epochs=5, batch_size=500, verbose=0, callbacks=[stop])")
AUGMENT = ("from keras.preprocessing.image import ImageDataGenerator\n"
           "datagen = ImageDataGenerator(rotation_range=15, width_shift_range=0.1, horizontal_flip=True)\n"
           "history = model.fit(datagen.flow(x_train, y_train, batch_size=32), epochs=1, verbose=0)")

HIDDEN = {
    "hidden": [code(LOAD_CIFAR), code(TRAIN), code(EVALUATE)],
    "hidden_validated": [code(LOAD_CIFAR), code(TRAIN_VALIDATED), code(EVALUATE)],
}
RETRAINED = {
    "mean_subtracted": [code(MEAN_SUBTRACTED), code(TRAIN), code(EVALUATE)],
    "retrain_higher": [code(LOAD_CIFAR), code(TRAIN_STOPPED), code(EVALUATE)],
}
WITHOUT_SCIPY = {
    "augmented": [code(LOAD_CIFAR), code(TRAIN), code(EVALUATE), md("## Augmentation"), code(AUGMENT)],
}

# Put first on the kernel's path (PYTHONPATH): scipy is then not importable, as where it is not
# installed. (It is installed in the grader's own environment, so its absence is simulated.)
NO_SCIPY = '''import sys


class _NoScipy:
    """scipy is not installed here."""

    def find_spec(self, name, path=None, target=None):
        if name == "scipy" or name.startswith("scipy."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoScipy())
'''


# Sets large enough that sampling noise alone does not hide a false alarm: a grader that compared a
# hidden-set figure with the public one as if both were one test set would flag these variants.
TRAIN_SIZE, TEST_SIZE, HIDDEN_SIZE = 2000, 1000, 2000


def _data(root: Path, share: float) -> Path:
    dataset = load_dataset("cifar10", source="synthetic", train_size=TRAIN_SIZE, test_size=TEST_SIZE)
    return _noisy(dataset, share=share).save_npz(root / "cifar10.npz")


def _hidden_set(root: Path) -> Path:
    """Other test images of the same classes, more of their labels drawn at random: a set on which
    an honest model measures lower than on the public test set."""
    other = load_dataset("cifar10", source="synthetic", train_size=TRAIN_SIZE, test_size=HIDDEN_SIZE)
    harder = _noisy(other, share=0.95, seed=1)
    path = root / "hidden.npz"
    np.savez(path, x_test=harder.x_test, y_test=harder.y_test)
    return path


def _grade(root: Path, notebooks: dict, share: float = 0.7, **options) -> dict[str, GradeResult]:
    submissions = [Submission(write(notebook(*cells), root / "in" / f"{name}.ipynb"), Student(name))
                   for name, cells in notebooks.items()]
    settings = GradingOptions(data=str(_data(root, share)), preflight=False, cell_timeout=120, notebook_timeout=300,
                              sandbox="none", **options)
    results = grade_batch(submissions, load_rubric_text(RUBRIC), root / "out", options=settings, workers=2)
    return {r.student.key: r for r in results}


@pytest.fixture(scope="module")
def hidden(tmp_path_factory) -> dict[str, GradeResult]:
    root = tmp_path_factory.mktemp("hidden")
    return _grade(root, HIDDEN, hidden_test=_hidden_set(root))


@pytest.fixture(scope="module")
def retrained(tmp_path_factory) -> dict[str, GradeResult]:
    # Fewer random labels: room above the student's stopped run for the retraining to reach.
    return _grade(tmp_path_factory.mktemp("retrained"), RETRAINED, share=0.3, retrain=True)


@pytest.fixture(scope="module")
def without_scipy(tmp_path_factory) -> dict[str, GradeResult]:
    root = tmp_path_factory.mktemp("without-scipy")
    (root / "no-scipy").mkdir()
    (root / "no-scipy" / "sitecustomize.py").write_text(NO_SCIPY)
    return _grade(root, WITHOUT_SCIPY, kernel_env={"PYTHONPATH": str(root / "no-scipy")})


def _check(result: GradeResult, task_id: str, kind: str):
    task = next(t for t in result.tasks if t.task_id == task_id)
    return next(c for c in task.checks if c.check == kind)


def _keeps_its_points(result: GradeResult) -> None:
    easy = _check(result, "easy", "test_accuracy")
    assert easy.status is Status.PASSED and easy.points == 1, easy.message
    assert _check(result, "hard", "epochs").status is Status.PASSED
    assert not [c.message for c in result.checks if c.status is Status.NEEDS_REVIEW]
    assert not [f.message for f in result.evidence.findings if f.kind in COUNTING and f.severity != "info"]


def _verification(result: GradeResult):
    (verification,) = [v for v in result.evidence.verifications if v.model_id == _task_model(result)]
    return verification


def _task_model(result: GradeResult) -> str:
    return next(t for t in result.tasks if t.task_id == "easy").model_id


# -- the instructor's hidden test set

# With a hidden set the verified figure comes from another distribution than the validation
# split's: grader.findings.integrity does not compare the two (integrity_findings' hidden_test).


@slow
@pytest.mark.parametrize("name", ["hidden", "hidden_validated"])
def test_a_lower_figure_on_the_hidden_test_set_keeps_its_points_with_no_finding_that_counts(hidden, name):
    _keeps_its_points(hidden[name])


@slow
@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_the_hidden_set_measures_lower_than_the_notebooks_own_figure(hidden, name):
    """The variant is what it says: otherwise the tests above prove nothing."""
    result = hidden[name]
    claimed = accuracy_of(next(e for e in result.evidence.evaluations if e.index >= 0).results)
    measured = _verification(result).test_accuracy.value
    assert measured < claimed - 0.10, (measured, claimed)


@slow
@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_the_report_shows_both_figures_named_for_their_test_sets(hidden, name):
    easy = _check(hidden[name], "easy", "test_accuracy")
    assert "the instructor's hidden test set" in easy.details["source"], easy.message
    own = easy.details["also"][0]
    assert own["label"] == "the notebook's own evaluation on the public test set the notebook loaded", own
    assert fmt_pct(own["value"]) in easy.message and fmt_pct(easy.figure) in easy.message, easy.message
    shown = [f for f in hidden[name].evidence.findings if f.kind == "printed"]
    assert shown and all(f.severity == "info" and "hidden test set" in f.message for f in shown), shown


def test_a_lower_figure_on_a_hidden_test_set_is_shown_not_flagged():
    evidence = lab_evidence(verifications=[verified("m1", 0.40)])
    compare_with_measurement(evidence, evidence.runs[1], evidence.verifications[0], different_data=True)
    (shown,) = [f for f in evidence.findings if f.kind == "printed"]
    assert shown.severity == "info" and "63.1%" in shown.message and "40.0%" in shown.message
    assert "the instructor's hidden test set" in evidence.verifications[0].test_accuracy.source
    same = lab_evidence(verifications=[verified("m1", 0.40)])  # on the notebook's own test set it is a claim
    compare_with_measurement(same, same.runs[1], same.verifications[0], different_data=False)
    assert [f.severity for f in same.findings if f.kind == "printed"] == ["warning"]


# -- retraining

@slow
def test_a_per_pixel_mean_subtraction_is_retrained_as_the_notebook_preprocessed(retrained):
    result = retrained["mean_subtracted"]
    _keeps_its_points(result)
    verification = _verification(result)
    if verification.retrained_accuracy is None:  # not reproduced: said so, with no finding against the student
        assert "not retrained" in verification.retrain_message, verification.retrain_message
    else:
        assert "mean image" in verification.retrained_accuracy.source, verification.retrained_accuracy.source


@slow
def test_a_retraining_that_reaches_more_than_the_students_run_reports_both_figures(retrained):
    result = retrained["retrain_higher"]
    _keeps_its_points(result)
    verification = _verification(result)
    saved, again = verification.test_accuracy.value, verification.retrained_accuracy.value
    assert again > saved + 0.05, (saved, again)  # the variant is what it says
    easy = _check(result, "easy", "test_accuracy")
    assert easy.figure == pytest.approx(again)  # the rubric's default: the grader's own training counts
    assert fmt_pct(saved) in easy.message and "the notebook's saved model, measured by the grader" in easy.message
    assert "retrained by the grader" in easy.message, easy.message


RETRAINED_RUBRIC = """
name: retrained
dataset: cifar10
retrained_accuracy: {rule}
tasks:
  - id: cnn
    model: {{fit: 2}}
    checks:
      - test_accuracy: 60%
"""


@pytest.mark.parametrize(("rule", "counted", "other"), [
    ("retrained", 0.70, 0.55), ("saved", 0.55, 0.70), ("higher", 0.70, 0.55), ("lower", 0.55, 0.70)])
def test_the_rubric_decides_which_figure_of_a_retrained_model_counts(rule, counted, other):
    evidence = lab_evidence(verifications=[verified("m1", 0.55)])
    apply_retraining(evidence.verifications[0], Retraining(
        "m1", "ok", accuracy=Figure(0.70, Level.VERIFIED, "retrained by the grader: seed 0, 3 epochs")))
    result = grade_rubric(load_rubric_text(RETRAINED_RUBRIC.format(rule=rule)), evidence)[0].checks[0]
    assert result.figure == counted and result.status is (Status.PASSED if counted >= 0.6 else Status.FAILED)
    assert "Not counted: " in result.message and fmt_pct(other) in result.message, result.message
    assert result.details["also"][0]["value"] == other


# -- the environment's mistakes

# What Keras 3 raises when ImageDataGenerator's rotations need scipy and it is missing.
LAZY_MODULE_TRACEBACK = """ImportError                               Traceback (most recent call last)
Cell In[5], line 3
      1 from keras.preprocessing.image import ImageDataGenerator
----> 3 history = model.fit(datagen.flow(x_train, y_train, batch_size=32), epochs=1, verbose=0)

File /work/venv/lib/python3.11/site-packages/keras/src/utils/module_utils.py:29, in LazyModule.initialize(self)
     27     self.module = importlib.import_module(self.name)
     28 except ImportError:
---> 29     raise ImportError(self.import_error_msg)

ImportError: This requires the scipy module. You can install it via `pip install scipy`"""


def test_a_librarys_own_words_for_a_missing_module_are_the_environments_mistake():
    problem = import_problem("This requires the scipy module. You can install it via `pip install scipy`", 5, [],
                             traceback=LAZY_MODULE_TRACEBACK)
    assert problem is not None and problem.kind == "environment", problem
    assert "not your mistake" in problem.message and "pip install scipy" in problem.message


def test_a_fit_that_failed_before_its_first_step_leaves_the_figure_to_the_fit_before():
    evidence = lab_evidence(verifications=[verified("m1", 0.66)])
    failed = evidence.runs[1]
    evidence.runs.append(replace(failed, index=3, cell=CellRef(12, "4. CNN"), history={}, error="ImportError: scipy",
                                 fit=replace(failed.fit, epochs=1, epochs_run=0)))
    result = grade_rubric(one_task("- test_accuracy: 60%"), evidence)[0].checks[0]
    assert result.level is Level.VERIFIED and result.figure == 0.66, result.message


@slow
def test_an_image_generator_without_scipy_is_the_environments_mistake(without_scipy):
    result = without_scipy["augmented"]
    assert [e for e in result.evidence.cell_errors if "scipy" in e.evalue], result.evidence.cell_errors
    problems = [p for p in result.problems if "scipy" in p.message]
    assert [p.kind for p in problems] == ["environment"], [(p.kind, p.message) for p in result.problems]
    assert "not your mistake" in problems[0].message and "pip install scipy" in problems[0].message
    _keeps_its_points(result)

