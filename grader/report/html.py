"""HTML reports: one page per student, one class overview.

Each page is one self-contained file: the CSS is inlined, the figures are ``data:`` URIs, there is
no script, and a Content-Security-Policy meta tag forbids the page to load anything else. A
student's notebook is untrusted text: Jinja2 autoescaping is on for every template, so a
``<script>`` in a traceback or an answer shows as text. Long texts are trimmed, with a note.

The templates are in the top-level ``templates/`` folder (:func:`grader.resources.templates_dir`);
this module turns a :class:`~grader.model.results.GradeResult` into the small view objects they read.

Example::

    >>> from grader.model.results import GradeResult, Student
    >>> page = render_student_report(GradeResult(student=Student(key="alice"), path="alice.ipynb"))
    >>> "Content-Security-Policy" in page
    True
"""

from __future__ import annotations

import datetime
import functools
import logging
import math
import os
import re
import statistics
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import quote

import jinja2
from markupsafe import Markup, escape

from grader import __version__
from grader.notebook.cell_numbers import CellNumbers
from grader.model.evidence import (
    Architecture,
    CellError,
    CellRef,
    CompileInfo,
    Evidence,
    FitArgs,
    LayerInfo,
    Level,
    TrainingRun,
    Verification,
    history_values,
)
from grader.checks.base import fmt_number, fmt_pct
from grader.resources import templates_dir
from grader.model.results import CheckResult, GradeResult, Status, TaskResult

log = logging.getLogger(__name__)

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

# How much of a long text a page shows. Tracebacks keep their end (where the error is), sources
# and answers their beginning.
LIMITS = {
    "answer_chars": 3000,
    "source_lines": 30,
    "source_chars": 6000,
    "traceback_lines": 40,
    "traceback_chars": 8000,
    "message_chars": 2000,
    "detail_chars": 4000,
    "cell_errors": 20,
    "layers": 150,
    "confusion_classes": 30,
    "findings": 50,
    "fit_lines": 12,
    "other_models": 30,
}

STATUS_WORDS = {status: status.title for status in Status}  # grader.model.results.STATUS_TITLES

LEVEL_HELP = {
    "reported": "read from the outputs saved in the submitted notebook; the file could have been edited",
    "executed": "recorded while the grader ran the notebook, inside the student's own kernel",
    "verified": "measured by the grader in a separate clean process, on its own copy of the test data",
}

PROBLEM_TITLES = {
    "invalid_notebook": "The notebook could not be read",
    "kernel_died": "The kernel died during the run",
    "timeout": "The run timed out",
    "limit": "A resource limit was reached",
    "environment": "The assignment's environment is broken (not the student's fault)",
    "incomplete": "The notebook looks unfinished",
    "internal": "The grader itself failed (not the student's fault)",
}

FINDING_TITLES = {
    "compat": "Older Keras API",
    "dataset": "Dataset",
    "load_weights": "Weights loaded from a file",
    "trained_on_test": "Trained on test data",
    "model_file": "Saved model missing",
    "recorder": "Recorder broken by the notebook",
    "save_failed": "Model not saved",
    "mismatch": "Figures do not match",
    "printed": "Printed figure above the measured one",
    "tampered": "Recorder tampered with",
    "history": "Implausible training history",
    "several_fits": "Several fit calls",
    "verification": "Verification",
    "retrain": "Retraining",
    "bundle": "Recorded data",
    "function": "Model-building function",
    "setup": "Set-up",
    "limit": "Limit reached",
    "note": "Note",
    "identical": "Identical submission",
    "unfinished": "Unfinished",
    "saved_outputs": "Graded from saved outputs",
    "static": "Saved outputs",
    "internal": "Grader",
}

SEVERITY = {"info": ("ℹ", "note"), "warning": ("⚠", "warning"), "error": ("✘", "error")}

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# ---------------------------------------------------------------------------------------------
# Small text helpers, also used as template filters.


@dataclass
class Trimmed:
    """A text cut to fit a page, and the note that says what was left out (empty if nothing)."""

    text: str
    note: str = ""


def clean_text(text: Any) -> str:
    """ANSI colour codes and control characters removed; anything else becomes its ``str``."""
    return _CONTROL.sub("", _ANSI.sub("", "" if text is None else str(text)))


def trim_head(text: Any, *, max_lines: int | None = None, max_chars: int) -> Trimmed:
    """The beginning of ``text``: for cell sources, answers and messages."""
    text = clean_text(text)
    lines = text.splitlines()
    notes = []
    if max_lines is not None and len(lines) > max_lines:
        text = "\n".join(lines[:max_lines])
        notes.append(f"showing the first {max_lines} of {len(lines)} lines")
    if len(text) > max_chars:
        notes.append(f"showing the first {max_chars:,} of {len(text):,} characters")
        cut = text[:max_chars]
        space = cut.rfind(" ", max_chars - 40)
        text = (cut[:space] if space > 0 else cut) + " …"
    return Trimmed(text, "; ".join(notes))


def trim_tail(text: Any, *, max_lines: int, max_chars: int) -> Trimmed:
    """The end of ``text``: for tracebacks, whose last lines name the error."""
    text = clean_text(text)
    lines = text.splitlines()
    notes = []
    if len(lines) > max_lines:
        text = "\n".join(lines[-max_lines:])
        notes.append(f"showing the last {max_lines} of {len(lines)} lines")
    if len(text) > max_chars:
        notes.append(f"showing the last {max_chars:,} of {len(text):,} characters")
        text = "… " + text[-max_chars:]
    return Trimmed(text, "; ".join(notes))


def fmt_points(value: float | None) -> str:
    """Points as people write them: ``7.5``, ``8``, ``0.33``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def fmt_signed(value: int) -> str:
    """``+2,494,480`` or ``−1,536`` (a real minus sign)."""
    return f"{value:+,}".replace("-", "−")


def fmt_when(text: str | None) -> str:
    """An ISO timestamp as ``2026-03-15 09:12 +01:00``; anything else as it is."""
    if not text:
        return ""
    try:
        moment = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return clean_text(text)[:60]
    shown = moment.strftime("%Y-%m-%d %H:%M")
    offset = moment.strftime("%z")
    return f"{shown} {offset[:3]}:{offset[3:]}" if offset else shown


_BACKTICKS = re.compile(r"`([^`\n]{1,200})`")


def inline_code(text: str) -> Markup:
    """Escape ``text``, then show `backticked` words as code (messages name APIs that way)."""
    return Markup(_BACKTICKS.sub(r"<code>\1</code>", str(escape(text))))


def fmt_duration(seconds: float | None) -> str:
    """``45 s``, ``3 min 12 s``, ``1 h 02 min``."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def is_accuracy(kind: Any) -> bool:
    """Whether a check kind or metric name is an accuracy (shown as a percentage everywhere)."""
    words = str(kind or "").lower()
    return "acc" in words or words == "overfitting"  # the overfitting gap is in accuracy points


def fmt_figure(value: Any, kind: Any = None) -> str:
    """A figure as the check messages write it (:func:`grader.checks.base.fmt_number`, and
    :func:`~grader.checks.base.fmt_pct` for accuracies): ``81,834``, ``0.01``, ``58.1%``.

    One formatter for the messages and the report, so "test accuracy 58.1%" in a message is
    "58.1%" in the figure column too, never ``0.581``.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if kind is not None and is_accuracy(kind) and -1.0 <= value <= 1.0:
            return fmt_pct(float(value))
        if isinstance(value, float) and not value.is_integer():
            value = float(f"{value:.4g}")  # four significant digits, as a reader needs them
        return fmt_number(value)
    return clean_text(value)


def fmt_percent(value: float | None) -> str:
    """A fraction as a percentage, the way every accuracy is shown: ``0.581`` → ``58.1%``."""
    if value is None or not math.isfinite(value):
        return "–"
    return fmt_pct(value)


def fmt_shape(shape: Sequence[int | None] | None) -> str:
    if shape is None:
        return "–"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


def _share(part: float, whole: float) -> str:
    """A CSS percentage between 0 and 100, for bars and meters."""
    value = _percent(part, whole)
    return f"{min(100.0, max(0.0, value)) if math.isfinite(value) else 0.0:.1f}"


def _size(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "×".join(str(v) for v in value)
    return str(value)


def layer_config(layer: LayerInfo) -> str:
    """The few settings that tell one layer of a class from another: ``32 filters 5×5, relu``."""
    config = layer.config if isinstance(layer.config, dict) else {}
    parts = []
    if "filters" in config:
        text = f"{config['filters']} filters"
        if "kernel_size" in config:
            text += f" {_size(config['kernel_size'])}"
        parts.append(text)
    elif "kernel_size" in config:
        parts.append(f"kernel {_size(config['kernel_size'])}")
    if "units" in config:
        parts.append(f"{config['units']} units")
    if "pool_size" in config:
        parts.append(f"pool {_size(config['pool_size'])}")
    strides = config.get("strides")
    if strides not in (None, 1, [1, 1], (1, 1)) and "pool_size" not in config:
        parts.append(f"stride {_size(strides)}")
    if config.get("padding") == "same":
        parts.append("same padding")
    if "rate" in config:
        parts.append(f"rate {config['rate']}")
    if layer.activation and layer.activation not in ("linear", "None"):
        parts.append(str(layer.activation))
    return clean_text(", ".join(parts))[:80]


# ---------------------------------------------------------------------------------------------
# Views: what the templates read.


@dataclass
class LayerRow:
    """One line of the side-by-side layer table."""

    student: LayerInfo | None
    reference: LayerInfo | None
    compared: bool = True  # False when there is no reference model to compare with

    @property
    def status(self) -> str:
        if not self.compared:
            return "plain"
        if self.reference is None:
            return "extra"
        if self.student is None:
            return "missing"
        if self.student.params != self.reference.params:
            return "params"
        return "same"

    @property
    def note(self) -> str:
        if self.status == "extra":
            return "extra"
        if self.status == "missing":
            return "missing"
        if self.status == "params":
            return fmt_signed(self.student.params - self.reference.params)  # type: ignore[union-attr]
        return ""


def align_layers(student: Sequence[LayerInfo], reference: Sequence[LayerInfo]) -> list[LayerRow]:
    """Pair the student's layers with the reference's by their class names.

    A longest common subsequence of class names decides which layers correspond; the rest are
    extra (only the student's model has them) or missing (only the reference has them). Layer
    names are never compared: Keras numbers them per process.
    """
    a = [layer.class_name for layer in student]
    b = [layer.class_name for layer in reference]
    n, m = len(a), len(b)
    # lcs[i][j]: length of the LCS of a[i:] and b[j:]
    lcs = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            lcs[i][j] = lcs[i + 1][j + 1] + 1 if a[i] == b[j] else max(lcs[i + 1][j], lcs[i][j + 1])
    rows: list[LayerRow] = []
    i = j = 0
    while i < n and j < m:
        if a[i] == b[j]:
            rows.append(LayerRow(student[i], reference[j]))
            i, j = i + 1, j + 1
        elif lcs[i + 1][j] >= lcs[i][j + 1]:
            rows.append(LayerRow(student[i], None))
            i += 1
        else:
            rows.append(LayerRow(None, reference[j]))
            j += 1
    rows.extend(LayerRow(layer, None) for layer in student[i:])
    rows.extend(LayerRow(None, layer) for layer in reference[j:])
    return rows


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


@dataclass
class FixLine:
    """One check that did not pass, as the "What to fix" list shows it."""

    status: Status
    what: str  # the check's title
    why: str  # its message: what was found and what to do


@dataclass
class FixItem:
    """One entry of the report's "What to fix" list: a task and what in it did not pass, or a
    cell error that no task explains (then ``task`` is empty)."""

    status: Status  # the worst of its lines
    task: str  # the task's title
    anchor: str  # where the task (or the error) is on the page
    lines: list[FixLine] = field(default_factory=list)
    error: CellErrorView | None = None  # the cell error that broke the task, linked
    error_note: str = ""  # what the error cost: "so no model was found for this task"
    points: str = ""  # "0 / 4 points"


def task_status(task: TaskResult) -> Status:
    """One status for a task: failed if any check failed, passed if all passed, manual for an
    item a person marks, else not assessed (some checks could not be assessed)."""
    statuses = [check.status for check in task.checks]
    if task.manual and not statuses:
        return Status.MANUAL  # marked by a person, or waiting for one: not a pass or a fail
    if Status.FAILED in statuses:
        return Status.FAILED
    if Status.NEEDS_REVIEW in statuses:
        return Status.NEEDS_REVIEW
    if statuses and all(s is Status.PASSED for s in statuses):
        return Status.PASSED
    if Status.MANUAL in statuses and Status.NOT_ASSESSED not in statuses:
        return Status.MANUAL
    return Status.NOT_ASSESSED


# How a selector names its scope, in ModelSelector.describe() ("under a heading matching 'Q5'",
# "before 'Question 4'") and in the messages and sample results ("in the section “5. Dropout”").
_QUOTED = r"[“'‘\"](.{1,200}?)[”'’\"](?=[\s.,;:)]|$)"
_SCOPE_WORDS = {
    "section": re.compile(r"(?:under a heading matching|in the section|under the heading|under) " + _QUOTED),
    "after": re.compile(r"\bafter " + _QUOTED),
    "before": re.compile(r"\bbefore " + _QUOTED),
}
_NUMBER = re.compile(r"\d+")
# Where a not-found message stops naming the scope and starts listing what else the notebook has
# (grader.checks.selectors.trained_models_hint): headings quoted there are other tasks' places.
_HINT = re.compile(r"\.\s+(?=Found \d|Headings in this notebook|No model was trained in this notebook|Models built)")


def _pattern(text: str) -> re.Pattern[str]:
    try:  # a rubric's section pattern is a regex; a heading quoted in a message is plain text
        return re.compile(text, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(text), re.IGNORECASE)


def _first_markdown(evidence: Evidence, pattern: re.Pattern[str]) -> int | None:
    return next((c.index for c in evidence.cells if c.cell_type in ("markdown", "raw") and pattern.search(c.source)),
                None)


def task_scope(task: TaskResult, evidence: Evidence | None) -> tuple[list[tuple[int, int]], list[re.Pattern[str]]]:
    """Where in the notebook a task's model should be: cell index ranges ``(start, end)``, and
    heading patterns for when the grader recorded no cells (then a cell's own heading decides).

    Read from the selector in words and the first sentence of the not-found message, since the
    result keeps no other trace of the rubric's selector.
    """
    text = task.selector + " " + _HINT.split(task.selector_message, 1)[0]
    found = {key: [m.group(1) for m in regex.finditer(text)] for key, regex in _SCOPE_WORDS.items()}
    patterns = [_pattern(t) for t in found["section"]]
    ranges: list[tuple[int, int]] = []
    if evidence is None or not evidence.cells:
        return ranges, patterns
    from grader.checks.selectors import headings, section_ranges

    for text_ in found["section"]:
        try:
            ranges += section_ranges(evidence, text_) or []
        except re.error:
            ranges += section_ranges(evidence, re.escape(text_)) or []
    after = next((i for i in (_first_markdown(evidence, _pattern(t)) for t in found["after"]) if i is not None), None)
    before = next((i for i in (_first_markdown(evidence, _pattern(t)) for t in found["before"]) if i is not None), None)
    if after is not None or before is not None:
        end = before if before is not None else len(evidence.cells)
        if after is None:  # "the last model trained before Question 4": the part just above it
            after = max((h.cell for h in headings(evidence) if h.cell < end), default=-1)
        ranges.append((after, end))
    return ranges, patterns


def _in_scope(error: CellErrorView, ranges: list[tuple[int, int]], patterns: list[re.Pattern[str]]) -> bool:
    if ranges:
        return any(lo < error.error.cell.index < hi for lo, hi in ranges)
    return bool(error.heading) and any(p.search(error.heading) for p in patterns)


def heading_of(ref: CellRef, evidence: Evidence | None) -> str:
    """The heading a cell sits under: the one recorded with it, else the notebook's (the kernel
    records a cell error by its index only)."""
    if ref.heading:
        return ref.heading
    cells = evidence.cells if evidence is not None else []
    if 0 <= ref.index < len(cells) and cells[ref.index].index == ref.index:
        return cells[ref.index].heading or ""
    return next((c.heading or "" for c in cells if c.index == ref.index), "")


def _same_number(title: str, heading: str | None) -> bool:
    """"5. CNN with Dropout" and "Question 5": the numbers the course gives its parts."""
    a, b = _NUMBER.search(title or ""), _NUMBER.search(heading or "")
    return bool(a and b and a.group() == b.group())


def link_errors(result: GradeResult, tasks: list["TaskView"], errors: list[CellErrorView]) -> None:
    """Give each task the cell errors in its part of the notebook, and each error its tasks.

    A task's part is its selector's scope (:func:`task_scope`); a task whose selector names no
    scope takes the errors under a heading with the task's number ("Question 5" for "5. …"),
    but only when it has something to explain (a check not passed).
    """
    for view in tasks:
        ranges, patterns = task_scope(view.task, result.evidence)
        if ranges or patterns:
            mine = [e for e in errors if _in_scope(e, ranges, patterns)]
        elif view.status in (Status.FAILED, Status.NOT_ASSESSED):
            mine = [e for e in errors if _same_number(view.task.title or view.task.task_id, e.heading)]
        else:
            mine = []
        view.errors = mine
        for error in mine:
            error.tasks.append(view)


def what_to_fix(result: GradeResult, tasks: list["TaskView"], errors: list[CellErrorView],
                numbers: CellNumbers) -> list[FixItem]:
    """The report's first list, one entry per task that did not pass, Gradescope's order: tasks
    with a failed check first, then those with a check that needs review, then those with checks
    that could not be assessed (with the cell error that broke them); last, cell errors that no
    task explains.

    Manual items that wait for a human score are not listed: the student has nothing to fix.
    """
    ranked: list[tuple[int, int, FixItem]] = []
    for position, view in enumerate(tasks):
        task = view.task
        failed = [c for c in task.checks if c.status is Status.FAILED]
        review = [c for c in task.checks if c.status is Status.NEEDS_REVIEW]
        waiting = [c for c in task.checks if c.status is Status.NOT_ASSESSED and not _fast_mode_skip(result, c)]
        if not (failed or review or waiting):
            continue
        status = Status.FAILED if failed else (review[0].status if review else Status.NOT_ASSESSED)
        item = FixItem(status, clean_text(task.title or task.task_id), view.anchor,
                       points=f"{fmt_points(task.points)} / {fmt_points(task.max_points)} points")
        for check in failed + review:
            item.lines.append(FixLine(check.status, clean_text(check.title), numbers.renumber(clean_text(check.message))))
        if waiting:
            what = "; ".join(clean_text(c.title) for c in waiting)
            if view.errors:
                item.lines.append(FixLine(Status.NOT_ASSESSED, what, ""))
            else:
                why = _HINT.split(task.selector_message, 1)[0] if task.selector_message else waiting[0].message
                item.lines.append(FixLine(Status.NOT_ASSESSED, what, numbers.renumber(clean_text(why))))
        if view.errors:
            item.error = view.errors[0]
            if not task.model_id:
                item.error_note = "so no model was found for this task"
        rank = 0 if failed else (1 if review else 2)
        ranked.append((rank, position, item))
    items = [item for _, _, item in sorted(ranked, key=lambda x: (x[0], x[1]))]
    items += [FixItem(Status.FAILED, "", e.anchor, error=e) for e in errors if not e.tasks]
    return items


def _fast_mode_skip(result: GradeResult, check: CheckResult) -> bool:
    """A check fast mode left for the full run: nothing for the student to fix."""
    if isinstance(check.details, dict) and check.details.get("reason") == "fast_mode":
        return True
    return result.fast_mode and "fast mode" in (check.message or "").lower()


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


def _anchor(prefix: str, text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", unicodedata.normalize("NFKD", text).lower()).strip("-")
    return f"{prefix}-{slug[:40] or 'x'}"


@dataclass
class StudentPage:
    result: GradeResult
    title: str
    status: Status | None
    tasks: list[TaskView]
    models: list[ModelView]
    other_models: list[ModelView]
    cell_errors: list[CellErrorView]
    cell_errors_note: str
    problems: list[tuple[str, Any, Trimmed, Trimmed]]  # (title, problem, message, detail)
    findings: list[tuple[str, str, str, Any, Trimmed]]  # (icon, word, title, finding, message)
    findings_note: str
    manual_pending: float
    levels_used: list[str]
    file_name: str
    numbers: CellNumbers = field(default_factory=lambda: CellNumbers(None))
    fixes: list[FixItem] = field(default_factory=list)
    # The notebook could not be read (or the grader failed on it): the page says why and nothing
    # else; every task would be "not assessed", which tells the student nothing more.
    blocked: bool = False
    no_score: bool = False  # the grader's own failure: no grade to show, not a zero


def student_page(result: GradeResult, *, reference: dict[str, Architecture] | None = None,
                 plots: bool = True) -> StudentPage:
    """The view of one student's result that ``student_report.html.j2`` renders."""
    reference = reference or {}
    evidence = result.evidence
    numbers = CellNumbers(evidence)
    blocked = bool(result.problems_blocking)
    tasks: list[TaskView] = []
    models: dict[str, ModelView] = {}
    used_anchors: set[str] = set()
    for task in [] if blocked else result.tasks:
        anchor = _unique(_anchor("task", task.task_id), used_anchors)
        view = TaskView(task=task, anchor=anchor, status=task_status(task))
        if task.answer is not None:
            view.answer = trim_head(task.answer, max_chars=LIMITS["answer_chars"])
        if task.model_id and evidence is not None:
            if task.model_id in models:
                view.model_link = models[task.model_id]
                models[task.model_id].tasks.append(task.title or task.task_id)
            else:
                model_checks = [c for t in result.tasks if t.model_id == task.model_id for c in t.checks]
                model = model_view(
                    evidence, task.model_id, anchor=_unique(_anchor("model", task.task_id), used_anchors),
                    reference=reference.get(task.task_id), checks=model_checks, plots=plots, numbers=numbers)
                if model is not None:
                    model.tasks.append(task.title or task.task_id)
                    models[task.model_id] = model
                    view.model = model
        tasks.append(view)

    other_models: list[ModelView] = []
    if evidence is not None and not blocked:
        seen = set(models)
        ids = [run.model_id for run in evidence.runs] + [m.model_id for m in evidence.models]
        for model_id in dict.fromkeys(ids):
            if model_id in seen or len(other_models) >= LIMITS["other_models"]:
                continue
            model = model_view(evidence, model_id, anchor=_unique(_anchor("model", model_id), used_anchors),
                               reference=None, plots=False, numbers=numbers)
            if model is not None:
                other_models.append(model)

    cell_errors: list[CellErrorView] = []
    errors = evidence.cell_errors if evidence is not None and not blocked else []
    for position, error in enumerate(errors[: LIMITS["cell_errors"]], start=1):
        cell_errors.append(CellErrorView(
            error=error,
            evalue=trim_head(error.evalue, max_lines=8, max_chars=LIMITS["message_chars"]),
            source=trim_head(error.source, max_lines=LIMITS["source_lines"], max_chars=LIMITS["source_chars"]),
            traceback=trim_tail(error.traceback, max_lines=LIMITS["traceback_lines"],
                                max_chars=LIMITS["traceback_chars"]),
            anchor=_unique(f"cell-error-{position}", used_anchors),
            number=numbers.number(error.cell, error.traceback),
            heading=heading_of(error.cell, evidence),
        ))
    cell_errors_note = ""
    if len(errors) > LIMITS["cell_errors"]:
        cell_errors_note = f"showing the first {LIMITS['cell_errors']} of {len(errors)} cell errors"
    link_errors(result, tasks, cell_errors)

    problems = [
        (PROBLEM_TITLES.get(p.kind, p.kind.replace("_", " ")), p,
         trim_head(numbers.renumber(clean_text(p.message)), max_lines=20, max_chars=LIMITS["message_chars"]),
         trim_tail(p.detail, max_lines=LIMITS["traceback_lines"], max_chars=LIMITS["detail_chars"]))
        for p in (result.problems_blocking or result.problems)
    ]
    all_findings = evidence.findings if evidence is not None and not blocked else []
    findings = []
    for finding in all_findings[: LIMITS["findings"]]:
        icon, word = SEVERITY.get(finding.severity, SEVERITY["info"])
        findings.append((icon, word, FINDING_TITLES.get(finding.kind, finding.kind.replace("_", " ")),
                         finding, trim_head(numbers.renumber(clean_text(finding.message)), max_lines=20,
                                            max_chars=LIMITS["message_chars"])))
    findings_note = ""
    if len(all_findings) > LIMITS["findings"]:
        findings_note = f"showing the first {LIMITS['findings']} of {len(all_findings)} findings"

    manual_pending = 0.0 if blocked else sum(
        t.max_points for t in result.tasks if t.manual and t.human_score is None)
    levels = {c.level.label for c in result.checks if c.level is not None}
    levels |= {m.curves_level for m in models.values() if m.curves_level}
    if evidence is not None and evidence.verifications:
        levels.add("verified")
    name = result.student.name or result.student.key
    assignment = result.assignment or result.rubric or "Assignment"
    no_score = any(p.kind == "internal" for p in result.problems_blocking)
    shown = "no grade" if no_score else f"{fmt_points(result.score)}/{fmt_points(result.max_score)}"
    title = f"{assignment} – {name} – {shown}"
    status = None
    if result.passed is not None and not no_score:
        status = Status.PASSED if result.passed else Status.FAILED
    return StudentPage(
        result=result, title=title, status=status, tasks=tasks, models=list(models.values()),
        other_models=other_models, cell_errors=cell_errors, cell_errors_note=cell_errors_note,
        problems=problems, findings=findings, findings_note=findings_note,
        manual_pending=manual_pending,
        levels_used=[lv.label for lv in Level if lv.label in levels],
        file_name=os.path.basename(result.path.replace("\\", "/")) or result.path,
        numbers=numbers, fixes=what_to_fix(result, tasks, cell_errors, numbers),
        blocked=blocked, no_score=no_score,
    )


def _unique(anchor: str, used: set[str]) -> str:
    candidate, n = anchor, 2
    while candidate in used:
        candidate, n = f"{anchor}-{n}", n + 1
    used.add(candidate)
    return candidate


# ---------------------------------------------------------------------------------------------
# Class overview views.


@dataclass
class CheckRate:
    title: str
    kind: str
    passed: int
    failed: int
    not_assessed: int
    manual: int

    @property
    def assessed(self) -> int:
        return self.passed + self.failed

    @property
    def rate(self) -> float | None:
        return self.passed / self.assessed if self.assessed else None


@dataclass
class TaskRate:
    task_id: str
    title: str
    max_points: float
    mean_points: float
    students: int
    checks: list[CheckRate]
    awaiting: int = 0  # students whose answer to this (manual) task waits for a human score

    @property
    def mean_share(self) -> float:
        return self.mean_points / self.max_points if self.max_points else 0.0


def pass_rates(results: Sequence[GradeResult]) -> list[TaskRate]:
    """Per task and per check: how many students passed, in rubric order.

    Checks are matched across students by task and position (and kind), not by title, because a
    title may quote the student's own figure.
    """
    tasks: dict[str, TaskRate] = {}
    for result in results:
        for task in result.tasks:
            rate = tasks.get(task.task_id)
            if rate is None:
                rate = tasks[task.task_id] = TaskRate(task.task_id, task.title or task.task_id,
                                                      task.max_points, 0.0, 0, [])
            rate.students += 1
            rate.mean_points += task.points  # a sum until the end
            if task.manual and task.human_score is None:
                rate.awaiting += 1
            for position, check in enumerate(task.checks):
                if position >= len(rate.checks):
                    rate.checks.append(CheckRate(check.title, check.check, 0, 0, 0, 0))
                counts = rate.checks[position]
                if check.status is Status.PASSED:
                    counts.passed += 1
                elif check.status is Status.FAILED:
                    counts.failed += 1
                elif check.status is Status.MANUAL:
                    counts.manual += 1
                else:
                    counts.not_assessed += 1
    for rate in tasks.values():
        rate.mean_points = rate.mean_points / rate.students if rate.students else 0.0
    return list(tasks.values())


@dataclass
class StudentRow:
    result: GradeResult
    link: str | None
    status: Status | None
    problems: str
    identical: str = ""  # "bob (same code cells)": the marker of the overview's Identical column
    integrity: str = ""  # "trained on test, model file": the overview's Integrity column
    integrity_count: int = 0  # its findings, for sorting
    reviews: int = 0  # checks that need review and no person has decided


@dataclass
class ClassPage:
    title: str
    assignment: str
    rows: list[StudentRow]
    histogram: str | None
    histogram_alt: str
    rates: list[TaskRate]
    hardest: list[tuple[TaskRate, CheckRate]]
    failed: list[tuple[GradeResult, str, Any, Trimmed]]
    stats: dict[str, str]
    pass_mark: float | None
    max_score: float
    denominator: str = ""  # what the scores are out of, in words: "points out of 18 (16 automatic + 2 manual)"
    notices: list[tuple[str, str]] = field(default_factory=list)  # (title, text): how the grader ran


def class_page(results: Sequence[GradeResult], *, report_links: dict[str, str], plots: bool = True) -> ClassPage:
    """The view that ``class_overview.html.j2`` renders."""
    results = sorted(results, key=lambda r: ((r.student.name or r.student.key).casefold(), r.student.key))
    max_score = max((r.max_score for r in results), default=0.0)
    pass_mark = next((r.pass_mark for r in results if r.pass_mark is not None), None)
    assignment = next((r.assignment or r.rubric for r in results if r.assignment or r.rubric), "Assignment")
    graded = [r for r in results if not r.problems_blocking]
    scores = [r.score for r in graded]
    rows = []
    for r in results:
        status = None if r.passed is None else (Status.PASSED if r.passed else Status.FAILED)
        problems = ", ".join(PROBLEM_TITLES.get(p.kind, p.kind).split(" (")[0] for p in r.problems)
        findings = r.integrity_findings
        kinds = list(dict.fromkeys(FINDING_TITLES.get(f.kind, f.kind.replace("_", " ")) for f in findings))
        rows.append(StudentRow(r, report_links.get(r.student.key), status, problems, "; ".join(r.identical_to),
                               ", ".join(kinds), len(findings), len(r.needs_review)))
    histogram = None
    if plots and scores:
        from grader.report.plots import score_histogram

        histogram = score_histogram(scores, max_score=max_score, pass_mark=pass_mark)
    rates = pass_rates(results)
    hardest = sorted(
        ((t, c) for t in rates for c in t.checks if c.rate is not None and c.rate < 1.0),
        key=lambda tc: (tc[1].rate, -tc[1].assessed),
    )[:5]
    failed = [
        (r, PROBLEM_TITLES.get(p.kind, p.kind), p,
         trim_head(p.message, max_lines=6, max_chars=LIMITS["message_chars"]))
        for r in results for p in r.problems
    ]
    durations = [r.duration_s for r in results if r.duration_s is not None]
    passed = [r for r in results if r.passed]
    stats = {
        "submissions": str(len(results)),
        "graded": str(len(graded)),
        "problems": str(sum(1 for r in results if r.problems)),
        "late": str(sum(1 for r in results if r.student.late)),
        "mean": fmt_points(statistics.fmean(scores)) if scores else "–",
        "median": fmt_points(statistics.median(scores)) if scores else "–",
        "passed": f"{len(passed)} of {len(results)}" if pass_mark is not None else "–",
        "pass_rate": f"{_percent(len(passed), len(results)):.0f}%" if results and pass_mark is not None else "–",
        "median_time": fmt_duration(statistics.median(durations)) if durations else "–",
        "max_time": fmt_duration(max(durations)) if durations else "–",
        "total_time": fmt_duration(sum(durations)) if durations else "–",
    }
    if durations:
        slowest = max((r for r in results if r.duration_s is not None), key=lambda r: r.duration_s)
        stats["slowest"] = slowest.student.name or slowest.student.key
    alt = "Histogram of scores"
    if scores:
        alt = (f"Histogram of the {len(scores)} graded scores out of {fmt_points(max_score)}: mean "
               f"{stats['mean']}, median {stats['median']}"
               + (f", pass mark {fmt_points(pass_mark)}, {stats['passed']} passed" if pass_mark is not None else "")
               + ".")
    return ClassPage(title=f"{assignment} – class overview", assignment=assignment, rows=rows,
                     histogram=histogram, histogram_alt=alt, rates=rates, hardest=hardest,
                     failed=failed, stats=stats, pass_mark=pass_mark, max_score=max_score,
                     denominator=score_denominator(results, max_score), notices=operator_notices(results))


def score_denominator(results: Sequence[GradeResult], max_score: float) -> str:
    """What every score on the overview is out of, in words.

    One denominator for the whole page: the rubric's total, automatic checks and hand-marked
    answers together, so a student whose answers still await marking shows a lower score, not
    a score out of fewer points.
    """
    full = next((r for r in results if r.tasks and r.max_score == max_score), None)
    words = f"points out of {fmt_points(max_score)}"
    if full is None:
        return words
    manual = sum(t.max_points for t in full.tasks if t.manual)
    automatic = max_score - manual
    if manual and automatic:
        return f"{words} ({fmt_points(automatic)} automatic + {fmt_points(manual)} marked by hand)"
    return f"{words} ({'marked by hand' if manual else 'automatic checks'})"


def operator_notices(results: Sequence[GradeResult]) -> list[tuple[str, str]]:
    """How the grader ran, for the instructor: said once here (and in the grading log), not in
    each student's report."""
    notices = []
    plain = [r for r in results if r.mode == "executed" and r.sandbox == "none" and r.evidence is not None]
    if plain:
        names = ", ".join((r.student.name or r.student.key) for r in plain[:10])
        more = f" and {len(plain) - 10} more" if len(plain) > 10 else ""
        notices.append(("Ran unsandboxed", (
            f"{len(plain)} of {len(results)} notebooks ran as a plain process with resource limits only "
            f"(no sandbox was available, or `--sandbox none` was given): {names}{more}. "
            "See the grader's security notes.")))
    return notices


# ---------------------------------------------------------------------------------------------
# Rendering.


def _capitalize_first(text: str) -> str:
    """``cell 12 raised …`` → ``Cell 12 raised …`` (Jinja's ``capitalize`` lowers the rest)."""
    text = str(text)
    return text[:1].upper() + text[1:]


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        # On for every template, whatever its name: the pages show untrusted notebook text.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(points=fmt_points, count=fmt_count, duration=fmt_duration,
                       figure=fmt_figure, shape=fmt_shape, clean=clean_text,
                       layer_config=layer_config, signed=fmt_signed, when=fmt_when,
                       inline_code=inline_code, pct=fmt_percent, capitalize_first=_capitalize_first)
    env.globals.update(
        STATUS_WORDS={s.value: w for s, w in STATUS_WORDS.items()},
        LEVEL_HELP=LEVEL_HELP,
        CSP=CSP,
        grader_version=__version__,
        percent=_percent,
        share=_share,
    )
    return env


@functools.lru_cache(maxsize=1)
def _stylesheet() -> str:
    return (templates_dir() / "report.css").read_text(encoding="utf-8")


def _render(template: str, **context: Any) -> str:
    # The stylesheet is ours, not the student's: it goes in as is.
    return _environment().get_template(template).render(css=Markup(_stylesheet()), **context)


def render_student_report(result: GradeResult, *, reference: dict[str, Architecture] | None = None) -> str:
    """One self-contained HTML page with a student's grade and the evidence behind it.

    ``reference`` maps a task id to the reference model's :class:`~grader.model.evidence.Architecture`;
    the task's model is shown beside it, layer by layer.
    """
    page = student_page(result, reference=reference)
    return _render("student_report.html.j2", page=page, r=result)


def render_class_overview(results: list[GradeResult], *, report_links: dict[str, str]) -> str:
    """The class overview page: score histogram, pass rate per check, every student with a link.

    ``report_links`` maps a :attr:`Student.key <grader.model.results.Student.key>` to the href of that
    student's report (relative to the overview page).
    """
    page = class_page(results, report_links=report_links)
    script, digest = _overview_script()
    # The one script of any page: sorting the student table. Only this exact text may run.
    return _render("class_overview.html.j2", page=page, sort_script=Markup(script),
                   CSP=f"{CSP}; script-src 'sha256-{digest}'")


@functools.lru_cache(maxsize=1)
def _overview_script() -> tuple[str, str]:
    import base64
    import hashlib

    text = (templates_dir() / "overview_sort.js").read_text(encoding="utf-8")
    return text, base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def report_folder(key: str) -> str:
    """A folder name for a student's report that is safe on every file system."""
    name = unicodedata.normalize("NFC", key).strip()
    name = re.sub(r'[\x00-\x1f<>:"/\\|?*]+', "_", name).strip(". ")
    return name[:100] or "student"


def _write_atomic(path: Path, text: str) -> None:
    # Written next to the target and renamed: a batch killed mid-write never leaves half a page.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fallback_page(result: GradeResult, error: Exception) -> str:
    return _render("render_error.html.j2", r=result, error=clean_text(f"{type(error).__name__}: {error}")[:2000])


def write_reports(results: list[GradeResult], out_dir: Path, *,
                  references: dict[str, Architecture] | None = None) -> Path:
    """Write ``out_dir/<student>/report.html`` for each result and ``out_dir/index.html``.

    Returns the path of the class overview. A result whose page cannot be rendered gets a short
    page saying so; the other reports are written all the same.
    """
    out_dir = Path(out_dir)
    links: dict[str, str] = {}
    used: set[str] = set()
    for result in results:
        folder = report_folder(result.student.key)
        candidate, n = folder, 2
        while candidate.casefold() in used:
            candidate, n = f"{folder}-{n}", n + 1
        used.add(candidate.casefold())
        try:
            html = render_student_report(result, reference=references)
        except Exception as exc:  # one odd result must not cost the other reports
            log.exception("report for %s could not be rendered", result.student.key)
            html = _fallback_page(result, exc)
        _write_atomic(out_dir / candidate / "report.html", html)
        links[result.student.key] = quote(candidate) + "/report.html"
    index = out_dir / "index.html"
    _write_atomic(index, render_class_overview(results, report_links=links))
    return index
