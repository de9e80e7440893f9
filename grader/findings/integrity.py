"""Integrity checks: signs that a submission's evidence does not mean what it seems to.

Each sign becomes a :class:`~grader.model.evidence.Finding` in the report, never a deduction by
itself: an instructor reads it and decides. They are computed after verification, from the
evidence alone (and the grader's own test images):

* ``trained_on_test``: test images among the training data. For every ``fit`` the recorder
  hashes 256 evenly spaced training rows (those Keras trains on: a ``validation_split`` tail is
  left out) in a form that survives the student's rescaling — each pixel replaced by its rank in
  its row, per channel (:func:`grader.kernel.recorder.rank_signatures`). The grader hashes its
  own raw test images the same way and counts the sampled rows that are test images; the share
  estimates how many test images the model was trained on. Preprocessing that is not the same
  increasing map for every pixel of a channel (per-pixel mean subtraction, augmentation, grey
  scale, resizing) is not recognised. Fewer than 1% matches (at least 2) are not reported: a
  real dataset can hold a few identical images in both splits.
* ``several_fits``: a model trained by more than one ``fit`` call. The ``epochs`` check adds
  them up; the finding says so, with the breakdown, so an epoch limit evaded by calling ``fit``
  again is visible.
* ``history``: a recorded history no Keras run can produce (an accuracy outside 0–1 or not
  finite, more epochs than ``fit`` asked for, a length other than the epochs the recorder
  counted), or one that the grader's own measurement contradicts (final validation accuracy
  far from the verified test accuracy).
* ``retrain``: the saved model far better than the grader's retraining of its architecture.
* ``tampered``: the recorder's log holds a fit twice, or a fit that never started: lines the
  notebook wrote (the bundle reader finds those).

Weights loaded from files (``load_weights``, ``load_model``) are recorded in the kernel as they
happen, with their cell, and reach the report as they are.

Example::

    evidence.findings += integrity_findings(evidence, test_images=load_test_images(Path("cifar10.npz")))
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

from grader.model.evidence import Evidence, Finding, TrainingRun, history_values, is_accuracy_key

__all__ = ["HISTORY_TOLERANCE", "RETRAIN_TOLERANCE", "TestImages", "integrity_findings",
           "load_test_images"]

# Final validation accuracy and verified test accuracy of an honest run rarely differ by more:
# both are held-out data of the same distribution.
HISTORY_TOLERANCE = 0.10
# Retraining with another seed moves a course model's accuracy by a few points at most.
RETRAIN_TOLERANCE = 0.10
# Sampled training rows that must be test images before it is reported (see the module notes).
_MIN_MATCHES, _MIN_SHARE = 2, 0.01
_LOG_LIMIT = 64 * 2**20


class TestImages:
    """The grader's raw test images, hashed as the recorder hashes training rows."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, x_test) -> None:
        self._x = x_test
        self._signatures: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def signatures(self, kind: str) -> set[str]:
        """Signatures of every test image of ``kind`` (``r1``: whole rows, ``r3``: per channel)."""
        from grader.kernel.recorder import rank_signatures

        with self._lock:  # a batch's workers ask at once; hash 10,000 images only once
            if kind not in self._signatures:
                flatten = kind == "r1"
                found = rank_signatures(self._x, rows=None, flatten=flatten) if self._x is not None else []
                self._signatures[kind] = {s for s in found if s.startswith(kind + ":")}
            return self._signatures[kind]

    def count(self, signatures: list[str]) -> int:
        """How many of ``signatures`` are test images."""
        kinds = {s.split(":", 1)[0] for s in signatures}
        known = set().union(*(self.signatures(kind) for kind in kinds)) if kinds else set()
        return sum(1 for s in signatures if s in known)


_CACHE: dict[str, TestImages] = {}
_CACHE_LOCK = threading.Lock()


def load_test_images(npz: Path) -> TestImages | None:
    """The test images of a prepared dataset file, hashed lazily and once per process."""
    import numpy as np

    key = str(Path(npz).resolve())
    with _CACHE_LOCK:
        if key not in _CACHE:
            try:
                with np.load(npz, allow_pickle=False) as data:
                    x_test = data["x_test"] if "x_test" in data.files else None
            except (OSError, ValueError):
                return None
            _CACHE[key] = TestImages(x_test)
        return _CACHE[key]


def integrity_findings(evidence: Evidence, *, test_images: TestImages | None = None) -> list[Finding]:
    """The integrity findings of one executed submission (see the module notes)."""
    findings: list[Finding] = []
    fast = evidence.fast_mode
    if test_images is not None:
        findings += [f for run in evidence.runs if (f := _trained_on_test(run, test_images)) is not None]
    by_model: dict[str, list[TrainingRun]] = {}
    for run in evidence.runs:
        by_model.setdefault(run.model_id, []).append(run)
    for runs in by_model.values():
        runs.sort(key=lambda r: r.index)
        if len(runs) > 1:
            findings.append(_several_fits(runs, fast))
        for run in runs:
            findings += _impossible_history(run)
        if not fast:
            findings += _contradicted(evidence, runs[-1])
    return findings


def _trained_on_test(run: TrainingRun, test_images: TestImages) -> Finding | None:
    sampled = run.fit.x.row_hashes if run.fit.x is not None else []
    if not sampled:
        return None
    matches = test_images.count(sampled)
    if matches < max(_MIN_MATCHES, math.ceil(_MIN_SHARE * len(sampled))):
        return None
    rows = run.fit.train_samples or (run.fit.x.samples if run.fit.x is not None else None) or len(sampled)
    trained_rows = int(rows * (1.0 - (run.fit.validation_split or 0.0)))
    if matches == len(sampled):
        message = (f"fit #{run.index + 1} trained on the test set: all {len(sampled)} training images the grader "
                   f"sampled are images of its test set")
    else:
        estimate = round(matches / len(sampled) * trained_rows)
        message = (f"about {estimate:,} of the {trained_rows:,} images fit #{run.index + 1} trained on are test images "
                   f"({matches} of {len(sampled)} sampled)")
    return Finding("trained_on_test", message + ": its test accuracy overstates how well the model generalises",
                   run.cell, "warning", model_id=run.model_id)


def _epochs(run: TrainingRun, fast: bool) -> int:
    if (fast or run.fast_mode) and run.fit.epochs is not None:
        return max(0, run.fit.epochs - (run.fit.initial_epoch or 0))  # asked for; fast mode ran fewer
    if run.history:
        return run.epochs_trained
    return run.fit.epochs_run or 0


def _several_fits(runs: list[TrainingRun], fast: bool) -> Finding:
    per_fit = [_epochs(run, fast) for run in runs]
    breakdown = ", ".join(f"fit #{run.index + 1}: {n}" for run, n in zip(runs, per_fit))
    # Continuing to train the same parameters is what evades a limit; a fine-tuning phase that
    # unfreezes layers changes the trainable count and is ordinary.
    same_phase = len({run.architecture.trainable_params for run in runs}) == 1
    return Finding(
        "several_fits", f"model {runs[0].model_id} was trained by {len(runs)} fit calls ({breakdown}): "
                        f"{sum(per_fit)} epochs in total, which is what epoch limits count",
        runs[-1].cell, "warning" if same_phase else "info", model_id=runs[0].model_id)


def _impossible_history(run: TrainingRun) -> list[Finding]:
    problems: list[str] = []
    for key, values in run.history.items():
        if not is_accuracy_key(key):
            continue  # a loss may honestly be NaN or large: training diverged
        bad = [v for v in values if not math.isfinite(v) or not 0.0 <= v <= 1.0]
        if bad:
            problems.append(f"'{key}' has {len(bad)} value(s) no accuracy can take (such as {bad[0]:g})")
    length = max((len(v) for v in run.history.values()), default=0)  # the history alone
    if run.history and run.fit.epochs_run is not None and length != run.fit.epochs_run:
        problems.append(f"it lists {length} epochs but the recorder counted {run.fit.epochs_run}")
    asked = (run.fit.epochs - (run.fit.initial_epoch or 0)) if run.fit.epochs is not None else None
    if asked is not None and length > asked:
        problems.append(f"it lists {length} epochs but fit asked for {asked}")
    if not problems:
        return []
    return [Finding("history", f"the recorded history of fit #{run.index + 1} cannot come from Keras: "
                               + "; ".join(problems) + ". Its figures are not trusted", run.cell, "error",
                    model_id=run.model_id)]


def _history_tolerance(run: TrainingRun, verification, accuracy: float) -> float:
    """How far an honest final validation accuracy may be from the verified test accuracy: at
    least :data:`HISTORY_TOLERANCE`, more when either set is small enough for sampling alone to
    move it further (four standard errors of the difference of two proportions)."""
    n_val = run.fit.validation_samples
    if n_val is None and run.fit.validation_split and run.fit.train_samples:
        n_val = int(run.fit.train_samples * run.fit.validation_split)
    n_test = verification.samples
    if not n_val or not n_test:
        return HISTORY_TOLERANCE
    p = min(max(accuracy, 0.05), 0.95)
    spread = 4.0 * math.sqrt(p * (1 - p) * (1.0 / n_val + 1.0 / n_test))
    return max(HISTORY_TOLERANCE, spread)


def _contradicted(evidence: Evidence, last: TrainingRun) -> list[Finding]:
    """The model's final state, as the grader measured it, against what the notebook recorded."""
    verification = evidence.verification_of(last.model_id)
    if (verification is None or verification.status != "ok" or verification.test_accuracy is None
            or not last.weights_file):  # without a file of its own, the measured model is an earlier fit's
        return []
    measured = verification.test_accuracy.value
    findings: list[Finding] = []
    val = history_values(last.history, "val_accuracy")
    if val and abs(val[-1] - measured) > _history_tolerance(last, verification, measured):
        findings.append(Finding(
            "history", f"the history of fit #{last.index + 1} ends at {val[-1]:.1%} validation accuracy, but the saved "
                       f"model measures {measured:.1%} on the grader's test data ({verification.test_accuracy.source}): "
                       "the history was changed, the saved weights are not the ones it describes, or the grader's "
                       "preprocessing differs from the notebook's", last.cell, "warning", model_id=last.model_id))
    retrained = verification.retrained_accuracy
    if retrained is not None and measured - retrained.value > RETRAIN_TOLERANCE:
        findings.append(Finding(
            "retrain", f"the saved model measures {measured:.1%}, but the grader's retraining of the same architecture "
                       f"with the notebook's settings reached {retrained.value:.1%} (seed {verification.retrain_seed}): "
                       "the saved weights may not come from this notebook's training", last.cell, "warning",
                       model_id=last.model_id))
    return findings
