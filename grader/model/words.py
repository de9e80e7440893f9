"""Words in messages: a cell quoted on one line, a sentence's first letter, counts and ordinals.

Shared by the rubric (a selector in words) and the checks (what a check found, in words), so it
sits below both.
"""

from __future__ import annotations

from grader.model.format import fmt_int

__all__ = ["one_line", "ordinal", "plural", "sentence"]


def one_line(text: str, limit: int = 70) -> str:
    """The first line of ``text``, cut to ``limit`` characters, for quoting cells in messages."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = line.lstrip("#").strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def sentence(text: str) -> str:
    """``text`` with its first letter upper-case (unlike str.capitalize, the rest is kept)."""
    return text[:1].upper() + text[1:]


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``plural(3, 'cell')`` → ``'3 cells'``; thousands separated."""
    return f"{fmt_int(count)} {noun if count == 1 else (plural_form or noun + 's')}"


def ordinal(n: int) -> str:
    """``2`` → ``'2nd'``; ``-1`` → ``'last'``; ``-2`` → ``'2nd from the end'``."""
    if n < 0:
        return "last" if n == -1 else f"{ordinal(-n)} from the end"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
