"""Text and figures as the report pages write them: untrusted text cleaned and trimmed, times,
durations, shapes and figures formatted, and the words of the status and evidence vocabularies.

Numbers themselves are formatted by :mod:`grader.model.format`; these helpers add what a page
needs around them. Most are also template filters (:mod:`grader.report.render`).

Example::

    >>> trim_tail("a\\nb\\nc", max_lines=2, max_chars=100).text
    'b\\nc'
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

from markupsafe import Markup, escape

from grader.model.evidence import Level
from grader.model.format import fmt_number, fmt_pct
from grader.model.results import Status

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

# The words of each vocabulary live beside its enum (grader.model.kinds, grader.model.evidence.Level).
LEVEL_HELP = {level.label: level.help for level in Level}  # the templates look levels up by their label

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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
    """A figure as the check messages write it (:func:`grader.model.format.fmt_number`, and
    :func:`~grader.model.format.fmt_pct` for accuracies): ``81,834``, ``0.01``, ``58.1%``.

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


def fmt_shape(shape: Sequence[int | None] | None) -> str:
    if shape is None:
        return "–"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def percent(part: float, whole: float) -> float:
    """``part`` as a percentage of ``whole`` (0 when ``whole`` is 0)."""
    return 100.0 * part / whole if whole else 0.0


def share(part: float, whole: float) -> str:
    """A CSS percentage between 0 and 100, for bars and meters."""
    value = percent(part, whole)
    return f"{min(100.0, max(0.0, value)) if math.isfinite(value) else 0.0:.1f}"
