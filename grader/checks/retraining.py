"""Which models the rubric's checks want retrained by the grader.

A ``test_accuracy`` check with ``retrain: true`` asks for the figure of the grader's own training
of the model its task selects (:mod:`grader.clean.retrain` does the training; it is told which
models and does not read the rubric). ``--retrain`` asks for every trained model.

Example::

    models_to_retrain(rubric, evidence)                   # {"m1"}: the model task 3 selects
    models_to_retrain(rubric, evidence, everything=True)  # every model with saved weights
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grader.checks.selectors import select_model
from grader.model.evidence import Evidence

if TYPE_CHECKING:
    from grader.rubric.model import Rubric

__all__ = ["models_to_retrain"]


def models_to_retrain(rubric: Rubric, evidence: Evidence, *, everything: bool = False) -> set[str]:
    """Model ids to retrain: every trained model with ``everything`` (``--retrain``), else the
    models selected by tasks whose ``test_accuracy`` check says ``retrain: true``."""
    trained = {run.model_id for run in evidence.runs if run.weights_file}
    if everything:
        return trained
    wanted: set[str] = set()
    for task in rubric.tasks:
        if task.selector is None or not any(c.params.get("retrain") for c in task.checks):
            continue
        try:
            target = select_model(task.selector, evidence).target
        except Exception:  # a selector that fails is reported by the check stage
            continue
        if target is not None and target.model_id in trained:
            wanted.add(target.model_id)
    return wanted
