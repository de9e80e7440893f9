"""The rubric as the rest of the grader sees it: plain data, loaded and validated by
:mod:`grader.rubric.load`.

A :class:`Rubric` names the assignment's setting (dataset, support files, timeouts, fast-mode
caps, limits) and its :class:`Task` s; each task selects a model with a :class:`ModelSelector`
(or names a written answer) and lists its :class:`Check` s with points. The checks
(:mod:`grader.checks`) read these classes; nothing here knows the check kinds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.data.registry import dataset_names
from grader.model.defaults import DEFAULT_CELL_TIMEOUT, DEFAULT_NOTEBOOK_TIMEOUT
from grader.model.evidence import Level
from grader.model.scoring import sum_points
from grader.model.words import ordinal

__all__ = [
    "DATASETS",
    "Check",
    "FastCaps",
    "ModelSelector",
    "Rubric",
    "Task",
]

DATASETS = dataset_names()  # the registered datasets, grader.data.registry


@dataclass
class FastCaps:
    """Caps on training in fast mode (``grade check``, ``--fast``)."""

    epochs: int = 1
    train_samples: int = 512
    steps_per_epoch: int = 8
    test_samples: int = 512


@dataclass
class Check:
    """One check of a task, as written in the rubric (shorthand already expanded)."""

    kind: str
    params: dict[str, Any]
    points: float  # the most it can earn, the task's weight included
    title: str | None = None
    hint: str | None = None
    min_level: Level | None = None
    line: int | None = None



@dataclass
class ModelSelector:
    """Which model a task is about; :mod:`grader.checks.selectors` says what each key means."""

    fit: int | None = None
    section: str | None = None
    before: str | None = None
    after: str | None = None
    tag: str | None = None
    variable: str | None = None
    function: str | None = None

    def describe(self) -> str:
        """The selector in words, for the report: "the last model trained before 'Question 4'"."""
        if self.function:
            return f"the model returned by {self.function}()"
        if self.fit is not None:
            head = f"the {ordinal(self.fit)} model trained"
        elif self.after and not self.before:
            head = "the first model trained"
        else:
            head = "the last model trained"
        parts = []
        if self.section:
            parts.append(f"under a heading matching '{self.section}'")
        if self.after:
            parts.append(f"after '{self.after}'")
        if self.before:
            parts.append(f"before '{self.before}'")
        if self.tag:
            parts.append(f"in a cell tagged '{self.tag}'")
        if self.variable:
            parts.append(f"as the variable '{self.variable}'")
        if not parts and self.fit is None:
            return "the last model trained"
        return " ".join([head, *parts]) if parts else head + " in the notebook"



@dataclass
class Task:
    """A question or exercise: which model (or answer) it is about, and its checks."""

    id: str
    title: str
    checks: list[Check]
    selector: ModelSelector | None = None
    question: str | None = None  # regex of the question's markdown cell (for answers)
    answer_tag: str | None = None
    reference: str | None = None  # a reference model name (reference_models/)
    model_name: str = "model"  # how messages name the model: "Your CNN has ..."
    weight: float = 1.0
    description: str = ""
    line: int | None = None

    @property
    def max_points(self) -> float:
        return sum_points(check.points for check in self.checks)


@dataclass
class Rubric:
    """A loaded, validated rubric. See the module docstring and ``docs/rubrics.md``.

    ``limits`` holds the resource limits the rubric sets, normalised: ``memory``, ``disk``,
    ``file_size`` and ``output`` in bytes, ``processes`` a count, ``cpu_time`` in seconds.
    ``preprocess`` is how the grader feeds its test data to a saved model when it verifies it:
    ``auto`` (inferred from what the notebook fed to ``fit``), ``none``, ``scale255`` or
    ``standardize``. ``pass_mark`` is in points (a percentage in the file is converted).
    """

    path: Path | None
    name: str
    title: str
    tasks: list[Task]
    dataset: str | None = None
    data_source: str = "auto"
    preprocess: str = "auto"
    support_files: list[Path] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    kernel: str | None = None
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT
    fast: FastCaps = field(default_factory=FastCaps)
    limits: dict[str, Any] = field(default_factory=dict)
    compat: bool = True
    pass_mark: float | None = None
    max_points: float = 0.0
    description: str = ""
    # the weakest evidence a test accuracy earns points from (grader.checks.review)
    accuracy_evidence: Level = Level.VERIFIED
    # which figure a test accuracy uses when the grader retrained the model (grader.checks.figures):
    # retrained (its own training), saved (the notebook's saved model), higher or lower of the two
    retrained_accuracy: str = "retrained"

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)

    def functions_to_call(self) -> list[str]:
        """Functions named by ``function:`` selectors: the recorder calls each at the end of the
        run and records the model it returns (``ModelSnapshot.built_by``)."""
        names: list[str] = []
        for task in self.tasks:
            if task.selector and task.selector.function and task.selector.function not in names:
                names.append(task.selector.function)
        return names

    def variables_wanted(self) -> list[str]:
        """Global names whose values the checks read at the end of the run."""
        names: list[str] = []
        for task in self.tasks:
            wanted = [task.selector.variable] if task.selector and task.selector.variable else []
            wanted += [c.params["variable"] for c in task.checks if c.kind == "answer" and c.params.get("variable")]
            names += [name for name in wanted if name not in names]
        return names

    def reference_names(self) -> list[str]:
        """Reference models the tasks name, for calibration and side-by-side reports."""
        return list(dict.fromkeys(task.reference for task in self.tasks if task.reference))
