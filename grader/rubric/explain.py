"""``grade rubric explain RUBRIC NOTEBOOK``: per task, which model and which answer a rubric's
selectors pick in a filled-in notebook, and why.

It reads the notebook's saved outputs (static evidence), so it needs no kernel. The selectors'
own functions (:mod:`grader.checks.selectors`, :mod:`grader.checks.cells`) decide every pick, so
what ``explain`` shows is what grading does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.checks.cells import Answer, find_answer
from grader.checks.selectors import Target, select_model
from grader.model.format import fmt_int
from grader.notebook.load import load_notebook
from grader.rubric.authoring import reader_text, single_line
from grader.rubric.model import ModelSelector, Rubric, Task
from grader.static.outputs import static_evidence

__all__ = ["TaskExplanation", "describe_target", "explain_rubric", "explanation_table"]


@dataclass
class TaskExplanation:
    """What one task picks in one notebook, and why."""

    task_id: str
    title: str
    selector: str | None  # the model selector in words; None for a task without a model
    target: Target | None
    model_why: str  # the selector's own notes, or why nothing matched
    question: str | None  # the pattern the answer is found by
    answer: Answer | None

    @property
    def answer_status(self) -> str:
        if self.answer is None:
            return ""
        if self.answer.text is None:
            return "not found"
        if not self.answer.text:
            return "no answer" if self.answer.cells else "no answer cell"
        return f"{len(self.answer.text.split())} words"


def _answer_pattern(task: Task) -> tuple[str | None, str | None]:
    question, tag = task.question, task.answer_tag
    for check in task.checks:
        if check.kind in ("answer", "manual") and not (question or tag):
            question = check.params.get("question") or question
            tag = check.params.get("answer_tag") or tag
    return question, tag


def _readable(pattern: str) -> str:
    """A phrase regex as words: ``at\\s+least\\s+62%`` → ``at least 62%``."""
    return re.sub(r"\\(.)", r"\1", re.sub(r"\\s[+*]", " ", pattern))


def _readable_selector(selector: ModelSelector) -> ModelSelector:
    keys = {k: (_readable(v) if k in ("section", "before", "after") and isinstance(v, str) else v)
            for k, v in vars(selector).items()}
    return ModelSelector(**keys)


def explain_rubric(*, rubric: Rubric, notebook: str | Path) -> list[TaskExplanation]:
    """For each task of ``rubric``: the model and the answer its selectors pick in ``notebook``.

    The evidence is read from the notebook's saved outputs (as ``grade --static`` does), so
    nothing runs; a notebook never run shows no models, and says so.
    """
    notebook = Path(notebook)
    evidence = static_evidence(load_notebook(notebook), str(notebook))
    explained: list[TaskExplanation] = []
    for task in rubric.tasks:
        target, why, described = None, "", None
        if task.selector is not None:
            described = _readable_selector(task.selector).describe()
            selection = select_model(task.selector, evidence)
            target, why = selection.target, selection.message
        question, tag = _answer_pattern(task)
        answer = find_answer(evidence, question=question, answer_tag=tag) if (question or tag) else None
        explained.append(TaskExplanation(task.id, task.title, described, target, why, question or tag, answer))
    return explained


def describe_target(target: Target) -> str:
    """``"fit 2 · cell 26 · 81,834 params · under '3. CNN classifier'"``."""
    parts = []
    if target.run is not None:
        parts.append(f"fit {target.run.index + 1}")
        parts.append(f"cell {target.run.cell.index + 1}")
    parts.append(f"{fmt_int(target.architecture.total_params)} params")
    if target.run is not None and target.run.epochs_trained:
        parts.append(f"{target.run.epochs_trained} epochs")
    if target.run is not None and target.run.cell.heading:
        parts.append(f"under '{single_line(reader_text(target.run.cell.heading), 40)}'")
    return " · ".join(parts)


def explanation_table(explained: list[TaskExplanation], *, title: str = "") -> Any:
    """A rich :class:`~rich.table.Table` of :func:`explain_rubric`'s result: one row per task with
    the model it picks (fit, cell, parameters, heading), the answer cells, and why."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title or None, show_lines=True, expand=False)
    table.add_column("task", no_wrap=True)
    table.add_column("model picked", overflow="fold")
    table.add_column("answer", overflow="fold")
    table.add_column("why", overflow="fold")
    for item in explained:
        if item.selector is None:
            model = Text("—", style="dim")
        elif item.target is None:
            model = Text("nothing", style="bold red")
        else:
            model = Text(describe_target(item.target), style="green")
        if item.answer is None:
            answer = Text("—", style="dim")
        else:
            cells = ", ".join(str(i + 1) for i in item.answer.cells)
            status = item.answer_status
            style = "green" if status.endswith("words") else "yellow" if status.startswith("no answer") else "bold red"
            answer = Text(f"cell {cells}: {status}" if cells else status, style=style)
        why: list[str] = []
        if item.selector is not None:
            why.append(item.selector)
            if item.model_why:
                why.append(item.model_why)
        if item.answer is not None:
            why.append(f"answer {item.answer.message}" if item.answer.text is not None else item.answer.message)
        table.add_row(Text(item.task_id, style="bold"), model, answer, Text("\n".join(why)))
    return table
