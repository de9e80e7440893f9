"""When a check's verdict needs a person: evidence weaker than demanded, or an integrity finding.

Three rules turn a check into "needs review" (:attr:`grader.model.results.Status.NEEDS_REVIEW`, no
points until an instructor accepts it):

* **Evidence level.** A figure the student could have forged does not earn accuracy points. A
  test accuracy counts only when it is ``verified`` (measured by the grader outside the kernel on
  a model file whose provenance holds, or the grader's own retraining) unless the rubric lowers
  the demand: ``accuracy_evidence: executed`` for the whole rubric, or ``min_level`` on one
  check. Any check whose figure is weaker than its ``min_level`` is treated the same way. The
  verdict the weaker figure would have given is kept (``details["verdict"]``), so accepting it
  is one decision, not a re-grade.
* **Integrity findings** (:mod:`grader.findings.integrity`, the bundle reader): a check that passed on the
  figures a finding puts in doubt needs review, with the finding's words. Which findings concern
  which checks is :data:`AFFECTED`; a finding about one model concerns only that model's checks,
  and a submission-wide one (``tampered``) concerns every automatic check.
* **A model the grader cannot feed.** A model that takes more than one input (the labels as a
  second input) is not verified (status ``inputs``); every accuracy check of it that would pass
  needs review with that reason, even where the rubric accepts executed evidence.

A failed check stays failed: a forged figure is never lower than the honest one, so a weak figure
that fails says what a strong one would. An instructor accepts or rejects a reviewed check with a
human score, as for a manual item (:func:`grader.store.manual.review_items`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from grader.checks.base import CheckContext, Outcome
from grader.model.words import sentence
from grader.model.evidence import Finding, Level, VerificationStatus
from grader.model.results import Status

if TYPE_CHECKING:
    from grader.rubric.model import Check

__all__ = ["AFFECTED", "DEFAULT_ACCURACY_EVIDENCE", "DOUBTING_STATUSES", "LEVEL_WORDS", "demand_level",
           "demanded_level", "review_findings", "review_unmeasurable"]

# Accuracy on the grader's test data is the figure a cheat gains most from forging.
DEFAULT_ACCURACY_EVIDENCE = Level.VERIFIED

LEVEL_WORDS = {
    Level.REPORTED: "read from the notebook's saved outputs",
    Level.EXECUTED: "recorded in the notebook's kernel during the grader's run",
    Level.VERIFIED: "measured by the grader outside the notebook's kernel",
}

_ACCURACY = frozenset({"test_accuracy", "val_accuracy", "train_accuracy", "overfitting", "compare"})
_TEST_ACCURACY = frozenset({"test_accuracy", "compare"})
# finding kind -> the check kinds whose passing verdict it puts in doubt (None: every automatic check)
AFFECTED: dict[str, frozenset[str] | None] = {
    "trained_on_test": _TEST_ACCURACY,
    "history": _ACCURACY | {"epochs"},
    "retrain": _TEST_ACCURACY,
    "mismatch": _TEST_ACCURACY,
    "model_file": _ACCURACY,
    "tampered": None,
    "hidden_training": _ACCURACY | {"epochs"},
}
# Verification statuses that put every accuracy figure of the model in doubt, at any level.
DOUBTING_STATUSES = frozenset({VerificationStatus.INPUTS})


def _tests_accuracy(item: "Check") -> bool:
    """True for checks whose verdict rests on the model's accuracy on the grader's test data."""
    return item.kind == "test_accuracy" or (item.kind == "compare" and "accuracy" in item.params)


def demanded_level(item: "Check", rubric_default: Level | None) -> Level | None:
    """The weakest evidence ``item`` accepts: its own ``min_level``, else the rubric's
    ``accuracy_evidence`` for checks of test accuracy, else anything."""
    if item.min_level is not None:
        return item.min_level
    if _tests_accuracy(item):
        return rubric_default if rubric_default is not None else DEFAULT_ACCURACY_EVIDENCE
    return None


def demand_level(outcome: Outcome, minimum: Level | None, *, explicit: bool) -> Outcome:
    """A passed outcome whose figure is weaker than ``minimum`` needs review; a failed one stays."""
    if minimum is None or outcome.level is None or outcome.level >= minimum:
        return outcome
    if outcome.status is not Status.PASSED:
        return outcome
    source = outcome.details.get("source")
    found = f"{outcome.level.label}, {source}" if source else outcome.level.label
    demand = "this check needs" if explicit else "a test accuracy earns points only from"
    message = (f"{sentence(outcome.message)} Needs review: {demand} {minimum.label} evidence "
               f"({LEVEL_WORDS[minimum]}); the strongest available is {found}.")
    notes = outcome.details.get("notes") or []
    if notes:
        message += " " + sentence("; ".join(notes)) + "."
    details = {**outcome.details, "verdict": outcome.status.value, "review_message": message,
               "needs_review": f"{minimum.label} evidence demanded, {outcome.level.label} found"}
    return Outcome(Status.NEEDS_REVIEW, message, outcome.figure, outcome.level, details)


def _concerns(finding: Finding, kind: str, models: set[str]) -> bool:
    if finding.kind not in AFFECTED or not finding.integrity:
        return False
    kinds = AFFECTED[finding.kind]
    if kinds is not None and kind not in kinds:
        return False
    return finding.model_id is None or finding.model_id in models


def _models(ctx: CheckContext, item: "Check") -> set[str]:
    """The models a check's verdict rests on: its task's, and the other task's of a comparison."""
    models: set[str] = set()
    if ctx.target is not None:
        models.add(ctx.target.model_id)
    other = ctx.targets.get(item.params.get("task", "")) if item.kind == "compare" else None
    if other is not None:
        models.add(other.model_id)
    return models


def review_unmeasurable(ctx: CheckContext, item: "Check", outcome: Outcome) -> Outcome:
    """A passed accuracy check (or one held back for weak evidence that would have passed) of a
    model whose verification status is in :data:`DOUBTING_STATUSES` needs review for that reason,
    whatever the level of its figure: a model that takes more inputs than the test images
    reaches the accuracy of what it is fed, so no figure of it is one to credit."""
    if item.kind not in _ACCURACY or (item.kind == "compare" and "accuracy" not in item.params):
        return outcome
    held = outcome.status is Status.NEEDS_REVIEW and outcome.details.get("verdict") == Status.PASSED.value
    if outcome.status is not Status.PASSED and not held:
        return outcome
    doubts = [v for v in (ctx.evidence.verification_of(m) for m in sorted(_models(ctx, item)))
              if v is not None and v.status in DOUBTING_STATUSES]
    if not doubts:
        return outcome
    words = "; ".join(sentence(v.message or v.status.title).rstrip(".") for v in doubts)
    base = outcome.message if held else sentence(outcome.message)
    message = base if words in base else f"{base} Needs review: {words}."
    details: dict[str, Any] = {**outcome.details, "verdict": Status.PASSED.value, "review_message": message,
                               "needs_review": ", ".join(sorted({str(v.status) for v in doubts}))}
    return Outcome(Status.NEEDS_REVIEW, message, outcome.figure, outcome.level, details)


def review_findings(ctx: CheckContext, item: "Check", outcome: Outcome) -> Outcome:
    """A passed outcome that an integrity finding puts in doubt needs review, naming the finding
    (and a model the grader could not feed, :func:`review_unmeasurable`)."""
    outcome = review_unmeasurable(ctx, item, outcome)
    if outcome.status is not Status.PASSED:
        return outcome
    models = _models(ctx, item)
    doubts = [f for f in ctx.evidence.findings if _concerns(f, item.kind, models)]
    if not doubts:
        return outcome
    words = "; ".join(sentence(f.message).rstrip(".") for f in doubts[:3])
    more = f" (and {len(doubts) - 3} more)" if len(doubts) > 3 else ""
    message = f"{sentence(outcome.message)} Needs review: {words}{more}."
    details: dict[str, Any] = {**outcome.details, "verdict": outcome.status.value, "review_message": message,
                               "needs_review": ", ".join(sorted({f.kind for f in doubts})),
                               "findings": [f.kind for f in doubts]}
    return Outcome(Status.NEEDS_REVIEW, message, outcome.figure, outcome.level, details)
