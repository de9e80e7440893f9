"""Choosing the strongest evidence for a figure about a selected model.

The trust model (design notes): a figure measured by the grader outside the student's kernel
(``verified``) beats one recorded in the kernel (``executed``), which beats one parsed from the
saved notebook (``reported``). For a model's test accuracy that means, in order:

1. the clean verification of the saved model, when it succeeded and the saved weights are the
   weights of the selected fit (no later fit changed them: a later fit that failed before its
   first training step, such as a generator that cannot run, changed nothing) — and when the
   grader retrained the model (``--retrain``, ``retrain: true``), the figure the rubric's
   ``retrained_accuracy`` names: the accuracy of its own training (the default), the saved
   model's, or the higher or lower of the two;
2. a ``model.evaluate`` call in the kernel after the selected fit and before the next fit of the
   same model (static mode: a printed test score in that stretch of the notebook);
3. the last validation accuracy of the fit's history, at the run's own level.

Each figure comes back as a :class:`grader.model.evidence.Figure`, so a check can report its level and
source and refuse figures weaker than the rubric's ``min_level``. The other figures of the same
model that did not count come with it, each named for what it measured
(:attr:`AccuracyEvidence.also`): the saved model's beside the retraining's, and, when the grader
measured on the instructor's hidden test set (``--hidden-test``), the notebook's own evaluation on
the public test set it loaded. A hidden set may well measure lower; both figures are shown, the
grader's counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grader.model.format import fmt_int, fmt_pct
from grader.checks.selectors import Target
from grader.model.evidence import Evaluation, Evidence, Figure, Level, TrainingRun, accuracy_of, history_values

__all__ = [
    "HIDDEN_TEST_SET",
    "PUBLIC_TEST_SET",
    "RETRAINED_ACCURACY",
    "AccuracyEvidence",
    "accuracy_figure",
    "evaluation_after",
    "is_final_state",
    "model_history",
    "params_figure",
    "trained_nothing",
]

# How figures measured on ``--hidden-test`` images are named (grader.pipeline.compare adds it to
# the verified figure's source), and the test set the notebook itself evaluated on then.
HIDDEN_TEST_SET = "the instructor's hidden test set"
PUBLIC_TEST_SET = "the public test set the notebook loaded"
# The rubric's ``retrained_accuracy``: which figure a test accuracy uses when the grader retrained the model.
RETRAINED_ACCURACY = ("retrained", "saved", "higher", "lower")


def trained_nothing(run: TrainingRun) -> bool:
    """True for a fit that failed before its first training step (:attr:`TrainingRun.trained_nothing`)."""
    return run.trained_nothing


def is_final_state(evidence: Evidence, target: Target) -> bool:
    """True when no later fit changed the selected model's weights, so its saved (and verified)
    weights are the weights of this fit."""
    if target.run is None:
        return True
    return not any(r.model_id == target.model_id and r.index > target.run.index and not trained_nothing(r)
                   for r in evidence.runs)


def _next_fit(evidence: Evidence, run: TrainingRun) -> TrainingRun | None:
    later = [r for r in evidence.runs if r.model_id == run.model_id and r.index > run.index]
    return min(later, key=lambda r: r.index) if later else None


def evaluation_after(evidence: Evidence, target: Target) -> Evaluation | None:
    """The last evaluation with an accuracy of the selected model after its fit and before its
    next fit. Evaluations without a model (printed scores in static mode) count when no other
    fit happened between the selected fit and them."""
    run = target.run
    if run is None:
        candidates = [e for e in evidence.evaluations if e.model_id == target.model_id]
        return next((e for e in reversed(candidates) if accuracy_of(e.results) is not None), None)
    following = _next_fit(evidence, run)
    stop = following.cell.index if following is not None else None
    any_later_fit = [r.cell.index for r in evidence.runs if r.index > run.index]
    chosen = None
    for ev in sorted(evidence.evaluations, key=lambda e: (e.cell.index, e.index)):
        if ev.cell.index < run.cell.index or (stop is not None and ev.cell.index >= stop):
            continue
        if ev.model_id is None:
            if any(run.cell.index < c <= ev.cell.index for c in any_later_fit):
                continue
        elif ev.model_id != target.model_id:
            continue
        if accuracy_of(ev.results) is not None:
            chosen = ev
    return chosen


def model_history(evidence: Evidence, target: Target) -> dict[str, list[float]]:
    """The training history that led to the selected fit: the fits of the same model up to it,
    as long as they trained the same parameters (a fine-tuning phase starts a new history)."""
    run = target.run
    if run is None:
        return {}
    phase = [run]
    for earlier in sorted((r for r in evidence.runs if r.model_id == run.model_id and r.index < run.index),
                          key=lambda r: -r.index):
        if earlier.architecture.trainable_params != run.architecture.trainable_params:
            break
        phase.insert(0, earlier)
    if len(phase) == 1:
        return {k: list(v) for k, v in run.history.items()}
    merged: dict[str, list[float]] = {}
    for fit in phase:
        for key, values in fit.history.items():
            merged.setdefault(key, []).extend(values)
    return merged


@dataclass
class AccuracyEvidence:
    """The strongest accuracy figure found, and what was tried on the way (for messages)."""

    figure: Figure | None
    missing: str = ""  # why there is none
    notes: list[str] = field(default_factory=list)  # e.g. why verification did not count
    # The model's other figures, named for what they measured, shown beside the one that counts.
    also: list[tuple[str, Figure]] = field(default_factory=list)

    def also_words(self) -> str:
        """``"Not counted: the grader's retraining of its architecture, 61% (verified: retrained by ...)."``, or ``""``."""
        if not self.also:
            return ""
        return "Not counted: " + "; ".join(f"{label}, {fmt_pct(figure.value)} ({figure.level.label}: {figure.source})"
                                            for label, figure in self.also) + "."


def accuracy_figure(evidence: Evidence, target: Target, which: str = "test", *, use: str = "final",
                    retrained: str = "retrained") -> AccuracyEvidence:
    """The strongest figure for ``which`` accuracy ("test", "val" or "train") of the selected model.

    ``use`` is "final" (last epoch) or "best" (best epoch) for figures read from the history.
    ``retrained`` (the rubric's ``retrained_accuracy``, one of :data:`RETRAINED_ACCURACY`) says
    which figure counts when the grader retrained the model and also measured its saved file.
    """
    notes: list[str] = []
    run = target.run
    if run is None:
        return AccuracyEvidence(None, "this model was never trained")
    if run.error and not run.history:
        return AccuracyEvidence(None, f"its training in cell {run.cell.index + 1} failed ({run.error.splitlines()[0][:100]})")
    if which == "test":
        verification = evidence.verification_of(target.model_id)
        if verification is not None:
            if verification.status != "ok":
                notes.append(f"the grader could not verify the saved model ({verification.status}"
                             + (f": {verification.message}" if verification.message else "") + ")")
            elif not is_final_state(evidence, target):
                notes.append("the saved model was trained further after this fit, so its verified accuracy is not this fit's")
            elif verification.retrained_accuracy is not None:  # asked for: the rubric says which counts
                again = verification.retrained_accuracy
                if verification.test_accuracy is None:
                    return AccuracyEvidence(again, notes=notes)
                saved = _saved_figure(verification)
                counted, other = _counted(saved, again, retrained)
                notes.append(f"the notebook's saved model measured {saved.value:.1%}" if counted is again
                             else f"the grader's retraining reached {again.value:.1%}")
                label = _SAVED_LABEL if other is saved else _RETRAINED_LABEL
                return AccuracyEvidence(counted, notes=notes, also=[(label, other)])
            elif verification.test_accuracy is not None:
                if verification.retrain_message.startswith("not retrained"):
                    notes.append(verification.retrain_message)
                figure = _saved_figure(verification)
                also = []
                evaluation = evaluation_after(evidence, target)
                if HIDDEN_TEST_SET in figure.source and evaluation is not None:
                    own = _evaluation_figure(evaluation)
                    also.append((f"the notebook's own evaluation on {PUBLIC_TEST_SET}", own))
                return AccuracyEvidence(figure, notes=notes, also=also)
        evaluation = evaluation_after(evidence, target)
        if evaluation is not None:
            return AccuracyEvidence(_evaluation_figure(evaluation), notes=notes)
        key, source = "val_accuracy", "last validation accuracy in the training history; no test evaluation was recorded"
    elif which == "val":
        key, source = "val_accuracy", "validation accuracy of the training history"
    else:
        key, source = "accuracy", "training accuracy of the training history"
    values = history_values(model_history(evidence, target), key)
    if not values:
        what = {"test": "test or validation", "val": "validation", "train": "training"}[which]
        missing = f"no {what} accuracy was recorded for {target.where}"
        if which in ("test", "val") and not history_values(run.history, "val_accuracy"):
            missing += " (fit without validation data, and no model.evaluate after it)" if which == "test" else " (fit without validation data)"
        return AccuracyEvidence(None, missing, notes)
    if use == "best":
        value = max(values)
        source = source.replace("last ", "") + f", best of {len(values)} epochs"
    else:
        value = values[-1]
        if which != "test":
            source += f", epoch {len(values)}"
    return AccuracyEvidence(Figure(value, run.level, source), notes=notes)


_SAVED_LABEL = "the notebook's saved model, measured by the grader"
_RETRAINED_LABEL = "the grader's retraining of its architecture"


def _saved_figure(verification) -> Figure:
    """The clean re-evaluation of the saved model, with a source that says so."""
    figure = verification.test_accuracy
    source = figure.source or (
        f"measured by the grader on {fmt_int(verification.samples)} test images" if verification.samples
        else "measured by the grader on its own copy of the test data")
    return Figure(figure.value, figure.level, source)


def _counted(saved: Figure, again: Figure, rule: str) -> tuple[Figure, Figure]:
    """(the figure that counts, the other) under the rubric's ``retrained_accuracy`` rule."""
    if rule == "saved" or (rule == "higher" and saved.value > again.value) or (rule == "lower" and saved.value < again.value):
        return saved, again
    return again, saved


def _evaluation_figure(evaluation: Evaluation) -> Figure:
    value = accuracy_of(evaluation.results)
    assert value is not None  # evaluation_after only returns evaluations with an accuracy
    source = f"model.evaluate in cell {evaluation.cell.index + 1}"
    if evaluation.samples:
        source += f" on {fmt_int(evaluation.samples)} samples"
    if evaluation.level is Level.REPORTED:
        source = f"test score printed in cell {evaluation.cell.index + 1}"
    return Figure(value, evaluation.level, source)


def params_figure(evidence: Evidence, target: Target, which: str = "total") -> Figure:
    """A parameter count of the selected model: the grader's own count in a clean process when
    it applies to this fit, else the count recorded with the fit (or parsed from the summary)."""
    attr = {"total": "total_params", "trainable": "trainable_params", "non_trainable": "non_trainable_params"}[which]
    verification = evidence.verification_of(target.model_id)
    if (verification is not None and verification.status == "ok" and getattr(verification, attr) is not None
            and is_final_state(evidence, target)):
        return Figure(float(getattr(verification, attr)), Level.VERIFIED, "counted by the grader on the saved model")
    source = "parsed from the saved model summary" if target.level is Level.REPORTED else "recorded when the model was trained"
    if target.run is None:
        source = "counted on the model built at the end of the run"
    return Figure(float(getattr(target.architecture, attr)), target.level, source)
