"""The view objects the student page shows per model, task and cell error, and how one recorded
model becomes a :class:`ModelView` (layer table, learning curves, confusion matrix, fit lines).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from grader.model.evidence import (
    Architecture,
    CellError,
    CompileInfo,
    Evidence,
    FitArgs,
    TrainingRun,
    Verification,
    history_values,
)
from grader.model.results import CheckResult, Status, TaskResult
from grader.notebook.cell_numbers import CellNumbers
from grader.report.layers import LayerRow, align_layers
from grader.report.text import LIMITS, STATUS_WORDS, Trimmed, clean_text, fmt_duration


@dataclass
class ConfusionView:
    class_names: list[str]
    rows: list[list[tuple[int, str]]]  # (count, inline style) per cell
    recalls: list[float]
    samples: int
    accuracy: float
    note: str = ""


def confusion_view(verification: Verification) -> ConfusionView | None:
    """The confusion matrix as a shaded table, or ``None`` when the verification has none.

    A table rather than an image: every count can be read (and read out by a screen reader),
    and shading by the share of the true class keeps the diagonal visible.
    """
    matrix = verification.confusion
    if not matrix:
        return None
    size = len(matrix)
    if size > LIMITS["confusion_classes"]:
        return ConfusionView([], [], [], 0, 0.0,
                             note=f"{size} classes: too many to show as a table")
    if any(len(row) != size for row in matrix) or any(
        not isinstance(v, int) or isinstance(v, bool) or v < 0 for row in matrix for v in row
    ):
        return ConfusionView([], [], [], 0, 0.0, note="the confusion matrix is malformed")
    names = list(verification.class_names or [])
    if len(names) != size:
        names = [str(i) for i in range(size)]
    rows: list[list[tuple[int, str]]] = []
    recalls: list[float] = []
    for t, row in enumerate(matrix):
        total = sum(row)
        recalls.append(row[t] / total if total else 0.0)
        cells = []
        for p, count in enumerate(row):
            share = count / total if total else 0.0
            # Blue on the diagonal (right), orange elsewhere (confused); ink turns white on
            # dark cells so contrast stays readable.
            rgb = "0, 114, 178" if p == t else "213, 94, 0"
            alpha = 0.0 if count == 0 else 0.08 + 0.8 * share
            ink = "#ffffff" if alpha > 0.55 else "#24292f"
            cells.append((count, f"background: rgba({rgb}, {alpha:.2f}); color: {ink}"))
        rows.append(cells)
    samples = sum(sum(row) for row in matrix)
    correct = sum(matrix[i][i] for i in range(size))
    return ConfusionView(names, rows, recalls, samples, correct / samples if samples else 0.0)


@dataclass
class ModelView:
    """One model of the notebook with everything the report shows about it."""

    anchor: str
    model_id: str
    label: str
    architecture: Architecture
    runs: list[TrainingRun]
    where: str = ""  # "trained in cell 14"
    reference: Architecture | None = None
    rows: list[LayerRow] = field(default_factory=list)
    layers_note: str = ""
    curves: list[tuple[str, str]] = field(default_factory=list)  # (data URI, alt text) per metric
    curves_level: str = ""
    verification: Verification | None = None
    confusion: ConfusionView | None = None
    training: list[str] = field(default_factory=list)  # one line per fit call
    compile_line: str = ""
    open_layers: bool = False  # shown unfolded: a check of the layers did not pass
    open_curves: bool = False  # shown unfolded: a check of training or accuracy did not pass
    tasks: list[str] = field(default_factory=list)

    @property
    def differences(self) -> dict[str, int]:
        counts = {"missing": 0, "extra": 0, "params": 0}
        for row in self.rows:
            if row.status in counts:
                counts[row.status] += 1
        return counts


@dataclass
class TaskView:
    task: TaskResult
    anchor: str
    status: Status
    answer: Trimmed | None = None
    model: ModelView | None = None
    model_link: ModelView | None = None  # the model was shown under an earlier task
    errors: list[CellErrorView] = field(default_factory=list)  # cell errors in this task's part

    @property
    def status_word(self) -> str:
        if self.status is Status.MANUAL:
            return "marked" if self.task.human_score is not None else "awaits marking"
        return STATUS_WORDS[self.status]


@dataclass
class CellErrorView:
    error: CellError
    evalue: Trimmed
    source: Trimmed
    traceback: Trimmed
    anchor: str = ""
    number: int = 0  # as Jupyter shows the cell to the student (see CellNumbers)
    tasks: list["TaskView"] = field(default_factory=list)  # the tasks this error broke
    heading: str = ""  # the heading the cell sits under (from the notebook when the error lacks it)

    @property
    def where(self) -> str:
        """``cell 12 (under “Question 5”)``: the cell and the heading it sits under."""
        text = f"cell {self.number}"
        if self.heading:
            text += f" (under “{clean_text(self.heading)[:80]}”)"
        return text

    @property
    def sentence(self) -> str:
        """``cell 12 (under “Question 5”) raised NameError: name 'x' is not defined``."""
        ename = clean_text(self.error.ename)[:100] or "an error"
        evalue = " ".join(clean_text(self.error.evalue).split())
        if len(evalue) > 160:
            evalue = evalue[:160].rsplit(" ", 1)[0] + " …"
        return f"{self.where} raised {ename}" + (f": {evalue}" if evalue else "")


def _architecture_of(evidence: Evidence, model_id: str) -> tuple[Architecture | None, list[TrainingRun]]:
    runs = evidence.runs_of(model_id)
    if runs:
        return runs[-1].architecture, runs
    for snapshot in evidence.models:
        if snapshot.model_id == model_id:
            return snapshot.architecture, []
    return None, []


def _model_label(evidence: Evidence, model_id: str, runs: list[TrainingRun]) -> str:
    variable = next((run.variable for run in reversed(runs) if run.variable), None)
    if variable is None:
        variable = next((m.variable for m in evidence.models if m.model_id == model_id and m.variable), None)
    built_by = next((m.built_by for m in evidence.models if m.model_id == model_id and m.built_by), None)
    if built_by:
        return f"{built_by}()"
    if variable:
        return variable
    return "model"


def _compile_line(compile_info: CompileInfo | None) -> str:
    if compile_info is None:
        return ""
    parts = []
    if compile_info.optimizer:
        lr = compile_info.learning_rate
        parts.append(compile_info.optimizer + (f" (learning rate {lr:g})" if lr is not None else ""))
    if compile_info.loss:
        parts.append(f"loss {compile_info.loss}")
    if compile_info.metrics:
        parts.append("metrics " + ", ".join(compile_info.metrics))
    return " · ".join(parts)


def _training_line(run: TrainingRun, numbers: CellNumbers | None = None) -> str:
    fit: FitArgs = run.fit
    where = f"cell {numbers.number(run.cell) if numbers else run.cell.number}"
    if run.cell.heading:
        where += f" (“{clean_text(run.cell.heading)[:80]}”)"
    epochs = run.epochs_trained
    parts = [f"fit #{run.index + 1} in {where}: {epochs} epoch{'s' if epochs != 1 else ''}"]
    if fit.epochs is not None and fit.epochs != epochs:
        parts[0] += f" of {fit.epochs} asked"
    if fit.batch_size:
        parts.append(f"batch {fit.batch_size}")
    if fit.train_samples:
        parts.append(f"{fit.train_samples:,} training samples")
    if fit.validation_samples:
        parts.append(f"{fit.validation_samples:,} validation samples")
    elif fit.validation_split:
        parts.append(f"validation split {fit.validation_split:g}")
    if run.duration_s is not None:
        parts.append(fmt_duration(run.duration_s))
    if fit.capped:
        capped = ", ".join(
            f"{key} {vals[0]}→{vals[1]}" if isinstance(vals, (list, tuple)) and len(vals) == 2
            else str(vals.get("message") or key)[:200] if isinstance(vals, dict) else key
            for key, vals in fit.capped.items()
        )
        parts.append(f"capped by fast mode: {capped}")
    if run.error:
        parts.append(f"fit raised {clean_text(run.error)[:200]}")
    return " · ".join(parts)


def _thresholds(checks: Iterable[CheckResult]):
    """Target lines for the learning curves, from checks whose details carry a threshold."""
    from grader.report.plots import Threshold

    lines = []
    for check in checks:
        value = check.details.get("threshold") if isinstance(check.details, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        metric = str(check.details.get("metric") or check.check).lower()
        if any(word in metric for word in ("gap", "overfit", "param", "epoch")):
            continue  # not a level on the accuracy or loss axis
        if "loss" in metric:
            panel = "loss"
        elif "acc" in metric:
            panel = "accuracy"
            if value > 1:
                value = value / 100  # a percentage
        else:
            continue
        label = clean_text(check.title)[:60] or f"{metric} {value:g}"
        if all(abs(t.value - value) > 1e-9 or t.metric != panel for t in lines):
            lines.append(Threshold(float(value), panel, label))
    return lines


def _combined_history(runs: list[TrainingRun]) -> tuple[dict[str, list[float]], list[int]]:
    """Several fit calls on one model, one after another, as one history."""
    combined: dict[str, list[float]] = {}
    starts: list[int] = []
    epochs_so_far = 0
    for run in runs:
        if not run.history:
            continue
        if epochs_so_far:
            starts.append(epochs_so_far)
        for key in ("accuracy", "val_accuracy", "loss", "val_loss"):
            values = history_values(run.history, key)
            if values:
                combined.setdefault(key, [math.nan] * epochs_so_far)
                combined[key].extend(values)
        epochs_so_far += run.epochs_trained
        for values in combined.values():
            values.extend([math.nan] * (epochs_so_far - len(values)))
    return combined, starts


def _curves_alt(history: dict[str, list[float]], metric: str, label: str) -> str:
    def describe(key: str, words: str) -> str:
        values = [v for v in history.get(key, []) if math.isfinite(v)]
        if not values:
            return ""
        return f"{words} goes from {values[0]:.2f} to {values[-1]:.2f}"

    epochs = max((len(v) for v in history.values()), default=0)
    parts = [p for p in (describe(metric, f"training {metric}"),
                         describe(f"val_{metric}", f"validation {metric}")) if p]
    return f"{metric.capitalize()} of {label} per epoch over {epochs} epochs: " + "; ".join(parts) + "."


def model_view(
    evidence: Evidence,
    model_id: str,
    *,
    anchor: str,
    reference: Architecture | None,
    checks: Iterable[CheckResult] = (),
    plots: bool = True,
    numbers: CellNumbers | None = None,
) -> ModelView | None:
    """Everything the report shows about one recorded model (``None`` if it was not recorded).

    What the model's checks are about is shown open; the rest is folded (``<details>``): the
    layer table opens when a check of the layers did not pass, the learning curves when a
    training or accuracy check did not, and the confusion matrix, which no check reads, stays
    folded. A page with one open matrix per model was ten thousand pixels long.
    """
    checks = list(checks)
    numbers = numbers or CellNumbers(evidence)
    architecture, runs = _architecture_of(evidence, model_id)
    if architecture is None:
        return None
    label = _model_label(evidence, model_id, runs)
    view = ModelView(anchor=anchor, model_id=model_id, label=label, architecture=architecture,
                     runs=runs, reference=reference)
    if runs:
        cells = sorted({numbers.number(run.cell) for run in runs})
        view.where = "trained in cell" + ("s " if len(cells) > 1 else " ") + ", ".join(map(str, cells))
    layers = list(architecture.layers)
    ref_layers = list(reference.layers) if reference is not None else []
    if len(layers) > LIMITS["layers"] or len(ref_layers) > LIMITS["layers"]:
        view.layers_note = f"showing the first {LIMITS['layers']} layers"
        layers, ref_layers = layers[: LIMITS["layers"]], ref_layers[: LIMITS["layers"]]
    view.rows = align_layers(layers, ref_layers) if reference is not None else [
        LayerRow(layer, None, compared=False) for layer in layers
    ]
    if not architecture.layer_params_known:
        for row in view.rows:
            row.counts = False
    snapshot_compile = next((m.compile for m in evidence.models if m.model_id == model_id), None)
    view.compile_line = _compile_line(runs[-1].compile if runs else snapshot_compile)
    view.training = [_training_line(run, numbers) for run in runs[: LIMITS["fit_lines"]]]
    not_passed = [c for c in checks if c.status is not Status.PASSED and c.status is not Status.MANUAL]
    view.open_layers = any(_is_structure(c.check) for c in not_passed)
    view.open_curves = any(_is_training(c.check) for c in not_passed)
    if len(runs) > LIMITS["fit_lines"]:
        view.training.append(f"… and {len(runs) - LIMITS['fit_lines']} more fit calls")
    history, starts = _combined_history(runs)
    if history and plots:
        # Graded from saved outputs, a class takes seconds: matplotlib would take ten times
        # longer than the grading, so the same curves are written as SVG text (quick_plots).
        if evidence.mode == "static":
            from grader.report.quick_plots import quick_learning_curve as learning_curve
        else:
            from grader.report.plots import learning_curve

        thresholds = _thresholds(checks)
        for metric in ("accuracy", "loss"):
            uri = learning_curve(history, metric, thresholds=thresholds, run_starts=starts)
            if uri is not None:
                view.curves.append((uri, _curves_alt(history, metric, label)))
        levels = sorted({run.level for run in runs if run.history})
        view.curves_level = levels[0].label if levels else ""
    view.verification = evidence.verification_of(model_id)
    if view.verification is not None:
        view.confusion = confusion_view(view.verification)
    return view


_STRUCTURE_WORDS = ("layer", "param", "contains", "lacks", "dropout", "output", "shape")
_TRAINING_WORDS = ("acc", "overfit", "gap", "epoch", "loss", "history", "learning_rate", "batch")


def _is_structure(kind: str) -> bool:
    return any(word in kind.lower() for word in _STRUCTURE_WORDS)


def _is_training(kind: str) -> bool:
    return any(word in kind.lower() for word in _TRAINING_WORDS)
