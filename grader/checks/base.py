"""What every check shares: the registry of check kinds, the context a check sees, its outcome,
and the wording of numbers and ranges in messages.

A check kind is a plain function registered with :func:`check`, which also declares the
parameters the kind takes as JSON Schema fragments. :mod:`grader.rubric.schema` builds the rubric's JSON
Schema (``grader/schemas/rubric.schema.json``) from this registry, so a parameter is declared in
exactly one place, next to the code that reads it::

    @check("epochs", summary="Epochs trained ...", params={"at_most": INTEGER, ...})
    def epochs(ctx: CheckContext, p: dict) -> Outcome:
        ...
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from grader.model.format import fmt_number
from grader.model.evidence import Architecture, Evidence, Level
from grader.model.results import Status

if TYPE_CHECKING:
    from grader.checks.selectors import Target
    from grader.rubric.model import Rubric, Task

__all__ = [
    "CheckContext",
    "CheckKind",
    "KINDS",
    "Outcome",
    "check",
    "fraction",
    "range_ok",
    "range_words",
]


# ---------------------------------------------------------------------------------------------
# JSON Schema fragments shared by several kinds

NUMBER: dict[str, Any] = {"type": "number"}
INTEGER: dict[str, Any] = {"type": "integer"}
COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
TEXT: dict[str, Any] = {"type": "string", "minLength": 1}
REGEX: dict[str, Any] = {"type": "string", "minLength": 1, "description": "a regular expression (Python syntax), case-insensitive"}
# "x-form" says in words which values fit; rubric validation uses it in its messages (JSON Schema
# ignores keywords it does not know, editors too).
FRACTION: dict[str, Any] = {
    "description": "a fraction like 0.62 or a percentage like '62%'",
    "x-form": "a fraction like 0.62 or a percentage like '62%'",
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": 1},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$"},
    ],
}
LEVEL: dict[str, Any] = {"enum": ["reported", "executed", "verified"]}


def ranged(value_schema: dict[str, Any], *, noun: str) -> dict[str, dict[str, Any]]:
    """The usual comparison parameters for a figure: equals, at_least, at_most, between."""
    return {
        "equals": {**value_schema, "description": f"exactly this {noun}"},
        "at_least": {**value_schema, "description": f"this {noun} or more"},
        "at_most": {**value_schema, "description": f"this {noun} or less"},
        "between": {"type": "array", "items": value_schema, "minItems": 2, "maxItems": 2,
                    "description": f"[low, high]: a {noun} in this range, both ends included"},
    }


RANGE_KEYS = ("equals", "at_least", "at_most", "between")

# Keys every check accepts besides its own.
COMMON_PARAMS: dict[str, dict[str, Any]] = {
    "points": {"type": "number", "minimum": 0, "description": "points for this check (default: the task's points shared out, else 1)"},
    "title": {"type": "string", "description": "what the check asks, in words, for the report"},
    "hint": {"type": "string", "description": "a sentence added to the message when the check fails"},
    "min_level": {**LEVEL, "description": "weakest evidence accepted: reported < executed < verified"},
}


# ---------------------------------------------------------------------------------------------
# The registry


@dataclass
class Outcome:
    """What a check function returns; the grader adds points and titles."""

    status: Status
    message: str
    figure: float | str | None = None
    level: Level | None = None
    details: dict[str, Any] = field(default_factory=dict)


def passed(message: str, **kw: Any) -> Outcome:
    return Outcome(Status.PASSED, message, **kw)


def failed(message: str, **kw: Any) -> Outcome:
    return Outcome(Status.FAILED, message, **kw)


def not_assessed(message: str, **kw: Any) -> Outcome:
    return Outcome(Status.NOT_ASSESSED, message, **kw)


def verdict(ok: bool, message: str, **kw: Any) -> Outcome:
    return Outcome(Status.PASSED if ok else Status.FAILED, message, **kw)


@dataclass
class CheckContext:
    """Everything a check may look at for one task of one submission."""

    evidence: Evidence
    rubric: Rubric
    task: Task
    target: Target | None  # the model the task's selector chose; None for answer-only tasks
    fast_mode: bool
    targets: Mapping[str, Target | None] = field(default_factory=dict)  # every task's model, by task id
    references: Mapping[str, Architecture] = field(default_factory=dict)

    @property
    def model_word(self) -> str:
        """How messages name the model: 'Your CNN', from the task's ``model_name``."""
        return f"Your {self.task.model_name}"


@dataclass(frozen=True)
class CheckKind:
    """One kind of check the rubric language offers.

    ``params`` are JSON Schema fragments of the mapping form; ``shorthand`` (optional) is the
    schema of the one-value form (``- contains: Dropout``) and ``expand`` turns it into the
    mapping. ``validate`` returns ``(parameter, message)`` pairs for problems the schema cannot
    express (a regex that does not compile). ``accuracy`` kinds need fully trained weights and
    are not assessed in fast mode.
    """

    name: str
    summary: str
    evaluate: Callable[[CheckContext, dict[str, Any]], Outcome]
    title: Callable[[dict[str, Any]], str]
    params: dict[str, dict[str, Any]]
    required: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()  # at least one of these must be given
    shorthand: dict[str, Any] | None = None
    expand: Callable[[Any], dict[str, Any]] | None = None
    needs_model: bool = True
    accuracy: bool = False
    validate: Callable[[dict[str, Any]], list[tuple[str | None, str]]] | None = None
    example: str = ""

    def prepare(self, raw: Any) -> dict[str, Any]:
        """The mapping form of a check's YAML value (shorthand expanded)."""
        if isinstance(raw, dict):
            return dict(raw)
        if self.expand is None:
            raise ValueError(f"check '{self.name}' needs a mapping of settings")
        return self.expand(raw)


KINDS: dict[str, CheckKind] = {}


def check(name: str, *, summary: str, title: Callable[[dict[str, Any]], str],
          params: dict[str, dict[str, Any]], **options: Any) -> Callable[[Callable[..., Outcome]], Callable[..., Outcome]]:
    """Register the decorated function as the check kind ``name``."""

    def register(func: Callable[..., Outcome]) -> Callable[..., Outcome]:
        if name in KINDS:
            raise RuntimeError(f"check kind {name!r} registered twice")
        KINDS[name] = CheckKind(name=name, summary=summary, evaluate=func, title=title, params=params, **options)
        return func

    return register


# ---------------------------------------------------------------------------------------------
# Numbers and ranges in words

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def fraction(value: float | str) -> float:
    """``0.62`` or ``'62%'`` → ``0.62``."""
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a percentage like '62%'")
        return float(match.group(1)) / 100
    return float(value)


def range_ok(value: float, p: Mapping[str, Any], *, tolerance: float = 0.0) -> bool:
    """Whether ``value`` satisfies every range key present in ``p``."""
    if "equals" in p and not math.isclose(value, p["equals"], rel_tol=tolerance, abs_tol=1e-12):
        return False
    if "at_least" in p and value < p["at_least"] - 1e-12:
        return False
    if "at_most" in p and value > p["at_most"] + 1e-12:
        return False
    if "between" in p:
        low, high = p["between"]
        if not low - 1e-12 <= value <= high + 1e-12:
            return False
    return True


def range_words(p: Mapping[str, Any], fmt: Callable[[Any], str] = fmt_number) -> str:
    """``{'at_most': 100000}`` → ``'at most 100,000'``."""
    parts = []
    if "equals" in p:
        parts.append(f"exactly {fmt(p['equals'])}")
    if "at_least" in p:
        parts.append(f"at least {fmt(p['at_least'])}")
    if "at_most" in p:
        parts.append(f"at most {fmt(p['at_most'])}")
    if "between" in p:
        low, high = p["between"]
        parts.append(f"between {fmt(low)} and {fmt(high)}")
    return " and ".join(parts) if parts else "any value"


def range_symbol(p: Mapping[str, Any], fmt: Callable[[Any], str] = fmt_number) -> str:
    """A compact form for titles: ``'≤ 100,000'``, ``'= 81,834'``, ``'0.001–0.1'``."""
    parts = []
    if "equals" in p:
        parts.append(f"= {fmt(p['equals'])}")
    if "at_least" in p:
        parts.append(f"≥ {fmt(p['at_least'])}")
    if "at_most" in p:
        parts.append(f"≤ {fmt(p['at_most'])}")
    if "between" in p:
        low, high = p["between"]
        parts.append(f"{fmt(low)}–{fmt(high)}")
    return ", ".join(parts)


def range_validate(p: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """Problems with a range the schema cannot see: [high, low] in the wrong order."""
    if "between" in p:
        low, high = p["between"]
        if low > high:
            return [("between", f"'between' needs [low, high]; {low} is above {high}")]
    if "at_least" in p and "at_most" in p and p["at_least"] > p["at_most"]:
        return [("at_least", f"'at_least' {p['at_least']} is above 'at_most' {p['at_most']}")]
    return []
