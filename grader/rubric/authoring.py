"""Rubric authoring: from a course's notebook template to a draft rubric, and back again.

Three tools an instructor uses to get from the template students receive to a working rubric:

* :func:`draft_rubric` (``grade rubric init TEMPLATE.ipynb``) reads the template's question cells
  ("Question 2: Train a model that achieves above 45% accuracy ...", "Q3", "Exercise 2") and
  writes one task per question: a model task with a selector built from the question's own text
  and placeholders for the thresholds it states, or a manual item for a free-text question. The
  modules the template imports from its own folder become ``support_files``.
* :func:`grader.rubric.explain.explain_rubric` (``grade rubric explain RUBRIC NOTEBOOK``) shows,
  per task, which model and which answer the selectors pick in a filled-in notebook, and why.
* :func:`template_warnings` (``grade rubric validate RUBRIC --against TEMPLATE``) names selectors
  that match nothing in the template.

Questions are told from other cells by the rules the selectors use
(:mod:`grader.notebook.questions`), so a draft expects what grading finds.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grader.checks.cells import headings, section_ranges
from grader.errors import RubricError
from grader.model.evidence import Cell, Evidence
from grader.notebook.load import load_notebook
from grader.notebook.questions import ANSWER_LABEL, TAG, plain_text, question_label
from grader.rubric.load import load_rubric_text
from grader.rubric.model import DATASETS, Rubric
from grader.static.outputs import static_evidence

__all__ = [
    "Draft",
    "Question",
    "draft_rubric",
    "find_questions",
    "reader_text",
    "single_line",
    "template_warnings",
]

_FLAGS = re.IGNORECASE | re.MULTILINE


# ---------------------------------------------------------------------------------------------
# Reading a template


_MARKUP = re.compile(r"\*\*|__|`|\\(?=[\[\]()*_#.])")
_TRAIN_VERB = re.compile(
    r"\b(?:train|retrain|fine-tune|finetune|build|design|create|implement|construct|fit)\b(?:\s+and\s+\w+)?\s+"
    r"(?:(?:a|an|the|your|this|that|another|one|new|own|modified|same)\s+){0,3}(?:[\w-]+\s+){0,3}?"
    r"(?:model|network|net|classifier|cnn|mlp|autoencoder|base)s?\b",
    re.IGNORECASE,
)
_EXPLAIN = re.compile(r"\b(?:motivat\w*|explain\w*|discuss\w*|describe\w*|why|compare\w*|justify\w*|comment\w*)\b",
                      re.IGNORECASE)
_PERCENT = re.compile(
    r"(?P<cmp>above|over|more than|greater than|higher than|better than|at least|a minimum of|minimum of|"
    r"exceeds?|exceeding|>=|≥|>)\s*(?:an?\s+)?(?:(?:test|validation|training)\s+accuracy\s+of\s+)?"
    r"(?P<num>\d{1,3}(?:[.,]\d{1,2})?)\s?%",
    re.IGNORECASE,
)
_EPOCHS = re.compile(
    r"(?P<cmp>at most|no more than|not more than|a maximum of|maximum of|max\.?|within|fewer than|less than|"
    r"up to|under|<=|≤)\s*(?P<num>\d{1,4})\s+(?:training\s+)?epochs?\b",
    re.IGNORECASE,
)
_PARAMS = re.compile(
    r"(?P<cmp>at most|no more than|not more than|a maximum of|maximum of|fewer than|less than|under|<=|≤)\s*"
    r"(?P<num>\d[\d,_ ]{0,12}\d|\d)\s*(?P<unit>k|thousand|m|million)?\s+(?:trainable\s+)?(?:parameters|params|weights)\b",
    re.IGNORECASE,
)
_FIT = re.compile(r"\.\s*fit(?:_generator)?\s*\(")
_DEF = re.compile(r"^(?P<indent>[ \t]*)def\s+(?P<name>\w+)\s*\(")
_LOCAL_IMPORT = re.compile(r"^[ \t]*(?:from\s+(?P<from>[A-Za-z_][\w.]*)\s+import\b|import\s+(?P<names>[A-Za-z_][\w., \t]*))",
                           re.MULTILINE)
_DATASET = re.compile(r"\b(?P<name>cifar100|cifar10|fashion_mnist|mnist)\s*\.\s*load_data\s*\(")
_STOPWORDS = frozenset(
    "a an the and or of to in on at for with by is are be this that these those it its as from your you "
    "what which how why do does each than then".split()
)


def reader_text(source: str) -> str:
    """A markdown cell as a reader sees it: no HTML tags, emphasis, code marks or backslash
    escapes (the question's words, for a draft's titles and phrases)."""
    return _MARKUP.sub("", TAG.sub("", source))


def single_line(text: str, limit: int = 0) -> str:
    """``text`` with its whitespace runs made single spaces, cut to ``limit`` characters."""
    line = " ".join(text.split())
    return line if not limit or len(line) <= limit else line[: limit - 1].rstrip() + "…"


@dataclass
class Threshold:
    """A number the question states: ``test_accuracy`` at least 0.45, ``epochs`` at most 25."""

    check: str  # test_accuracy, val_accuracy, train_accuracy, epochs, total_params
    bound: str  # at_least or at_most
    value: float
    text: str  # the words it was read from ("above 45%")


@dataclass
class Question:
    """One question cell of a template, and what :func:`draft_rubric` makes of it."""

    cell: int  # index of the markdown cell with the question's text
    label: str  # "Question 2"
    number: str  # "2"
    text: str  # the question without its label, as plain text
    trains_model: bool
    thresholds: list[Threshold] = field(default_factory=list)
    asks_for_text: bool = False  # "motivate", "explain", "discuss": a written part besides the model
    phrase: str | None = None  # a regex of a distinctive phrase of the question cell
    selector: dict[str, str] = field(default_factory=dict)
    selector_note: str = ""

    @property
    def task_id(self) -> str:
        return "q" + re.sub(r"\W", "_", self.number.lower())


def _thresholds(text: str) -> list[Threshold]:
    found: list[Threshold] = []
    for match in _PERCENT.finditer(text):
        window = text[max(0, match.start() - 60): match.end() + 60].lower()
        if "accura" not in window:
            continue  # "20% validation data"
        if "validation accuracy" in window:
            check = "val_accuracy"
        elif re.search(r"\btrain(?:ing)? accuracy", window) and "test" not in window:
            check = "train_accuracy"
        else:
            check = "test_accuracy"
        value = float(match.group("num").replace(",", "."))
        if not any(t.check == check for t in found):
            found.append(Threshold(check, "at_least", value, single_line(match.group(0))))
    for match in _EPOCHS.finditer(text):
        found.append(Threshold("epochs", "at_most", float(match.group("num")), single_line(match.group(0))))
        break
    for match in _PARAMS.finditer(text):
        number = float(re.sub(r"[,_ ]", "", match.group("num")))
        unit = (match.group("unit") or "").lower()
        number *= 1_000 if unit in ("k", "thousand") else 1_000_000 if unit in ("m", "million") else 1
        found.append(Threshold("total_params", "at_most", number, single_line(match.group(0))))
        break
    return found


def _question_of(cell: Cell, following: Cell | None) -> tuple[str, str, str, int] | None:
    """(label, number, text, index of the cell holding the text) when ``cell`` asks a question;
    the text sits in the next cell when the question cell holds the label only."""
    if cell.cell_type != "markdown":
        return None
    lines = [ln for ln in reader_text(cell.source).splitlines() if ln.strip()]
    if not lines:
        return None
    match = question_label(lines[0])
    if not match:
        return None
    word = match.group("word")
    label = ("Q" if word.lower() == "q" else word.capitalize()) + f"{'' if word.lower() == 'q' else ' '}{match.group('number')}"
    rest = [lines[0][match.end():].strip(" *#_:-")] + lines[1:]
    text = "\n".join(ln for ln in rest if ln.strip()).strip()
    where = cell.index
    if not text and following is not None and following.cell_type == "markdown":
        first = next((ln for ln in reader_text(following.source).splitlines() if ln.strip()), "")
        if not ANSWER_LABEL.match(first) and not question_label(first):
            text, where = reader_text(following.source).strip(), following.index
    return label, match.group("number"), text, where


def _top_level_lines(source: str) -> tuple[list[str], dict[str, str]]:
    """The lines of a code cell outside function definitions, and each function's body."""
    outside: list[str] = []
    bodies: dict[str, list[str]] = {}
    current: tuple[str, int] | None = None
    for line in source.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if current and stripped and indent <= current[1]:
            current = None
        if current:
            bodies[current[0]].append(line)
            continue
        match = _DEF.match(line)
        if match:
            current = (match.group("name"), len(match.group("indent")))
            bodies[current[0]] = []
            continue
        outside.append(line)
    return outside, {name: "\n".join(body) for name, body in bodies.items()}


def _training_cells(evidence: Evidence) -> list[int]:
    """Code cells that train a model: a ``.fit(`` outside a function, or a call of a function
    whose body fits (the 2024 TBMI26 template's ``TrainModelAndPlotResults(CreateCNNModel)``)."""
    trainers: set[str] = set()
    split = {}
    for cell in evidence.cells:
        if cell.cell_type == "code":
            split[cell.index] = _top_level_lines(cell.source)
            trainers |= {name for name, body in split[cell.index][1].items() if _FIT.search(body)}
    calls = re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(trainers))) + r")\s*\(") if trainers else None
    found = []
    for index, (outside, _) in split.items():
        text = "\n".join(ln for ln in outside if not ln.lstrip().startswith("#"))
        if _FIT.search(text) or (calls and calls.search(text)):
            found.append(index)
    return found


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"\s+", text) if w]


def _phrase_regex(words: list[str]) -> str:
    return r"\s+".join(re.escape(w) for w in words)


def _matches(regex: re.Pattern[str], cell: Cell) -> bool:
    return bool(regex.search(cell.source) or regex.search(plain_text(cell.source)))


def _text_cells(evidence: Evidence) -> list[Cell]:
    return [c for c in evidence.cells if c.cell_type in ("markdown", "raw")]


def _distinctive_phrase(question: Question, evidence: Evidence) -> str | None:
    """A short regex from the question's own words that matches its cell and no other text cell.

    Windows of three to eight words are tried, shortest first; for a model question a window
    that holds the stated threshold comes first ("above 45% accuracy" says what the task is
    about and survives renumbered questions). Words with markup are skipped so the phrase also
    matches the cell as it is stored.
    """
    cell = next(c for c in evidence.cells if c.index == question.cell)
    others = [c for c in _text_cells(evidence) if c.index != cell.index]
    words = [w.rstrip(".,;:?!") for w in _words(question.text)]
    bad = re.compile(r"[*<>`\\\[\]#|$]")
    first_sentence_end = next((i for i, w in enumerate(_words(question.text)) if w.endswith((".", "?", "!"))), len(words))

    def usable(window: list[str]) -> bool:
        if not window or any(not w or bad.search(w) for w in window):
            return False
        return window[0].lower() not in _STOPWORDS and window[-1].lower() not in _STOPWORDS

    def unique(window: list[str]) -> str | None:
        pattern = _phrase_regex(window)
        regex = re.compile(pattern, _FLAGS)
        if not _matches(regex, cell) or any(_matches(regex, other) for other in others):
            return None
        return pattern

    # The threshold's own words first, through the metric they are about ("at least 62% test
    # accuracy"): they say what the task is about and survive renumbered questions.
    for threshold in question.thresholds:
        if not threshold.check.endswith("accuracy"):
            continue
        span = _words(threshold.text)
        for start in range(len(words)):
            if [w.lower() for w in words[start:start + len(span)]] != [w.lower().rstrip(".,;:?!") for w in span]:
                continue
            tail = next((i for i in range(start + len(span) - 1, min(len(words), start + len(span) + 4))
                         if words[i].lower().startswith("accura")), None)
            window = words[start:(tail + 1) if tail is not None else start + len(span)]
            if window and not any(bad.search(w) for w in window):
                pattern = unique(window)
                if pattern:
                    return pattern
    for size in range(3, 9):
        ranked = []
        for start in range(0, max(0, len(words) - size) + 1):
            window = words[start:start + size]
            ranked.append((0 if start + size <= first_sentence_end else 1, start, window))
        for _, _, window in sorted(ranked, key=lambda item: item[:2]):
            if usable(window) and sum(1 for w in window if len(w) >= 4 and w.lower() not in _STOPWORDS) >= 2:
                pattern = unique(window)
                if pattern:
                    return pattern
    return None


def _heading_regex(text: str, all_texts: list[str]) -> str | None:
    """A regex naming one heading: its words without the section number when that is still
    unique (numbers change between versions of a template), else with it."""
    plain = single_line(reader_text(text)).strip(" *_#:")
    if not plain:
        return None
    full = _phrase_regex(_words(plain))
    bare_text = re.sub(r"^\d+(?:\.\d+)*\.?\s+", "", plain)
    candidates = ([_phrase_regex(_words(bare_text))] if bare_text and bare_text != plain else []) + [full]
    for pattern in candidates:
        regex = re.compile(pattern, _FLAGS)
        if sum(1 for t in all_texts if regex.search(t) or regex.search(reader_text(t))) == 1:
            return pattern
    return None


def _choose_selector(question: Question, questions: list[Question], evidence: Evidence,
                     training: list[int]) -> tuple[dict[str, str], str]:
    """The selector for a model question, and a sentence saying why it is that one."""
    earlier = [q for q in questions if q.cell < question.cell]
    later = [q for q in questions if q.cell > question.cell]
    start = earlier[-1].cell if earlier else -1
    stop = later[0].cell if later else max((c.index for c in evidence.cells), default=0) + 1
    before = [i for i in training if start < i < question.cell]
    after = [i for i in training if question.cell < i < stop]
    phrase = question.phrase
    if before:
        fit_cell = before[-1]
        # The innermost heading whose section holds both the training code and the question. A
        # subheading that the question cell closes ("Creating the CNN model", ended by a "####
        # Question 4" heading) is too narrow: students add cells there and the next template
        # version moves the fit below it.
        question_cells = {q.cell for q in questions}
        found = [h for h in headings(evidence) if h.cell not in question_cells
                 and not ANSWER_LABEL.match(reader_text(h.text))]
        texts = [h.text for h in found]
        for heading in sorted((h for h in found if h.cell < fit_cell), key=lambda h: (-h.level, -h.cell)):
            pattern = _heading_regex(heading.text, texts)
            ranges = section_ranges(evidence, pattern) if pattern else None
            inside = [(lo, hi) for lo, hi in (ranges or []) if lo < fit_cell < question.cell < hi]
            if inside:
                selector = {"section": pattern}
                # An earlier question in the same section ("4. Regularization" holding Dropout
                # and BatchNorm) bounds the scope from above, so its model is not taken.
                lo = inside[0][0]
                between = [q for q in earlier if lo < q.cell < fit_cell and q.phrase]
                if between:
                    selector["after"] = between[-1].phrase
                if phrase:
                    selector["before"] = phrase
                note = (f"the last model trained under '{single_line(reader_text(heading.text), 50)}' (training code in "
                        f"cell {fit_cell + 1}) before the question")
                return selector, note
        if phrase:
            return {"before": phrase}, f"the last model trained before the question (training code in cell {fit_cell + 1})"
    if after and phrase:
        selector = {"after": phrase}
        if later and later[0].phrase:
            selector["before"] = later[0].phrase
        return selector, f"the first model trained after the question (training code in cell {after[0] + 1})"
    if phrase:
        return {"before": phrase}, "no training code found next to the question: the last model trained before it"
    return {}, "no distinctive phrase found in the question: write the selector by hand"


def find_questions(*, evidence: Evidence) -> list[Question]:
    """The question cells of a template, in order, each with its kind, thresholds, phrase and
    (for model questions) selector."""
    cells = evidence.cells
    questions: list[Question] = []
    for position, cell in enumerate(cells):
        following = cells[position + 1] if position + 1 < len(cells) else None
        found = _question_of(cell, following)
        if not found:
            continue
        label, number, text, where = found
        if not text:
            continue
        trains = bool(_TRAIN_VERB.search(text))
        questions.append(Question(
            cell=where, label=label, number=number, text=text, trains_model=trains,
            thresholds=_thresholds(text) if trains else [],
            asks_for_text=bool(_EXPLAIN.search(text)),
        ))
    seen: dict[str, int] = {}
    for question in questions:  # "Question 2" twice (a bonus part): keep ids unique
        count = seen.get(question.number, 0)
        seen[question.number] = count + 1
        if count:
            question.number += chr(ord("a") + count)
    for question in questions:
        question.phrase = _distinctive_phrase(question, evidence)
    training = _training_cells(evidence)
    for question in questions:
        if question.trains_model:
            question.selector, question.selector_note = _choose_selector(question, questions, evidence, training)
    return questions


def _support_modules(nb_cells: list[Cell], folder: Path) -> list[Path]:
    """Modules the template imports from its own folder (``from Custom import PlotModelEval``)."""
    found: list[Path] = []
    for cell in nb_cells:
        if cell.cell_type != "code":
            continue
        for match in _LOCAL_IMPORT.finditer(cell.source):
            names = [match.group("from")] if match.group("from") else re.split(r"\s*,\s*", match.group("names") or "")
            for name in names:
                top = name.split(" as ")[0].strip().split(".")[0]
                if not top:
                    continue
                for candidate in (folder / f"{top}.py", folder / top / "__init__.py"):
                    path = candidate if candidate.name != "__init__.py" else candidate.parent
                    if candidate.is_file() and path not in found:
                        found.append(path)
    return found


def _third_party_imports(path: Path, local: set[str]) -> list[str]:
    """Top-level modules a support file imports that are neither standard library nor local."""
    try:
        source = path.read_text(encoding="utf-8") if path.is_file() else ""
    except (OSError, UnicodeDecodeError):
        return []
    names: list[str] = []
    for match in _LOCAL_IMPORT.finditer(source):
        parts = [match.group("from")] if match.group("from") else re.split(r"\s*,\s*", match.group("names") or "")
        for part in parts:
            top = part.split(" as ")[0].strip().split(".")[0]
            if top and top not in sys.stdlib_module_names and top not in local and top not in names and top != "__future__":
                names.append(top)
    return sorted(names)


# ---------------------------------------------------------------------------------------------
# Writing the draft


def _quote(text: str) -> str:
    """A YAML single-quoted scalar: backslashes stay as they are, which suits regexes."""
    return "'" + text.replace("'", "''") + "'"


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _first_sentence(text: str, limit: int = 90) -> str:
    line = single_line(text)
    match = re.match(r"(.+?[.?!])(?:\s|$)", line)
    return single_line(match.group(1) if match else line, limit)


@dataclass
class Draft:
    """A drafted rubric: its YAML text, the questions it came from, and what validating it said."""

    text: str
    questions: list[Question]
    problems: list[str]  # from the rubric validator; empty when the draft is valid
    support_files: list[str]
    dataset: str | None

    @property
    def model_tasks(self) -> list[Question]:
        return [q for q in self.questions if q.trains_model]


def _name_of(template: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", template.stem).strip("-._").lower()
    return name or "assignment"


def _task_lines(question: Question) -> list[str]:
    title = f"{question.label}: {_first_sentence(question.text)}"
    lines = [f"  - id: {question.task_id}", f"    title: {_quote(title)}"]
    if question.trains_model:
        if question.selector:
            keys = ", ".join(f"{key}: {_quote(value)}" for key, value in question.selector.items())
            lines.append(f"    # {question.selector_note};")
            lines.append("    # check what it picks in a filled-in notebook: grade rubric explain RUBRIC NOTEBOOK")
            lines.append(f"    model: {{{keys}}}")
        else:
            lines.append("    # TODO no distinctive phrase found: name the model, e.g. model: {section: 'CNN'}")
            lines.append("    model: {fit: -1}")
        lines.append("    # model_name: CNN   # TODO how messages name this model: \"Your CNN has ...\"")
    if question.phrase:
        lines.append(f"    question: {_quote(question.phrase)}   # the answer is the markdown after this cell")
    else:
        lines.append("    # TODO no phrase of this question is unique in the template: add question: 'REGEX'")
    lines.append("    checks:")
    checks: list[str] = []
    if question.trains_model:
        for threshold in question.thresholds:
            value = f"{_number(threshold.value)}%" if threshold.check.endswith("accuracy") else (
                f"{int(threshold.value):_}" if threshold.check == "total_params" else _number(threshold.value))
            points = 2 if threshold.check.endswith("accuracy") else 1
            comment = (f"# TODO calibrate: the question says \"{threshold.text}\" (grade calibrate)"
                       if threshold.check.endswith("accuracy") else f"# the question says \"{threshold.text}\"")
            checks.append(f"      - {threshold.check}: {{{threshold.bound}: {value}, points: {points}}}   {comment}")
        if not question.thresholds:
            checks.append("      - output_layer: {points: 1}   # TODO add the checks this question asks for "
                          "(contains: Conv2D, layers: ..., total_params: ...)")
        else:
            checks.append("      # TODO add structure checks the question implies, e.g. - contains: {layer: Conv2D, points: 1}")
    if not question.trains_model or question.asks_for_text:
        guidance = single_line(question.text, 300)
        checks.append("      - manual:")
        checks.append("          points: 1")
        checks.append("          # TODO replace the question's text with what a full answer must name")
        checks.append(f"          guidance: {_quote(guidance)}")
    return lines + checks


def draft_rubric(*, template: str | Path, out: str | Path | None = None) -> Draft:
    """Draft a rubric from a course notebook template (no student work in it).

    One task per question cell: a model task for a question that asks to train a model
    ("Train a model that achieves above 45% accuracy ..."), with a selector from the question's
    own text and a threshold placeholder for each number it states; a manual item for a
    free-text question, with the question as guidance placeholder. ``support_files`` paths are
    written relative to ``out`` (the rubric's folder), else to the current folder. The draft is
    validated with the rubric validator; its problems (there should be none) are in
    :attr:`Draft.problems`. Nothing is written: the caller saves :attr:`Draft.text`.

    Example::

        draft = draft_rubric(template="CIFAR10-Lab-template-2023.ipynb", out="rubric.yaml")
        Path("rubric.yaml").write_text(draft.text)
    """
    template = Path(template)
    nb = load_notebook(template)
    evidence = static_evidence(nb, str(template))
    questions = find_questions(evidence=evidence)
    base = Path(out).resolve().parent if out else Path.cwd()
    modules = _support_modules(evidence.cells, template.resolve().parent)
    support = [Path(os.path.relpath(path, base)).as_posix() for path in modules]
    local = {p.stem if p.suffix == ".py" else p.name for p in modules}
    packages = sorted({name for path in modules for name in _third_party_imports(path, local)})
    dataset = next((m.group("name") for c in evidence.cells if c.cell_type == "code"
                    for m in _DATASET.finditer(c.source) if m.group("name") in DATASETS), None)
    model_tasks = sum(1 for q in questions if q.trains_model)

    lines = [
        f"# Drafted by `grade rubric init` from {template.name}: {len(questions)} questions, "
        f"{model_tasks} model tasks, {len(questions) - model_tasks} free-text.",
        "# Before you use it:",
        "#   - check each model selector on a filled-in notebook: grade rubric explain RUBRIC NOTEBOOK.ipynb",
        "#   - calibrate the thresholds marked TODO calibrate: grade calibrate RUBRIC",
        "#   - replace each manual guidance (the question's text) with what a full answer names",
        "#   - add structure checks (layers, contains, total_params) and set points and pass_mark",
        f"#   - after edits: grade rubric validate RUBRIC --against {template.name}",
        "# The language: docs/rubrics.md.",
        f"name: {_name_of(template)}",
        f"title: {_quote(single_line(template.stem.replace('-', ' ').replace('_', ' ')))}   # TODO the assignment's title",
    ]
    if dataset:
        lines.append(f"dataset: {dataset}   # the template loads keras.datasets.{dataset}; the grader substitutes it offline")
    if support:
        lines.append(f"support_files: [{', '.join(_quote(s) for s in support)}]   # the template imports "
                     f"{'these modules' if len(support) > 1 else 'this module'} from its folder")
    if packages:
        lines.append(f"packages: [{', '.join(packages)}]   # what the support files import: checked once before a batch")
    lines.append("pass_mark: 60%   # TODO")
    lines.append("")
    lines.append("tasks:")
    if not questions:
        lines += ["  # TODO no question cells found (\"Question 2: ...\", \"Q3\", \"Exercise 2\"): write the tasks by hand",
                  "  - id: model", "    model: {fit: -1}", "    checks:", "      - output_layer: true"]
    for question in questions:
        lines += _task_lines(question)
        lines.append("")
    text = "\n".join(lines).rstrip() + "\n"
    problems = _validate_text(text, base)
    return Draft(text=text, questions=questions, problems=problems, support_files=support, dataset=dataset)


def _validate_text(text: str, base: Path) -> list[str]:
    try:
        load_rubric_text(text, name="draft.yaml", base=base)
    except RubricError as exc:
        return str(exc).splitlines()
    return []


# ---------------------------------------------------------------------------------------------
# Checking a rubric against the template


def _pattern_matches_text(evidence: Evidence, pattern: str) -> list[Cell]:
    regex = re.compile(pattern, _FLAGS)
    return [c for c in _text_cells(evidence) if _matches(regex, c)]


def template_warnings(*, rubric: Rubric, template: str | Path) -> list[str]:
    """Selectors and question patterns of ``rubric`` that match nothing in ``template``.

    A template has no fits, so a model selector is checked by its parts: a ``section`` must name
    a heading, ``before``/``after`` a markdown cell, ``function`` a function the template
    defines, ``tag`` a tagged cell. Each warning reads ``FILE:LINE: warning: ...``.
    """
    template = Path(template)
    evidence = static_evidence(load_notebook(template), str(template))
    display = str(rubric.path) if rubric.path else rubric.name
    warnings: list[str] = []
    named = [single_line(reader_text(h.text), 40) for h in headings(evidence)]
    named = [h for h in named if not question_label(h) and not ANSWER_LABEL.match(h)]
    heading_names = ", ".join(f"'{h}'" for h in named[:12]) + (", ..." if len(named) > 12 else "") or "none"

    def warn(line: int | None, text: str) -> None:
        warnings.append(f"{display}:{line}: warning: {text}" if line else f"{display}: warning: {text}")

    for task in rubric.tasks:
        selector = task.selector
        if selector:
            if selector.section and section_ranges(evidence, selector.section) is None:
                warn(task.line, f"task '{task.id}': model section '{selector.section}' matches no heading in "
                                f"{template.name} (headings: {heading_names})")
            for key in ("before", "after"):
                pattern = getattr(selector, key)
                if not pattern:
                    continue
                matched = _pattern_matches_text(evidence, pattern)
                if not matched:
                    warn(task.line, f"task '{task.id}': model {key} '{pattern}' matches no markdown cell in {template.name}")
                else:
                    asked = [c for c in matched if _question_of(c, None)]
                    if len(asked) > 1:
                        cells = ", ".join(str(c.index + 1) for c in asked)
                        warn(task.line, f"task '{task.id}': model {key} '{pattern}' matches several question cells "
                                        f"({cells}) in {template.name}; the first is used")
            if selector.function and not any(re.search(rf"\bdef\s+{re.escape(selector.function)}\s*\(", c.source)
                                             for c in evidence.cells if c.cell_type == "code"):
                warn(task.line, f"task '{task.id}': the template defines no function {selector.function}()")
            if selector.tag and not any(selector.tag in c.tags for c in evidence.cells):
                warn(task.line, f"task '{task.id}': no cell of {template.name} is tagged '{selector.tag}'")
        patterns = [(task.line, "question", task.question)] if task.question else []
        for check in task.checks:
            if check.params.get("question"):
                patterns.append((check.line, f"check '{check.kind}' question", check.params["question"]))
            if check.kind == "code" and check.params.get("section") and section_ranges(evidence, check.params["section"]) is None:
                warn(check.line, f"task '{task.id}': check 'code' section '{check.params['section']}' matches no heading "
                                 f"in {template.name}")
        for line, what, pattern in patterns:
            if not _pattern_matches_text(evidence, pattern):
                warn(line, f"task '{task.id}': {what} '{pattern}' matches no markdown cell in {template.name}")
    return warnings
