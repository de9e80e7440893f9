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

from grader.model.arithmetic import fmt_int
from grader.checks.base import one_line, ordinal, plural
from grader.checks.pattern import canonical_class
from grader.model.evidence import Architecture, Cell, CompileInfo, Evidence, Level, ModelSnapshot, TrainingRun
from grader.notebook.unfinished import empty_code_block, filled_code_block

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
    # The task's own template block ("# === Your code here ===") is still empty: the task is
    # incomplete, whatever model the selector could find elsewhere.
    incomplete: bool = False


@dataclass
class Heading:
    cell: int  # index of the markdown cell
    order: int  # position among all headings, for cells with several
    level: int  # 1 for '#', 2 for '##', ...
    text: str


_HEADING = re.compile(r"^[ \t]{0,3}+(#{1,6})[ \t]++((?:[^ \t]++|[ \t]++(?!#*+[ \t]*+$))++)")  # linear: no backtracking on long lines


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


# Markup that sits inside question text in course templates (``**<span style="color:red">Question
# 2:</span>**``, ``\\[Your answer here\\]``): removed before matching, so that a pattern written as the
# text reads also matches the cell as it is stored. Bounded, linear-time patterns: student text is
# untrusted.
_TAG = re.compile(r"<[^<>]{0,300}>")
_EMPHASIS = re.compile(r"\*\*|__|\\(?=[\[\]()*_#])")
# A course question cell: "Question 4:", "Exercise 2", "Q3." near its start, or a numbered "4." item.
_QUESTION_LABEL = re.compile(r"^[#>\s*_]{0,12}(?:question|exercise|task|problem|uppgift|fråga|frage|aufgabe)\s{0,3}\d"
                             r"|^[#>\s*_]{0,12}q\s{0,2}\d{1,3}\b", re.IGNORECASE)
_ANSWER_LABEL = re.compile(r"^[#>\s*_]{0,12}(?:answer|svar|antwort|réponse|respuesta)\b", re.IGNORECASE)
_PLACEHOLDER_ANSWER = re.compile(r"\[\s{0,3}your answer here\s{0,3}\]|\byour answer here\b|\btype your answer\b|"
                                 r"\bwrite your answer\b|^\s*(?:todo|tbd|\.\.\.)\s*$", re.IGNORECASE | re.MULTILINE)


def plain_text(source: str) -> str:
    """Markdown source without HTML tags and emphasis markers: what a reader sees, for matching."""
    return _EMPHASIS.sub("", _TAG.sub("", source[:20_000]))


def _first_line(cell: Cell) -> str:
    return next((ln for ln in plain_text(cell.source).splitlines() if ln.strip()), "")


def is_question_cell(cell: Cell) -> bool:
    """A cell that asks a course question ("Question 4: ...", "Exercise 2", "Q3")."""
    return cell.cell_type == "markdown" and bool(_QUESTION_LABEL.match(_first_line(cell)))


def is_answer_label(cell: Cell) -> bool:
    """A cell that opens an answer ("Answer:", "#### **Answer:**")."""
    return cell.cell_type == "markdown" and bool(_ANSWER_LABEL.match(_first_line(cell)))


def answer_text(text: str) -> str:
    """The student's words in an answer: the "Answer:" label and the template's "[Your answer
    here]" placeholder removed. Empty when nothing else is left."""
    lines = plain_text(text).splitlines()
    if lines and _ANSWER_LABEL.match(next((ln for ln in lines if ln.strip()), "")):
        first = next(i for i, ln in enumerate(lines) if ln.strip())
        rest = _ANSWER_LABEL.sub("", lines[first], count=1).lstrip(" :*#_-").strip()
        lines = lines[:first] + ([rest] if rest else []) + lines[first + 1:]
    kept = [ln for ln in lines if not _PLACEHOLDER_ANSWER.search(ln) or _PLACEHOLDER_ANSWER.sub("", ln).strip(" :*#_-")]
    kept = [_PLACEHOLDER_ANSWER.sub("", ln) for ln in kept]
    return "\n".join(kept).strip()


def _answer_cells(evidence: Evidence) -> set[int]:
    """Indexes of the cells that hold students' answers: the answer-labelled cells and the
    markdown cells that follow a question up to the next code cell, heading or question."""
    found: set[int] = set()
    after_question = False
    for cell in evidence.cells:
        if cell.cell_type == "code":
            after_question = False
            continue
        if cell.cell_type != "markdown":
            continue
        if is_answer_label(cell):
            found.add(cell.index)
            after_question = True
            continue
        if is_question_cell(cell):
            after_question = True
            continue
        if _is_heading_cell(cell):
            after_question = False
            continue
        if after_question:
            found.add(cell.index)
    return found


def _text_cell(evidence: Evidence, pattern: str) -> tuple[Cell | None, str]:
    """The cell a ``before``/``after``/``question`` pattern means, and a note when several match.

    A pattern copied from a question also matches students' answers that quote it ("I added
    Dropout layers ... at least 62% test accuracy"): the course's question cell wins, then any
    cell that is not an answer, then the first match.
    """
    regex = re.compile(pattern, _FLAGS)
    matches = [c for c in evidence.cells
               if c.cell_type in ("markdown", "raw") and (regex.search(c.source) or regex.search(plain_text(c.source)))]
    if not matches:
        return None, ""
    if len(matches) == 1:
        return matches[0], ""
    answers = _answer_cells(evidence)

    def rank(cell: Cell) -> int:
        if is_question_cell(cell) and cell.index not in answers:
            return 0
        return 1 if cell.index not in answers else 2

    chosen = min(matches, key=lambda c: (rank(c), c.index))
    kinds = {0: "the question cell", 1: "not an answer", 2: "an answer"}
    others = ", ".join(f"{c.index + 1}" + (" (a student's answer)" if c.index in answers else "")
                       for c in matches if c is not chosen)
    note = f"'{one_line(pattern, 40)}' matches cells {chosen.index + 1} and {others}; chose cell {chosen.index + 1} ({kinds[rank(chosen)]})"
    return chosen, note


def _first_text_cell(evidence: Evidence, pattern: str) -> Cell | None:
    return _text_cell(evidence, pattern)[0]


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


_FIT_CALL = re.compile(r"\b([A-Za-z_]\w{0,80})\s{0,4}\.\s{0,4}fit(?:_generator)?\s{0,4}\(")
_ASSIGN = "^[ \\t]{{0,40}}{name}[ \\t]{{0,10}}=[^=]"
_USE = "\\b{name}[ \\t]{{0,4}}\\.[ \\t]{{0,4}}(?:compile|summary|add)[ \\t]{{0,4}}\\("


def built_in(run: TrainingRun, evidence: Evidence) -> int | None:
    """The code cell that built the model ``run`` trained, when that is another cell than the fit:
    the last cell before the fit that binds the name the fit is called on (``model = ...``), or
    compiles, summarises or adds layers to it. None when the fit's own cell builds it, or the
    fit's cell cannot be read (a fit inside a helper function)."""
    if not _indexed(evidence) or not 0 <= run.cell.index < len(evidence.cells):
        return None
    source = evidence.cells[run.cell.index].source[:50_000]
    call = _FIT_CALL.search(source)
    if call is None or call.group(1) in ("self", "super"):
        return None
    name = re.escape(call.group(1))
    assign = re.compile(_ASSIGN.format(name=name), re.MULTILINE)
    use = re.compile(_USE.format(name=name))
    if assign.search(source[:call.start()]):
        return None  # built in the fit's own cell
    for cell in reversed(evidence.cells[:run.cell.index]):
        if cell.cell_type != "code":
            continue
        text = cell.source[:50_000]
        if assign.search(text) or use.search(text):
            return cell.index
    return None


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

    ranges = None
    if selector.section:
        ranges = section_ranges(evidence, selector.section)
        if ranges is None and evidence.cells:
            return Selection(None, f"No heading matches '{selector.section}'. {_headings_hint(evidence)} "
                                   f"{trained_models_hint(evidence)}")
        if ranges is None:  # no cells recorded: fall back to the heading the recorder saw
            regex = re.compile(selector.section, _FLAGS)
            candidates = [r for r in candidates if r.cell.heading and regex.search(r.cell.heading)]
        else:
            # A model belongs to a section when it was trained there, or built (or compiled, or
            # summarised) there and trained further down: Chollet's notebooks build the network
            # under "Building our network" and train it under "Data preprocessing".
            def in_section(run: TrainingRun) -> bool:
                places = [run.cell.index]
                built = built_in(run, evidence)
                if built is not None:
                    places.append(built)
                return any(lo < place < hi for place in places for lo, hi in ranges)

            candidates = [r for r in candidates if in_section(r)]
        scope.append(f"under a heading matching '{selector.section}'")

    notes: list[str] = []  # why the selector chose what it chose, when it had a choice
    scope_start: int | None = None  # first cell of the selector's scope, when it has one
    if selector.section and ranges:
        scope_start = min(lo for lo, _ in ranges)
    for key in ("after", "before"):
        pattern = getattr(selector, key)
        if not pattern:
            continue
        cell, note = _text_cell(evidence, pattern)
        if cell is None:
            return Selection(None, f"No markdown cell matches '{pattern}'. {_headings_hint(evidence)} "
                                   f"{trained_models_hint(evidence)}")
        if note:
            notes.append(note)
        if key == "before":
            candidates = [r for r in candidates if r.cell.index < cell.index]
        else:
            candidates = [r for r in candidates if r.cell.index > cell.index]
            scope_start = max(scope_start or 0, cell.index)
        scope.append(f"{key} cell {cell.index + 1} ('{one_line(plain_text(cell.source), 50)}')")

    if selector.section or selector.after or selector.before:
        unfinished = _own_block_unfinished(evidence, selector, ranges, candidates)
        if unfinished is not None:
            return unfinished

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

    # A model first trained before the scope, trained again inside it after a cell of the scope
    # failed, is not this section's model: the cell that should have built a new one raised, and
    # the fit below it trained the previous section's model once more. It earns nothing here.
    # (Training an earlier model further on purpose, as fine-tuning does, raises nothing.)
    if scope_start is not None and candidates:
        first_fit = {}
        for run in runs:
            first_fit.setdefault(run.model_id, run)

        def failed_before(run: TrainingRun) -> bool:
            return any(scope_start <= e.cell.index < run.cell.index for e in evidence.cell_errors)

        leftovers = [r for r in candidates if first_fit[r.model_id].cell.index <= scope_start and failed_before(r)]
        if leftovers:
            candidates = [r for r in candidates if r not in leftovers]
            if not candidates:
                run = leftovers[-1]
                first = first_fit[run.model_id]
                why = (f"The only model trained {' '.join(scope)} is the model of fit {first.index + 1} "
                       f"(cell {first.cell.index + 1}), trained again in cell {run.cell.index + 1}, so no new "
                       f"model was built for this question.")
                failed = [e for e in evidence.cell_errors if scope_start <= e.cell.index <= run.cell.index]
                if failed:
                    e = failed[0]
                    why += f" Cell {e.cell.index + 1} raised {e.ename}: {one_line(e.evalue, 80)}."
                return Selection(None, why)

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
    target = _target_from_run(run, evidence)
    models = {r.model_id for r in candidates}
    if len(models) > 1:
        picked = "the first" if (selector.after and not selector.before and selector.fit is None) else (
            f"the {ordinal(selector.fit)}" if selector.fit is not None else "the last")
        shown = ", ".join(f"fit {r.index + 1} (cell {r.cell.index + 1})" for r in candidates[:6])
        notes.append(f"{len(models)} models were trained here: {shown}{', ...' if len(candidates) > 6 else ''}; "
                     f"chose {picked}")
    return Selection(target, "; ".join(notes))


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


_RULE = re.compile(r"^\s{0,3}([-*_])(?:\s{0,2}\1){2,}\s*$")


def _is_heading_cell(cell: Cell) -> bool:
    """A markdown cell that starts with a heading (a horizontal rule before it does not count)."""
    first = next((ln for ln in cell.source.splitlines()[:50] if ln.strip() and not _RULE.match(ln[:200])), "")
    return bool(_HEADING.match(first[:500]))


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
        text = answer_text("\n\n".join(c.source.strip() for c in cells))
        return Answer(text, [c.index for c in cells], f"cells tagged '{answer_tag}'")
    if not question:
        return Answer(None, [], "no question given")
    cell, note = _text_cell(evidence, question)
    if cell is None:
        return Answer(None, [], f"No markdown cell matches '{question}'. {_headings_hint(evidence)}")
    parts: list[Cell] = []
    following_cells = evidence.cells[cell.index + 1:] if _indexed(evidence) else [c for c in evidence.cells if c.index > cell.index]
    after_code = False  # students insert code cells between a question and its answer cell
    for following in following_cells:
        if following.cell_type == "code":
            if parts:
                break
            after_code = True
            continue
        if following.cell_type != "markdown":
            continue
        if after_code and not is_answer_label(following):
            break  # past code, only an "Answer:" cell still belongs to this question
        after_code = False
        if is_answer_label(following):
            if parts and not _opens_a_question(following):
                break  # the answer of the next question
            parts.append(following)
            continue
        if _is_heading_cell(following):
            # "## Answer" right after the question opens the answer; any other heading ends it.
            if not parts and re.search(r"answer|svar|antwort|réponse|respuesta", one_line(following.source), re.IGNORECASE):
                parts.append(following)
                continue
            break
        if _opens_a_question(following) or is_question_cell(following):
            break
        parts.append(following)
    text = answer_text("\n\n".join(c.source.strip() for c in parts))
    where = f"after cell {cell.index + 1} ('{one_line(plain_text(cell.source), 50)}')"
    if note:
        where += f"; {note}"
    return Answer(text, [c.index for c in parts], where)


def _own_block_unfinished(evidence: Evidence, selector: ModelSelector, ranges: list[tuple[int, int]] | None,
                          candidates: list[TrainingRun]) -> Selection | None:
    """An incomplete :class:`Selection` when the task's own template block is still empty and no
    model was built by the student's own code in the task's part of the notebook; else None.

    The task's part is what its ``section``/``after``/``before`` bound. Its own block: the
    template cells ("# === Your code here ===") in that part; with one bound only, the one
    nearest that bound (a ``before: 'Question 4'`` part reaches back over every earlier section).
    A fit there of a model built in another part, or built by the empty template cell itself
    (``model = Model(inputs=x_in, outputs=x)`` with the previous section's ``x``), is not this
    task's work. A student who left the template cell empty but wrote the model in a cell of their
    own in this part is graded on that model.
    """
    if not _indexed(evidence):
        return None
    lo, hi = -1, len(evidence.cells)
    anchors = [(c, key) for key in ("after", "before") if getattr(selector, key)
               for c in [_first_text_cell(evidence, getattr(selector, key))] if c is not None]
    for cell, key in anchors:
        if key == "after":
            lo = max(lo, cell.index)
        else:
            hi = min(hi, cell.index)

    def in_part(index: int) -> bool:
        return lo < index < hi and (not ranges or any(a < index < b for a, b in ranges))

    blocks = [c.index for c in evidence.cells if c.cell_type == "code" and in_part(c.index)
              and (empty_code_block(c.source) or filled_code_block(c.source))]
    if not blocks:
        return None
    if not selector.section and not (selector.after and selector.before):
        blocks = [blocks[-1]] if selector.before else [blocks[0]]
    if any(filled_code_block(evidence.cells[i].source) for i in blocks):
        return None
    for run in candidates:
        built = built_in(run, evidence)
        place = built if built is not None else run.cell.index
        if in_part(place) and place not in blocks:
            return None  # the student's own cell built this model here
    where = ", ".join(str(i + 1) for i in blocks)
    why = (f"Incomplete: your code block for this task is empty (cell{'s' if len(blocks) > 1 else ''} {where} still "
           "ha" + ("ve" if len(blocks) > 1 else "s") + " the template's `# === Your code here ===` block with no code "
           "in it), so no model was built for it.")
    trained = [r for r in candidates if in_part(r.cell.index)]
    if trained:
        run = trained[-1]
        first = next(r for r in sorted(evidence.runs, key=lambda r: r.index) if r.model_id == run.model_id)
        why += f" The fit in cell {run.cell.index + 1} trained "
        why += (f"the model of fit {first.index + 1} (cell {first.cell.index + 1}) again." if first is not run
                else "a model the empty template cell built from what earlier cells left behind.")
        why += " It earns nothing here."
    return Selection(None, why, incomplete=True)


def _indexed(evidence: Evidence) -> bool:
    """True when ``evidence.cells[i].index == i`` for every cell (the usual case)."""
    return all(c.index == i for i, c in enumerate(evidence.cells))
