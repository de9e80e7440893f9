"""Selectors: which recorded model, or which markdown answer, a rubric task is about.

Real notebooks reuse ``model`` for every question, build models in functions, and put the
question text in markdown cells around the training cell. A task therefore names its model by
what an instructor can see in the notebook::

    model: {fit: 2}                     # the 2nd fit call of the notebook (-1: the last)
    model: {section: "3\\. CNN"}        # the last model trained under a heading that matches
    model: {before: "Question 4"}       # the last model trained before the cell that matches
    model: {after: "Question 4"}        # the first model trained after it
    model: {function: CreateCNNModel}   # the model the grader got by calling CreateCNNModel()
    model: {tag: cnn}                   # trained in a cell tagged "cnn"
    model: {variable: cnn_model}        # bound to the global cnn_model at the end of the run

Filters combine (``{section: CNN, fit: 1}`` is the first fit under that heading). A selector that
matches nothing gives a :class:`Selection` without target and a message that says what was found
instead: the grader never fails on a missing model.

Cells and fits are numbered from 1 in messages, as a reader counts them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grader.arithmetic import fmt_int
from grader.checks.base import one_line, ordinal, plural
from grader.checks.pattern import canonical_class
from grader.evidence import Architecture, Cell, CompileInfo, Evidence, Level, ModelSnapshot, TrainingRun

__all__ = [
    "Answer",
    "Heading",
    "ModelSelector",
    "Selection",
    "Target",
    "describe_run",
    "find_answer",
    "headings",
    "section_ranges",
    "select_model",
    "trained_models_hint",
]

_FLAGS = re.IGNORECASE | re.MULTILINE


@dataclass
class ModelSelector:
    """Which model a task is about; see the module docstring for each key."""

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
class Target:
    """The model a task's checks are about: one training run, or a model that was only built.

    ``run`` is the chosen fit; ``architecture`` and ``compile`` are as they were at that fit
    (a model whose base is unfrozen later shows other trainable counts in its later fits).
    """

    model_id: str
    architecture: Architecture
    compile: CompileInfo | None
    run: TrainingRun | None
    snapshot: ModelSnapshot | None
    level: Level
    where: str  # "fit 2 in cell 9 under 'CNN'"


@dataclass
class Selection:
    target: Target | None
    message: str = ""  # when nothing matched: why, and what was found instead


@dataclass
class Heading:
    cell: int  # index of the markdown cell
    order: int  # position among all headings, for cells with several
    level: int  # 1 for '#', 2 for '##', ...
    text: str


_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")


def headings(evidence: Evidence) -> list[Heading]:
    """Every markdown heading of the notebook, in order."""
    found: list[Heading] = []
    in_fence = False
    for cell in evidence.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.lstrip().startswith("```"):
                in_fence = not in_fence
                continue
            match = None if in_fence else _HEADING.match(line)
            if match:
                found.append(Heading(cell.index, len(found), len(match.group(1)), match.group(2).strip()))
        in_fence = False
    return found


# ---------------------------------------------------------------------------------------------
# Describing what was found


def describe_run(run: TrainingRun, evidence: Evidence | None = None) -> str:
    """``"fit 2 in cell 9 under 'CNN' (81,834 params)"``."""
    text = f"fit {run.index + 1} in cell {run.cell.index + 1}"
    if run.cell.heading:
        text += f" under '{one_line(run.cell.heading, 50)}'"
    text += f" ({fmt_int(run.architecture.total_params)} params)"
    if evidence is not None:
        earlier = [r for r in evidence.runs if r.model_id == run.model_id and r.index < run.index]
        if earlier:
            text += f", continuing fit {earlier[-1].index + 1}"
    if run.error:
        text += f", failed: {one_line(run.error, 60)}"
    return text


def trained_models_hint(evidence: Evidence) -> str:
    """What was trained, for not-found messages: "Found 3 trained models: fit 1 in cell 5 ..."."""
    runs = sorted(evidence.runs, key=lambda r: r.index)
    if not runs:
        text = "No model was trained in this notebook (no fit call was recorded)."
        if evidence.cell_errors:
            first = evidence.cell_errors[0]
            text += (f" {plural(len(evidence.cell_errors), 'cell')} raised errors; the first, in cell "
                     f"{first.cell.index + 1}: {first.ename}: {one_line(first.evalue, 80)}.")
        built = [m for m in evidence.models if m.variable]
        if built:
            names = ", ".join(f"{m.variable} ({fmt_int(m.architecture.total_params)} params)" for m in built[:5])
            text += f" Models built but not trained: {names}."
        return text
    models = len({run.model_id for run in runs})
    shown = "; ".join(describe_run(run, evidence) for run in runs[:8])
    more = f"; and {len(runs) - 8} more" if len(runs) > 8 else ""
    return f"Found {plural(models, 'trained model')}: {shown}{more}."


def _headings_hint(evidence: Evidence) -> str:
    found = headings(evidence)
    if not found:
        return "The notebook has no markdown headings."
    names = ", ".join(f"'{one_line(h.text, 40)}'" for h in found[:10])
    more = f" and {len(found) - 10} more" if len(found) > 10 else ""
    return f"Headings in this notebook: {names}{more}."


# ---------------------------------------------------------------------------------------------
# Selecting a model


def _first_text_cell(evidence: Evidence, pattern: str) -> Cell | None:
    regex = re.compile(pattern, _FLAGS)
    for cell in evidence.cells:
        if cell.cell_type in ("markdown", "raw") and regex.search(cell.source):
            return cell
    return None


def section_ranges(evidence: Evidence, pattern: str) -> list[tuple[int, int]] | None:
    """Cell index ranges (heading cell, end) of every section whose heading matches; None when no heading
    matches. A section runs to the next heading of the same or a higher level."""
    regex = re.compile(pattern, _FLAGS)
    found = headings(evidence)
    last_cell = max((c.index for c in evidence.cells), default=0) + 1
    ranges = []
    for heading in found:
        if not regex.search(heading.text):
            continue
        end = next((h.cell for h in found[heading.order + 1:] if h.level <= heading.level and h.cell > heading.cell),
                   last_cell)
        ranges.append((heading.cell, end))
    return ranges or None


def _target_from_run(run: TrainingRun, evidence: Evidence) -> Target:
    snapshot = next((m for m in reversed(evidence.models) if m.model_id == run.model_id), None)
    return Target(run.model_id, run.architecture, run.compile, run, snapshot, run.level, describe_run(run, evidence))


def _same_architecture(a: Architecture, b: Architecture) -> bool:
    return a.total_params == b.total_params and [canonical_class(c) for c in a.layer_classes()] == [
        canonical_class(c) for c in b.layer_classes()
    ]


def _by_function(selector: ModelSelector, evidence: Evidence) -> Selection:
    name = selector.function or ""
    snapshots = [m for m in evidence.models if m.built_by == name]
    runs = sorted(evidence.runs, key=lambda r: r.index)
    if snapshots:
        snapshot = snapshots[-1]
        # The grader called the function after the run, so its model is a fresh object: link it to
        # the training runs of an identical architecture to find its history.
        matching = [r for r in runs if r.model_id == snapshot.model_id] or [
            r for r in runs if _same_architecture(r.architecture, snapshot.architecture)
        ]
        if matching:
            run = matching[-1]
            target = _target_from_run(run, evidence)
            target.snapshot = snapshot
            target.where = f"returned by {name}(), trained as " + target.where
            return Selection(target)
        return Selection(Target(
            snapshot.model_id, snapshot.architecture, snapshot.compile, None, snapshot, Level.EXECUTED,
            f"returned by {name}() ({fmt_int(snapshot.architecture.total_params)} params), never trained",
        ))
    # Static mode, or the function could not be called: a fit in a cell that calls the function.
    call = re.compile(rf"\b{re.escape(name)}\s*\(")
    calling = {c.index for c in evidence.cells if c.cell_type == "code" and call.search(c.source)}
    in_calling = [r for r in runs if r.cell.index in calling]
    if in_calling:
        target = _target_from_run(in_calling[-1], evidence)
        target.where += f", in a cell that calls {name}()"
        return Selection(target)
    why = f"No model built by {name}() was recorded."
    problems = [f.message for f in evidence.findings if name in f.message]
    if problems:
        why += f" {one_line(problems[0], 120)}."
    elif not any(re.search(rf"\bdef\s+{re.escape(name)}\s*\(", c.source) for c in evidence.cells if c.cell_type == "code"):
        defined = sorted({m.group(1) for c in evidence.cells if c.cell_type == "code"
                          for m in re.finditer(r"^\s*def\s+(\w+)\s*\(", c.source, re.MULTILINE)})
        why += f" The notebook defines no function {name}()"
        why += f" (functions defined: {', '.join(defined[:8])})." if defined else "."
    return Selection(None, f"{why} {trained_models_hint(evidence)}")


def select_model(selector: ModelSelector, evidence: Evidence) -> Selection:
    """The model ``selector`` names in ``evidence``, or a message saying why there is none."""
    if selector.function:
        return _by_function(selector, evidence)
    runs = sorted(evidence.runs, key=lambda r: r.index)
    candidates = list(runs)
    scope: list[str] = []  # what the filters narrowed to, for the not-found message

    if selector.section:
        ranges = section_ranges(evidence, selector.section)
        if ranges is None and evidence.cells:
            return Selection(None, f"No heading matches '{selector.section}'. {_headings_hint(evidence)} "
                                   f"{trained_models_hint(evidence)}")
        if ranges is None:  # no cells recorded: fall back to the heading the recorder saw
            regex = re.compile(selector.section, _FLAGS)
            candidates = [r for r in candidates if r.cell.heading and regex.search(r.cell.heading)]
        else:
            candidates = [r for r in candidates if any(lo < r.cell.index < hi for lo, hi in ranges)]
        scope.append(f"under a heading matching '{selector.section}'")

    for key in ("after", "before"):
        pattern = getattr(selector, key)
        if not pattern:
            continue
        cell = _first_text_cell(evidence, pattern)
        if cell is None:
            return Selection(None, f"No markdown cell matches '{pattern}'. {_headings_hint(evidence)} "
                                   f"{trained_models_hint(evidence)}")
        if key == "before":
            candidates = [r for r in candidates if r.cell.index < cell.index]
        else:
            candidates = [r for r in candidates if r.cell.index > cell.index]
        scope.append(f"{key} cell {cell.index + 1} ('{one_line(cell.source, 50)}')")

    if selector.tag:
        tagged = {c.index for c in evidence.cells if selector.tag in c.tags}
        candidates = [r for r in candidates if selector.tag in r.cell.tags or r.cell.index in tagged]
        scope.append(f"in a cell tagged '{selector.tag}'")

    if selector.variable:
        name = selector.variable
        ids = {m.model_id for m in evidence.models if m.variable == name}
        candidates = [r for r in candidates if r.variable == name or r.model_id in ids]
        scope.append(f"bound to the variable '{name}'")
        if not candidates and not (selector.section or selector.before or selector.after or selector.tag):
            built = [m for m in evidence.models if m.variable == name]
            if built:  # a model that exists at the end but was never trained
                m = built[-1]
                return Selection(Target(m.model_id, m.architecture, m.compile, None, m, Level.EXECUTED,
                                        f"the variable '{name}' ({fmt_int(m.architecture.total_params)} params), never trained"))
            holders = sorted({m.variable for m in evidence.models if m.variable} | {r.variable for r in runs if r.variable})
            hint = f" Variables holding models: {', '.join(holders)}." if holders else ""
            return Selection(None, f"No model is bound to the variable '{name}' at the end of the run.{hint} "
                                   f"{trained_models_hint(evidence)}")

    if not runs:
        return Selection(None, trained_models_hint(evidence))
    if not candidates:
        where = " ".join(scope) or "in this notebook"
        return Selection(None, f"No model was trained {where}. {trained_models_hint(evidence)}")

    if selector.fit is not None:
        n = selector.fit
        if not -len(candidates) <= n <= len(candidates) or n == 0:
            where = (" " + " ".join(scope)) if scope else ""
            return Selection(None, f"Asked for the {ordinal(n)} training run{where}, but there "
                                   f"{'is only' if len(candidates) == 1 else 'are only'} "
                                   f"{plural(len(candidates), 'training run')}. {trained_models_hint(evidence)}")
        run = candidates[n - 1] if n > 0 else candidates[n]
    elif selector.after and not selector.before:
        run = candidates[0]  # the fit nearest the question that precedes it
    else:
        run = candidates[-1]
    return Selection(_target_from_run(run, evidence))


# ---------------------------------------------------------------------------------------------
# Markdown answers


@dataclass
class Answer:
    """A student's written answer: the markdown cells after the question, or the tagged cells."""

    text: str | None  # None: the question (or tag) was not found; "" : found, but no answer
    cells: list[int] = field(default_factory=list)
    message: str = ""  # where it was looked for, or why nothing was found


# A markdown cell that opens the next question ends the answer to the previous one.
_NEXT_QUESTION = re.compile(
    r"^\s*(?:\*\*|__|>\s*)?\s*(?:question|exercise|task|problem|aufgabe|frage|uppgift|fråga|q\s*\d+\b)"
    r"|^\s*\.\.\s+admonition::",
    re.IGNORECASE,
)


def _opens_a_question(cell: Cell) -> bool:
    first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
    return bool(_NEXT_QUESTION.match(first))


def _is_heading_cell(cell: Cell) -> bool:
    first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
    return bool(_HEADING.match(first))


def find_answer(evidence: Evidence, *, question: str | None = None, answer_tag: str | None = None) -> Answer:
    """The answer to a question: with ``answer_tag``, the cells carrying that tag; with
    ``question`` (a regex), the markdown cells after the first markdown cell that matches, up to
    the next code cell, heading, or cell that opens another question ("Question 4", "Q4",
    "Exercise ..."; not "4. ...", which is as often a multiple-choice answer). The question cell itself is not part of the answer: it often
    lists the choices ("1. 24x28 … 4. 24x24"), which must not count as answered.
    """
    if answer_tag:
        cells = [c for c in evidence.cells if answer_tag in c.tags]
        if not cells:
            tags = sorted({t for c in evidence.cells for t in c.tags})
            hint = f" Cell tags in this notebook: {', '.join(tags)}." if tags else " No cell has tags."
            return Answer(None, [], f"No cell is tagged '{answer_tag}'.{hint}")
        text = "\n\n".join(c.source.strip() for c in cells).strip()
        return Answer(text, [c.index for c in cells], f"cells tagged '{answer_tag}'")
    if not question:
        return Answer(None, [], "no question given")
    cell = _first_text_cell(evidence, question)
    if cell is None:
        return Answer(None, [], f"No markdown cell matches '{question}'. {_headings_hint(evidence)}")
    parts: list[Cell] = []
    for following in evidence.cells[cell.index + 1:] if _indexed(evidence) else [c for c in evidence.cells if c.index > cell.index]:
        if following.cell_type == "code":
            break
        if following.cell_type != "markdown":
            continue
        if _is_heading_cell(following):
            # "## Answer" right after the question opens the answer; any other heading ends it.
            if not parts and re.search(r"answer|svar|antwort|réponse|respuesta", one_line(following.source), re.IGNORECASE):
                parts.append(following)
                continue
            break
        if _opens_a_question(following):
            break
        parts.append(following)
    text = "\n\n".join(c.source.strip() for c in parts).strip()
    where = f"after cell {cell.index + 1} ('{one_line(cell.source, 50)}')"
    return Answer(text, [c.index for c in parts], where)


def _indexed(evidence: Evidence) -> bool:
    """True when ``evidence.cells[i].index == i`` for every cell (the usual case)."""
    return all(c.index == i for i, c in enumerate(evidence.cells))
