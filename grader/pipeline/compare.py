"""The notebook's own figures against the grader's clean measurement of the same model.

A kernel figure that the clean process contradicts is a finding: a different parameter count
means the recorded architecture is not trusted; a different accuracy says which of the two the
grade uses (``mismatch``: the saved model is the better one; ``printed``: the notebook claims
more than its model has).

With ``--hidden-test`` the grader measures on the instructor's hidden test set and the notebook
on the public one it loaded: the verified figure is named for its set, and a figure there lower
than the notebook's by more than sampling noise is what a hidden set often gives, not a claim of
the notebook's: it is shown (``printed``, severity ``info``, both figures named), never flagged.
"""

from __future__ import annotations

import math

from dataclasses import replace

from grader.checks.figures import HIDDEN_TEST_SET, PUBLIC_TEST_SET
from grader.model.evidence import Evidence, Finding, accuracy_of

__all__ = ["MISMATCH_TOLERANCE", "compare_with_measurement", "mismatch_tolerance"]

# Accuracy the kernel printed and accuracy the grader measured may differ this much before the
# report flags it (the grader's preprocessing is inferred; batch-norm statistics, float noise).
MISMATCH_TOLERANCE = 0.02


def compare_with_measurement(evidence: Evidence, run_, verification, *, different_data: bool = False) -> None:
    """Flag a kernel figure that the clean measurement contradicts. ``different_data``: the
    grader measures on other test images than the notebook has (``--hidden-test``)."""
    if verification.status != "ok":
        evidence.findings.append(Finding("verification", f"model {run_.model_id} (fit #{run_.index + 1}, cell "
                                         f"{run_.cell.number}) was not verified: {verification.message}", run_.cell, "warning"))
        return
    if verification.total_params is not None and run_.architecture.total_params and verification.total_params != run_.architecture.total_params:
        evidence.findings.append(Finding(
            "mismatch", f"the saved model has {verification.total_params:,} parameters, but the notebook's run recorded "
            f"{run_.architecture.total_params:,}: the recorded architecture is not trusted", run_.cell, "error",
            model_id=run_.model_id))
    if different_data and verification.test_accuracy is not None and HIDDEN_TEST_SET not in verification.test_accuracy.source:
        verification.test_accuracy = replace(verification.test_accuracy,
                                             source=f"{verification.test_accuracy.source}, on {HIDDEN_TEST_SET}")
    measured = verification.test_accuracy.value if verification.test_accuracy else None
    for ev in evidence.evaluations_of(run_.model_id):
        # An evaluation before the model's last fit measured an earlier state of it.
        if ev.index < 0 or evidence.fast_mode or ev.cell.index < run_.cell.index:
            continue
        claimed = accuracy_of(ev.results)
        if claimed is None or measured is None:
            continue
        if abs(claimed - measured) <= mismatch_tolerance(measured, ev.samples, verification.samples, different_data):
            continue
        if different_data and measured < claimed:
            # A hidden set measuring lower is what hidden sets do; the grader's figure counts either way.
            evidence.findings.append(Finding(
                "printed", f"the notebook's own evaluation on {PUBLIC_TEST_SET} gave {claimed:.1%} (cell {ev.cell.number}"
                f"{f', {ev.samples:,} images' if ev.samples else ''}); the grader measured the saved model on "
                f"{HIDDEN_TEST_SET}: {measured:.1%} ({verification.samples or 0:,} images), the figure used",
                ev.cell, "info", model_id=run_.model_id))
            continue
        said = (f"the accuracy the notebook measured ({claimed:.1%}, cell {ev.cell.number}) and the saved model's "
                f"({measured:.1%} measured by the grader on {verification.samples or 0:,} test samples)")
        if measured > claimed:
            # The saved model is better than the one the notebook evaluated: its file may not be that model.
            evidence.findings.append(Finding("mismatch", f"{said} differ: the saved model is the better one",
                                             ev.cell, "warning", model_id=run_.model_id))
        else:
            # The notebook says more than its model has: the grader's figure is the one that counts.
            evidence.findings.append(Finding("printed", f"{said} differ: the notebook's figure is higher, and the "
                                             "grader's own measurement is the one used", ev.cell, "warning",
                                             model_id=run_.model_id))


def mismatch_tolerance(accuracy: float, samples: int | None, measured_on: int | None, different_data: bool) -> float:
    """How far the notebook's own evaluation may honestly be from the grader's: almost nothing
    on the same test images; sampling noise (four standard errors) when the grader measures on
    other images (``--hidden-test``) or on another number of them."""
    if not different_data and (not samples or not measured_on or samples == measured_on):
        return MISMATCH_TOLERANCE
    if not samples or not measured_on:
        return max(MISMATCH_TOLERANCE, 0.10)  # sizes unknown: as loose as the history check
    p = min(max(accuracy, 0.05), 0.95)
    return max(MISMATCH_TOLERANCE, 4.0 * math.sqrt(p * (1 - p) * (1.0 / samples + 1.0 / measured_on)))

