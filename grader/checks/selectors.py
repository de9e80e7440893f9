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

The markdown the selectors read (headings, sections, the cell a pattern means) is
:mod:`grader.checks.cells`; the selector itself, as the rubric writes it, is
:class:`grader.rubric.model.ModelSelector`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from grader.checks.cells import headings_hint, is_indexed, section_ranges, text_cell
from grader.checks.pattern import canonical_class
from grader.model.format import fmt_int
from grader.model.evidence import Architecture, CompileInfo, Evidence, Level, ModelSnapshot, TrainingRun
from grader.model.words import one_line, ordinal, plural
from grader.notebook.questions import plain_text
from grader.notebook.unfinished import empty_code_block, filled_code_block
from grader.rubric.model import ModelSelector

__all__ = [
    "Selection",
    "Target",
    "built_in",
    "describe_run",
    "select_model",
    "trained_models_hint",
]

_FLAGS = re.IGNORECASE | re.MULTILINE


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


# ---------------------------------------------------------------------------------------------
# Selecting a model


_FIT_CALL = re.compile(r"\b([A-Za-z_]\w{0,80})\s{0,4}\.\s{0,4}fit(?:_generator)?\s{0,4}\(")
_ASSIGN = "^[ \\t]{{0,40}}{name}[ \\t]{{0,10}}=[^=]"
_USE = "\\b{name}[ \\t]{{0,4}}\\.[ \\t]{{0,4}}(?:compile|summary|add)[ \\t]{{0,4}}\\("


def built_in(run: TrainingRun, evidence: Evidence) -> int | None:
    """The code cell that built the model ``run`` trained, when that is another cell than the fit:
    the last cell before the fit that binds the name the fit is called on (``model = ...``), or
    compiles, summarises or adds layers to it. None when the fit's own cell builds it, or the
    fit's cell cannot be read (a fit inside a helper function)."""
    if not is_indexed(evidence) or not 0 <= run.cell.index < len(evidence.cells):
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
            return Selection(None, f"No heading matches '{selector.section}'. {headings_hint(evidence)} "
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
        cell, note = text_cell(evidence, pattern)
        if cell is None:
            return Selection(None, f"No markdown cell matches '{pattern}'. {headings_hint(evidence)} "
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
    if not is_indexed(evidence):
        return None
    lo, hi = -1, len(evidence.cells)
    anchors = [(c, key) for key in ("after", "before") if getattr(selector, key)
               for c in [text_cell(evidence, getattr(selector, key))[0]] if c is not None]
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
