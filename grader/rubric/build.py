"""Building the :class:`~grader.rubric.model.Rubric` from schema-valid data, and checking the
meaning the schema cannot say: regexes compile, layer patterns parse, layer names are no typos,
points add up, compared tasks exist, support files and reference models are there.
"""

from __future__ import annotations

import difflib
import glob
import re
from pathlib import Path
from typing import Any

from grader.checks.base import COMMON_PARAMS, KINDS, fraction
from grader.checks.pattern import KNOWN_LAYERS, PatternError, canonical_class, parse_pattern, pattern_names
from grader.model.evidence import Level
from grader.model.scoring import sum_points
from grader.model.defaults import DEFAULT_CELL_TIMEOUT, DEFAULT_NOTEBOOK_TIMEOUT
from grader.rubric.model import Check, FastCaps, ModelSelector, Rubric, Task
from grader.rubric.parse import _Marks
from grader.rubric.problems import Explainer, Problem, last_key
from grader.rubric.schema import DURATION_TEXT, SIZE_TEXT

__all__ = ["Builder"]


def _regex_problem(pattern: Any) -> str | None:
    if not isinstance(pattern, str):
        return None
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    return None


def _layer_name_problem(name: str) -> str | None:
    """A layer class that looks like a typo of a known one ('Dropuot'); unknown names without a
    close match are allowed (custom layers)."""
    canonical = canonical_class(name)
    known = {k.lower(): k for k in KNOWN_LAYERS}
    if canonical.lower() in known:
        return None
    close = difflib.get_close_matches(canonical.lower(), list(known), n=1, cutoff=0.8)
    if close:
        return f"unknown layer class '{name}' (did you mean '{known[close[0]]}'?)"
    return None


def _parse_duration(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    match = re.match(DURATION_TEXT, str(value))
    assert match, value  # the schema admitted it
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"s": 1, "m": 60, "min": 60, "h": 3600}[unit]


def _parse_size(value: Any) -> int:
    if isinstance(value, int):
        return value
    match = re.match(SIZE_TEXT, str(value))
    assert match, value
    number, unit = float(match.group(1)), (match.group(2) or "b").lower()
    powers = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
              "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
    return int(number * powers[unit])


class Builder:
    """Builds the :class:`Rubric` from schema-valid data, collecting problems of meaning."""

    def __init__(self, data: dict[str, Any], marks: _Marks, path: Path | None, explainer: Explainer):
        self.data = data
        self.marks = marks
        self.path = path
        self.explainer = explainer
        self.problems: list[Problem] = []

    def problem(self, path: tuple, message: str, *, key: bool = False) -> None:
        self.problems.append(Problem(self.marks.line(path, key=key), message, last_key(path), path))

    def regex(self, path: tuple, value: Any) -> None:
        problem = _regex_problem(value)
        if problem:
            self.problem(path, f"{self.explainer.what(path)} {problem}")

    def build(self) -> Rubric:
        data = self.data
        tasks = [self.task(i, raw) for i, raw in enumerate(data["tasks"])]
        self.cross_checks(tasks)
        total = sum_points(task.max_points for task in tasks)
        max_points = data.get("max_points")
        if max_points is not None and abs(max_points - total) > 1e-6:
            self.problem(("max_points",), f"'max_points' is {max_points:g}, but the tasks' points add up to {total:g}")
        max_points = float(max_points if max_points is not None else total)
        pass_mark = data.get("pass_mark")
        if isinstance(pass_mark, str):
            pass_mark = round(fraction(pass_mark) * max_points, 4)
        if pass_mark is not None:
            pass_mark = float(pass_mark)
        if pass_mark is not None and pass_mark > max_points + 1e-9:
            self.problem(("pass_mark",), f"'pass_mark' {pass_mark:g} is above the {max_points:g} points there are")
        base = self.path.parent if self.path else Path.cwd()
        support = []
        for i, entry in enumerate(data.get("support_files", [])):
            found = sorted(Path(p) for p in glob.glob(str(base / entry))) if any(c in entry for c in "*?[") else [base / entry]
            if not found or not all(p.exists() for p in found):
                self.problem(("support_files", i), f"support file '{entry}' not found (looked in {base})")
            support += [p.resolve() for p in found]
        data_source = data.get("data_source", "auto")
        if data_source not in ("auto", "keras-cache", "synthetic") and not Path(data_source).is_absolute():
            data_source = str((base / data_source).resolve())
        preprocess = data.get("preprocess", "auto")
        if isinstance(preprocess, dict):
            preprocess = "scale255" if preprocess["scale"] == 255 else "none"
        fast = FastCaps(**data.get("fast", {}))
        limits: dict[str, Any] = {}
        for key, value in data.get("limits", {}).items():
            limits[key] = value if key == "processes" else (_parse_duration(value) if key == "cpu_time" else _parse_size(value))
        return Rubric(
            path=self.path, name=data["name"], title=data.get("title") or data["name"], tasks=tasks,
            dataset=data.get("dataset"), data_source=data_source, preprocess=preprocess, support_files=support,
            packages=list(data.get("packages", [])), kernel=data.get("kernel"),
            cell_timeout=_parse_duration(data.get("cell_timeout", DEFAULT_CELL_TIMEOUT)),
            notebook_timeout=_parse_duration(data.get("notebook_timeout", DEFAULT_NOTEBOOK_TIMEOUT)),
            fast=fast, limits=limits, compat=data.get("compat", True), pass_mark=pass_mark, max_points=max_points,
            description=data.get("description", ""),
            accuracy_evidence=Level.parse(data.get("accuracy_evidence", "verified")),
            retrained_accuracy=data.get("retrained_accuracy", "retrained"),
        )

    def task(self, i: int, raw: dict[str, Any]) -> Task:
        here = ("tasks", i)
        selector = None
        if "model" in raw:
            selector = ModelSelector(**raw["model"])
            for key in ("section", "before", "after"):
                self.regex(here + ("model", key), raw["model"].get(key))
            if selector.function and len(raw["model"]) > 1:
                others = ", ".join(k for k in raw["model"] if k != "function")
                self.problem(here + ("model",), f"'function' stands alone in {self.explainer.where(here + ('model',))}; "
                                                f"remove {others}")
        self.regex(here + ("question",), raw.get("question"))
        weight = float(raw.get("weight", 1.0))
        task = Task(
            id=raw["id"], title=raw.get("title") or raw["id"], checks=[], selector=selector,
            question=raw.get("question"), answer_tag=raw.get("answer_tag"), reference=raw.get("reference"),
            model_name=raw.get("model_name", "model"), weight=weight, description=raw.get("description", ""),
            line=self.marks.line(here),
        )
        explicit = [item[next(iter(item))].get("points") if isinstance(item[next(iter(item))], dict) else None
                    for item in raw["checks"]]
        given = sum(p for p in explicit if p is not None)
        open_checks = sum(1 for p in explicit if p is None)
        share = 1.0
        if "points" in raw:
            rest = raw["points"] - given
            if rest < -1e-9:
                self.problem(here + ("points",), f"task '{task.id}' has {raw['points']:g} points, but its checks "
                                                 f"already claim {given:g}", key=True)
            elif open_checks == 0 and rest > 1e-9:
                self.problem(here + ("points",), f"task '{task.id}' has {raw['points']:g} points, but its checks "
                                                 f"add up to {given:g}", key=True)
            share = max(rest, 0.0) / open_checks if open_checks else 0.0
        for j, item in enumerate(raw["checks"]):
            task.checks.append(self.check(here + ("checks", j), item, task, share, weight))
        return task

    def check(self, path: tuple, item: dict[str, Any], task: Task, share: float, weight: float) -> Check:
        name = next(iter(item))
        kind = KINDS[name]
        here = path + (name,)
        params = kind.prepare(item[name])
        common = {k: params.pop(k) for k in list(params) if k in COMMON_PARAMS}
        points = float(common.get("points", share)) * weight
        for key, message in (kind.validate(params) if kind.validate else []):
            self.problem(here + (key,) if key else here, f"{self.explainer.what(here + (key,) if key else here)}: {message}")
        for key in ("pattern", "question", "section"):
            if key in params and (name != "layers" or key != "pattern"):
                self.regex(here + (key,), params[key])
        self.layer_names(here, name, params)
        if kind.needs_model and task.selector is None:
            self.problem(path, f"check '{name}' is about a model, but task '{task.id}' has no 'model:' selector "
                               "(for example model: {before: 'Question 4'})")
        if name == "answer" and not (params.get("variable") or params.get("question") or params.get("answer_tag")
                                     or task.question or task.answer_tag):
            self.problem(path, f"check 'answer' of task '{task.id}' needs a variable, or a question / answer_tag "
                               "(on the check or the task) to find the written answer")
        if params.get("of") == "reference" and not task.reference:
            self.problem(here + ("of",), f"'of: reference' needs a 'reference:' model on task '{task.id}'")
        level = Level.parse(common["min_level"]) if "min_level" in common else None
        return Check(kind=name, params=params, points=round(points, 4), title=common.get("title"),
                     hint=common.get("hint"), min_level=level, line=self.marks.line(path))

    def layer_names(self, here: tuple, name: str, params: dict[str, Any]) -> None:
        names: list[str] = []
        if name == "layers":
            try:
                names = pattern_names(parse_pattern(params["pattern"]))
            except PatternError:
                return  # reported by the kind's own validation
        elif name in ("contains", "lacks") or (name == "output_shape" and "layer" in params):
            names = [part.strip() for part in params["layer"].split("|") if part.strip()]
        for layer in names:
            problem = _layer_name_problem(layer)
            if problem:
                key = "pattern" if name == "layers" else "layer"
                self.problem(here + (key,), f"{problem} in {self.explainer.what(here)}")

    def cross_checks(self, tasks: list[Task]) -> None:
        seen: dict[str, int] = {}
        for i, task in enumerate(tasks):
            if task.id in seen:
                self.problem(("tasks", i, "id"), f"task id '{task.id}' is used twice (first on line {seen[task.id]})")
            else:
                seen[task.id] = self.marks.line(("tasks", i, "id")) or 0
        by_id = {task.id: task for task in tasks}
        for i, task in enumerate(tasks):
            for j, item in enumerate(task.checks):
                if item.kind != "compare":
                    continue
                other = item.params["task"]
                path = ("tasks", i, "checks", j, "compare", "task")
                if other == task.id:
                    self.problem(path, f"check 'compare' of task '{task.id}' compares the task with itself")
                elif other not in by_id:
                    close = difflib.get_close_matches(other, list(by_id), n=1, cutoff=0.6)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    self.problem(path, f"check 'compare' of task '{task.id}' names task '{other}', which this rubric does not have{hint}")
                elif by_id[other].selector is None:
                    self.problem(path, f"check 'compare' of task '{task.id}' names task '{other}', which selects no model")
        self.reference_names(tasks)

    def reference_names(self, tasks: list[Task]) -> None:
        wanted = [(i, task.reference) for i, task in enumerate(tasks) if task.reference]
        if not wanted:
            return
        try:
            import reference_models  # cheap: builders import Keras only when called
        except ImportError:
            return
        known = reference_models.names()
        for i, name in wanted:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else " (grade reference list shows them)"
                self.problem(("tasks", i, "reference"), f"unknown reference model '{name}'{hint}")
