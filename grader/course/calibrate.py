"""Calibration: is a rubric's accuracy threshold fair? Retrain its reference solutions and see.

``grade calibrate cifar10`` reads the rubric, finds each task that names a ``reference`` model and
sets a test-accuracy threshold, trains that reference on the rubric's dataset for the task's epoch
limit (``epochs: {at_most: 25}``) with several seeds (:func:`grader.course.reference.train_reference`),
and reports the mean ± standard deviation of its test accuracy and the margin to each threshold:
"75% in 25 epochs: reached by 3 of 3 seeds, mean 78.9%, +3.9 points". Tasks that set a threshold
without naming a reference are listed, so an author sees what was not calibrated.

Example::

    >>> report = calibrate("cifar10", seeds=[0, 1, 2], data_source="synthetic",
    ...                    epochs=1, train_size=1000, test_size=200)   # doctest: +SKIP
    >>> print(format_calibration(report))                              # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import reference_models
from grader.model.evidence import to_json
from grader.course.reference import (
    ProgressHook,
    TrainReport,
    plural,
    format_train_report,
    percent,
    reference_dataset,
    train_reference,
)

if TYPE_CHECKING:  # pragma: no cover
    from grader.rubric.model import Check, Rubric, Task

# Check kinds whose threshold calibration can answer, and which accuracy each one means.
ACCURACY_KINDS = {"test_accuracy": "test"}


@dataclass
class Threshold:
    """An accuracy a task demands of the student's model, within an epoch limit."""

    task_id: str
    task_title: str
    at_least: float
    epochs: int | None  # the task's epoch limit, if it sets one
    reference: str | None


@dataclass
class Margin:
    """How the reference fared against one threshold."""

    task_id: str
    task_title: str
    reference: str
    threshold: float
    epochs_limit: int | None
    epochs_trained: int
    mean: float
    std: float
    worst: float
    best: float
    seeds_reaching: int
    seeds: int

    @property
    def margin(self) -> float:
        """Mean test accuracy minus the threshold (a fraction; ×100 for points)."""
        return self.mean - self.threshold

    @property
    def verdict(self) -> str:
        """``reachable`` (every seed), ``borderline`` (the mean, not every seed), ``not reached``."""
        if self.seeds_reaching == self.seeds:
            return "reachable"
        return "borderline" if self.mean >= self.threshold else "not reached"


@dataclass
class CalibrationReport:
    rubric: str
    dataset: str | None
    data_source: str
    seeds: list[int]
    trainings: list[TrainReport] = field(default_factory=list)
    margins: list[Margin] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was not calibrated, and why
    epochs_override: int | None = None
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = to_json(self)
        data["trainings"] = [training.to_json() for training in self.trainings]
        for item, margin in zip(data["margins"], self.margins):
            item.update(margin=margin.margin, verdict=margin.verdict)
        return data


def thresholds(rubric: "Rubric") -> list[Threshold]:
    """Every test-accuracy threshold of the rubric, with its task's epoch limit and reference."""
    found = []
    for task in rubric.tasks:
        limit = _epoch_limit(task)
        for check in task.checks:
            if check.kind in ACCURACY_KINDS:
                low = _lower_bound(check)
                if low is not None:
                    found.append(Threshold(task.id, task.title, low, limit, task.reference))
    return found


def _lower_bound(check: "Check") -> float | None:
    from grader.checks.base import fraction

    params = check.params
    if "at_least" in params:
        return fraction(params["at_least"])
    if "between" in params:
        return fraction(params["between"][0])
    if "equals" in params:
        return fraction(params["equals"])
    return None


def _epoch_limit(task: "Task") -> int | None:
    for check in task.checks:
        if check.kind == "epochs":
            params = check.params
            for key in ("at_most", "equals"):
                if key in params:
                    return int(params[key])
            if "between" in params:
                return int(params["between"][1])
    return None


def calibrate(
    rubric: "Rubric | str | Path",
    *,
    seeds: Iterable[int] = (0, 1, 2),
    epochs: int | None = None,
    data_source: str | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: ProgressHook | None = None,
) -> CalibrationReport:
    """Retrain the rubric's reference solutions and measure their margin to each threshold.

    Each reference trains for its task's epoch limit (else its own epochs) on the rubric's dataset
    from ``data_source`` (default: the rubric's ``data_source``). ``epochs`` overrides every
    epoch count — for a quick run; the report then says that its margins are not the answer at
    full length. A missing dataset raises :class:`~grader.errors.DatasetError` saying which file
    to put where.
    """
    from grader.rubric.load import load_rubric
    from grader.rubric.model import Rubric

    if not isinstance(rubric, Rubric):
        rubric = load_rubric(rubric)
    seeds = list(seeds)
    source = data_source or rubric.data_source or "auto"
    started = time.perf_counter()
    report = CalibrationReport(rubric=rubric.name, dataset=rubric.dataset, data_source=source, seeds=seeds,
                               epochs_override=epochs)

    wanted = thresholds(rubric)
    for threshold in wanted:
        if threshold.reference is None:
            report.notes.append(f"task '{threshold.task_id}' asks for {percent(threshold.at_least)} test accuracy "
                                f"but names no reference model (add `reference:` to calibrate it)")
    # One training per (reference, epochs): tasks that share them share the result.
    plan: dict[tuple[str, int], list[Threshold]] = {}
    for threshold in wanted:
        if threshold.reference is None:
            continue
        ref = reference_models.get(threshold.reference)
        if rubric.dataset and ref.dataset != rubric.dataset:
            report.notes.append(f"task '{threshold.task_id}': reference {ref.name} trains on {ref.dataset}, "
                                f"not on the rubric's {rubric.dataset}; not calibrated")
            continue
        run_epochs = epochs or threshold.epochs or ref.training.epochs
        plan.setdefault((ref.name, run_epochs), []).append(threshold)
    if not plan and not report.notes:
        report.notes.append("the rubric has no test-accuracy threshold to calibrate")

    data_cache: dict[tuple[str, int | None], Any] = {}
    for (name, run_epochs), items in plan.items():
        ref = reference_models.get(name)
        size = train_size or ref.training.train_size
        if (ref.dataset, size) not in data_cache:
            data_cache[(ref.dataset, size)] = reference_dataset(ref, data_source=source, train_size=size,
                                                                test_size=test_size)
        training = train_reference(name, seeds=seeds, epochs=run_epochs, data=data_cache[(ref.dataset, size)],
                                   cache_dir=cache_dir, use_cache=use_cache, progress=progress)
        report.trainings.append(training)
        accuracies = training.accuracies
        for threshold in items:
            report.margins.append(Margin(
                task_id=threshold.task_id, task_title=threshold.task_title, reference=name,
                threshold=threshold.at_least, epochs_limit=threshold.epochs, epochs_trained=run_epochs,
                mean=training.mean, std=training.std, worst=min(accuracies), best=max(accuracies),
                seeds_reaching=sum(a >= threshold.at_least for a in accuracies), seeds=len(accuracies),
            ))
    if epochs and plan:
        report.notes.append(f"every reference trained for {plural(epochs, 'epoch')} instead of the rubric's limits: "
                            f"a quick run, not the answer at full length")
    if source == "synthetic" and plan:
        report.notes.append("synthetic stand-in data: the accuracies say nothing about the real dataset")
    report.duration_s = time.perf_counter() - started
    return report


def format_calibration(report: CalibrationReport) -> str:
    """The margins as a table, then each training's per-seed table and the notes."""
    lines = [f"Calibration of rubric '{report.rubric}' on {report.dataset or 'its dataset'} "
             f"({report.data_source}), seeds {', '.join(map(str, report.seeds))}"]
    if report.margins:
        header = ("task", "reference", "threshold", "epochs", "test acc (mean ± std)", "worst", "margin", "seeds ≥", "verdict")
        rows = [header]
        for m in report.margins:
            limit = f"{m.epochs_trained}" + (f" (≤{m.epochs_limit})" if m.epochs_limit and m.epochs_limit != m.epochs_trained else "")
            rows.append((m.task_id, m.reference, percent(m.threshold), limit, f"{percent(m.mean)} ± {100 * m.std:.1f}",
                         percent(m.worst), f"{100 * m.margin:+.1f} pts", f"{m.seeds_reaching}/{m.seeds}", m.verdict))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    for training in report.trainings:
        lines += ["", format_train_report(training)]
    if report.notes:
        lines += ["", *[f"note: {note}" for note in report.notes]]
    lines.append(f"done in {report.duration_s:.1f} s")
    return "\n".join(lines)

