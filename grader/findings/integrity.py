"""Integrity checks: signs that a submission's evidence does not mean what it seems to.

Each sign becomes a :class:`~grader.model.evidence.Finding` in the report, never a deduction by
itself: an instructor reads it and decides. They are computed after verification, from the
evidence alone (and the grader's own test images):

* ``trained_on_test``: test images among the training data. For every ``fit`` the recorder
  samples 256 evenly spaced training rows (those Keras trains on: a ``validation_split`` tail is
  left out) — from the arrays, from the arrays beneath a ``tf.data`` dataset or else its first
  batches, from a ``PyDataset``'s first batches, never from a Python generator
  (:func:`grader.kernel.recorder.training_rows`) — and keeps two forms of each: a hash of the
  ranks of its pixels, per channel, which survives any increasing rescaling
  (:func:`~grader.kernel.recorder.rank_signatures`), and a coarse sketch, block means
  standardized within the row, which survives small noise too
  (:func:`~grader.kernel.recorder.row_sketches`). The grader computes both for its own raw test
  images; a sampled row is a test image when its hash is one of theirs or its sketch lies within
  :data:`SKETCH_TOLERANCE` of one of theirs (nearest neighbour). The share of matched rows
  estimates how many test images the model was trained on, and the finding says how many of how
  many sampled rows matched. Per-pixel mean subtraction of the test images, grey scale,
  resizing, crops and large noise are not recognised. Fewer than 1% matches (at least 2) are not
  reported: a real dataset can hold a few identical images in both splits.
* ``several_fits``: a model trained by more than one ``fit`` call. The ``epochs`` check adds
  them up; the finding says so, with the breakdown, so an epoch limit evaded by calling ``fit``
  again is visible.
* ``epoch_passes``: epochs of several passes over the training data each (``repeat()`` with a
  ``steps_per_epoch`` above the batches of one pass). The recorder counts the steps that ran
  and reads the size of a pass; the ``epochs`` check counts the passes
  (:meth:`~grader.model.evidence.TrainingRun.limit_count`, which this finding reads too, so the
  two never disagree), and the finding says "epoch limit evaded: ... 3 epochs of 10 passes each".
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
    """The grader's raw test images, hashed and sketched as the recorder does training rows."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, x_test) -> None:
        self._x = x_test
        self._signatures: dict[str, set[str]] = {}
        self._sketches: dict[str, tuple] = {}
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

    def sketches(self, kind: str):
        """The sketches of every test image of ``kind`` as a float32 matrix (blank images left
        out), or None when the test images cannot have that kind (another image size)."""
        import numpy as np

        from grader.kernel.recorder import row_sketches

        with self._lock:
            if kind not in self._sketches:
                matrix = None
                shaped = _shaped_like(self._x, kind)
                if shaped is not None:
                    found = row_sketches(shaped, rows=None, flatten=kind.startswith("f"))
                    decoded = [_decode(s, kind) for s in found]
                    kept = [d for d in decoded if d is not None]
                    if kept:
                        matrix = np.stack(kept).astype(np.float32)
                self._sketches[kind] = (matrix,)
            return self._sketches[kind][0]

    def matches(self, signatures: list[str], sketches: list[str] = ()) -> list[str | None]:
        """For each sampled row (the two lists run in parallel): ``"exact"`` when its signature is
        a test image's, ``"near"`` when only its sketch is within :data:`SKETCH_TOLERANCE` of one,
        else None."""
        import numpy as np

        signatures, sketches = list(signatures)[:_MAX_SAMPLED], list(sketches)[:_MAX_SAMPLED]
        found: list[str | None] = [None] * max(len(signatures), len(sketches))
        kinds = {s.split(":", 1)[0] for s in signatures if isinstance(s, str)}
        known = set().union(*(self.signatures(kind) for kind in kinds)) if kinds else set()
        for i, s in enumerate(signatures):
            if s in known:
                found[i] = "exact"
        by_kind: dict[str, list[tuple[int, object]]] = {}
        for i, s in enumerate(sketches):
            if found[i] is None and isinstance(s, str) and ":" in s:
                kind = s.split(":", 1)[0]
                if (row := _decode(s, kind)) is not None:
                    by_kind.setdefault(kind, []).append((i, row))
        for kind, rows in by_kind.items():
            reference = self.sketches(kind)
            if reference is None:
                continue
            queries = np.stack([row for _, row in rows]).astype(np.float32)
            nearest = _nearest(queries, reference)
            for (i, _), distance in zip(rows, nearest):
                if distance <= SKETCH_TOLERANCE:
                    found[i] = "near"
        return found

    def count(self, signatures: list[str], sketches: list[str] = ()) -> int:
        """How many of the sampled rows are test images (exactly, or nearly by their sketches)."""
        return sum(1 for m in self.matches(signatures, sketches) if m)


# Root-mean-square distance of two standardized sketches (in standard deviations of the block
# means) below which a training row is taken for a test image: the same image after noise of a few
# percent of its pixels' spread stays below it; two different images, even of one class, are far above.
SKETCH_TOLERANCE = 0.08
_MAX_SAMPLED = 4096  # more sampled rows than the recorder writes: a forged record, read in part


def _shaped_like(x, kind: str):
    """The test images in the layout of a sketch ``kind`` (``s32x32x3``, ``f3072``), or None."""
    if x is None or len(x.shape) < 2:
        return None
    try:
        if kind.startswith("s"):
            h, w, c = (int(v) for v in kind[1:].split("x"))
            if tuple(x.shape[1:]) == (h, w, c):
                return x
            if c == 1 and tuple(x.shape[1:]) == (h, w):
                return x.reshape(len(x), h, w, 1)
        elif kind.startswith("f") and int(kind[1:]) == math.prod(x.shape[1:]):
            return x.reshape(len(x), -1)
    except ValueError:
        pass
    return None


def _sketch_length(kind: str) -> int | None:
    from grader.kernel.recorder import SKETCH_GRID

    try:
        if kind.startswith("s"):
            h, w, c = (int(v) for v in kind[1:].split("x"))
            return min(SKETCH_GRID, h) * min(SKETCH_GRID, w) * c
        if kind.startswith("f"):
            return min(SKETCH_GRID * SKETCH_GRID, int(kind[1:]))
    except ValueError:
        pass
    return None


def _decode(sketch: str, kind: str):
    """A sketch as an int8 vector, or None (a blank row, or text that is no sketch of ``kind``)."""
    import base64
    import binascii

    import numpy as np

    payload = sketch.split(":", 1)[1] if ":" in sketch else ""
    length = _sketch_length(kind)
    if not length or payload == "-" or len(payload) > 4 * length:
        return None
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    return np.frombuffer(raw, dtype=np.int8) if len(raw) == length else None


def _nearest(queries, reference):
    """The distance of each query sketch to its nearest reference sketch, in standard deviations."""
    import numpy as np

    from grader.kernel.recorder import SKETCH_STEPS

    ref_norms = (reference * reference).sum(axis=1)
    best = []
    for start in range(0, len(queries), 256):  # bounded memory: 256 x 10,000 distances at a time
        q = queries[start:start + 256]
        d2 = (q * q).sum(axis=1)[:, None] + ref_norms[None, :] - 2.0 * q @ reference.T
        best.append(np.sqrt(np.maximum(d2.min(axis=1), 0.0) / reference.shape[1]) / SKETCH_STEPS)
    return np.concatenate(best) if best else np.zeros(0)


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


def integrity_findings(evidence: Evidence, *, test_images: TestImages | None = None,
                       hidden_test: bool = False) -> list[Finding]:
    """The integrity findings of one executed submission (see the module notes). ``hidden_test``:
    the grader measured on the instructor's hidden test set, not on the data the notebook had, so
    its figure says nothing of the notebook's validation history."""
    findings: list[Finding] = []
    fast = evidence.fast_mode
    if test_images is not None:
        findings += [f for run in evidence.runs if (f := _trained_on_test(run, test_images)) is not None]
    by_model: dict[str, list[TrainingRun]] = {}
    for run in evidence.runs:
        by_model.setdefault(run.model_id, []).append(run)
    for runs in by_model.values():
        runs.sort(key=lambda r: r.index)
        trained = [run for run in runs if not run.trained_nothing]  # a fit that failed at once is no fit
        if len(trained) > 1:
            findings.append(_several_fits(trained, fast))
        for run in runs:
            findings += _impossible_history(run)
            if (passes := _epoch_passes(run, fast)) is not None:
                findings.append(passes)
        if not fast:
            findings += _contradicted(evidence, runs[-1], hidden_test=hidden_test)
    return findings


def _sampled(run: TrainingRun):
    """The training rows the recorder sampled for ``run``: from its arrays, else from its dataset."""
    for found in (run.fit.x, run.fit.rows):
        if found is not None and (found.row_hashes or found.sketches):
            return found
    return None


_SOURCE_WORDS = {
    "dataset arrays": "rows of the arrays its tf.data dataset was made from",
    "dataset batches": "rows of the first batches of its dataset",
    "generator arrays": "rows of the arrays its generator draws from",
    "sequence batches": "rows of the first batches of its PyDataset",
}


def _trained_on_test(run: TrainingRun, test_images: TestImages) -> Finding | None:
    found = _sampled(run)
    if found is None:
        return None
    hits = test_images.matches(found.row_hashes, found.sketches)
    sampled, matches = len(hits), sum(1 for h in hits if h)
    near = sum(1 for h in hits if h == "near")
    if not sampled or matches < max(_MIN_MATCHES, math.ceil(_MIN_SHARE * sampled)):
        return None
    what = _SOURCE_WORDS.get(found.source or "", "training images")
    counted = f"{matches} of {sampled} sampled rows matched" + (
        f", {near} of them only nearly: noise or another small change was added to the pixels" if near else "")
    rows = run.fit.train_samples or (run.fit.x.samples if run.fit.x is not None else None)
    if matches == sampled:
        message = (f"fit #{run.index + 1} trained on the test set: all {sampled} {what} the grader sampled are images of "
                   f"its test set ({counted})")
    elif rows:
        trained_rows = int(rows * (1.0 - (run.fit.validation_split or 0.0)))
        estimate = round(matches / sampled * trained_rows)
        message = (f"about {estimate:,} of the {trained_rows:,} images fit #{run.index + 1} trained on are test images "
                   f"({counted})")
    else:
        message = (f"fit #{run.index + 1} trained on test images: {matches} of the {sampled} {what} the grader sampled "
                   f"are images of its test set ({counted})")
    return Finding("trained_on_test", message + ": its test accuracy overstates how well the model generalises",
                   run.cell, "warning", model_id=run.model_id)


def _epochs(run: TrainingRun, fast: bool) -> int:
    """What the epochs check counts for ``run`` (:meth:`TrainingRun.limit_count`)."""
    fast = fast or run.fast_mode
    count = run.limit_count(fast)
    return count if count is not None else run.limit_count(False) or 0


# Passes per epoch from which an epoch of several passes is a warning rather than a note.
_PASSES_WARNING = 1.5


def _epoch_passes(run: TrainingRun, fast: bool) -> Finding | None:
    """An epoch of several passes over the training data, counted as its passes by the epochs check."""
    fast = fast or run.fast_mode
    note = run.passes_note(fast)
    if note is None:
        return None
    count, epochs = run.limit_count(fast) or 0, run.epochs_counted(fast) or 0
    how = ""
    if run.fit.steps_per_epoch and run.fit.batches_per_pass:
        how = (f"; steps_per_epoch={run.fit.steps_per_epoch:,} where one pass over the training data is "
               f"{run.fit.batches_per_pass:,.6g} steps")
    severity = "warning" if not epochs or count / epochs >= _PASSES_WARNING else "info"
    return Finding("epoch_passes", f"epoch limit evaded: fit #{run.index + 1} ran {note} ({count} passes in all{how}): "
                                   f"epoch limits count the {count} passes", run.cell, severity, model_id=run.model_id)


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


def _contradicted(evidence: Evidence, last: TrainingRun, *, hidden_test: bool = False) -> list[Finding]:
    """The model's final state, as the grader measured it, against what the notebook recorded."""
    verification = evidence.verification_of(last.model_id)
    if (verification is None or verification.status != "ok" or verification.test_accuracy is None
            or not last.weights_file):  # without a file of its own, the measured model is an earlier fit's
        return []
    measured = verification.test_accuracy.value
    findings: list[Finding] = []
    val = history_values(last.history, "val_accuracy")
    # A hidden set is another distribution than the validation split (often a harder one): a gap
    # between the two is no sign of a changed history. The retraining below is measured on the
    # same hidden set as the saved model, so that comparison stands.
    if val and not hidden_test and abs(val[-1] - measured) > _history_tolerance(last, verification, measured):
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
